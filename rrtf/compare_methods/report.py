"""The comparison's table, paired comparison and plot from its per-run records (pure functions, then files).

Per condition and method, over seeds: held-out pass@1 (mean, sample standard deviation), the paired
difference to RRTF seed by seed (the same seed is the same samples, data order and evaluation: mean
difference, its sd, the paired t statistic and two-sided p, wins/ties/losses), held-out loss, wall time;
and per condition whether held-out loss orders the methods as pass@1 does (Spearman's rho)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from rrtf.compare_methods.config import BASELINE, CONDITIONS, CompareMethodsConfig
from rrtf.compare_tuning.report import mean_sd, spearman


def paired(diffs: list[float]) -> dict:
    """Mean and sd of per-seed differences, the paired t statistic and its two-sided p (n-1 degrees of freedom)."""
    n = len(diffs)
    mean, sd = mean_sd(diffs)
    t = p = float("nan")
    if n > 1 and sd > 0:
        from scipy import stats

        t = mean / (sd / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    elif n > 1 and mean != 0:  # every seed moved by exactly the same amount
        t, p = math.copysign(math.inf, mean), 0.0
    return {"n": n, "mean_diff": mean, "sd_diff": sd, "t": t, "p": p, "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}


def summarize(records: list[dict], methods: list[str], conditions: list[str]) -> list[dict]:
    rows = []
    for condition in conditions:
        mine = [r for r in records if r["condition"] == condition]
        base = {r["seed"]: r for r in mine if r["method"] == BASELINE}
        for method in ["base", *methods]:
            runs = sorted((r for r in mine if r["method"] == method), key=lambda r: r["seed"])
            if not runs:
                continue
            row = {"condition": condition, "method": method, "seeds": [r["seed"] for r in runs]}
            for key in ("pass_at_1", "pass_at_1_before", "heldout_loss", "wall_time_s"):
                row[key], row[key + "_sd"] = mean_sd([r.get(key) for r in runs])
            if method not in ("base", BASELINE):
                row["vs_rrtf"] = paired([r["pass_at_1"] - base[r["seed"]]["pass_at_1"] for r in runs if r["seed"] in base])
            rows.append(row)
    return rows


def loss_vs_pass(rows: list[dict]) -> list[str]:
    out = []
    for condition in dict.fromkeys(r["condition"] for r in rows):
        mine = [r for r in rows if r["condition"] == condition]
        if len(mine) >= 3:
            rho = spearman([r["heldout_loss"] for r in mine], [r["pass_at_1"] for r in mine])
            reading = "lower held-out loss, higher pass@1" if rho < -0.5 else "no clear relation" if rho == rho else "undefined"
            out.append(f"{condition}: held-out loss vs pass@1 over {len(mine)} models (base + methods), Spearman rho = {rho:+.2f} "
                       f"({reading}; Astraios: validation loss tracks pass@1).")
    return out


def _pm(mean: float, sd: float, spec: str = ".3f") -> str:
    return "–" if mean != mean else f"{mean:{spec}} ± {sd:{spec}}"


def _vs(row: dict) -> str:
    v = row.get("vs_rrtf")
    if row["method"] == BASELINE:
        return "(baseline)"
    if not v or not v["n"]:
        return "–"
    p = "–" if v["p"] != v["p"] else f"{v['p']:.2f}"
    return f"{v['mean_diff']:+.3f} ± {v['sd_diff']:.3f} (p {p}; {v['wins']}/{v['ties']}/{v['losses']})"


def table(rows: list[dict], condition: str) -> str:
    lines = ["| method | held-out pass@1 (mean ± sd) | vs RRTF, paired (mean ± sd; p; win/tie/loss) | held-out loss | "
             "wall time per run (s) |", "|---|---:|---:|---:|---:|"]
    for r in (r for r in rows if r["condition"] == condition):
        name = "base (untrained)" if r["method"] == "base" else r["method"]
        lines.append(f"| {name} | {_pm(r['pass_at_1'], r['pass_at_1_sd'])} | {_vs(r)} | {_pm(r['heldout_loss'], r['heldout_loss_sd'])} | "
                     f"{_pm(r['wall_time_s'], r['wall_time_s_sd'], '.0f') if r['method'] != 'base' else '–'} |")
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    width = 0.8 / max(1, len(conditions))
    for k, condition in enumerate(conditions):
        mine = {r["method"]: r for r in rows if r["condition"] == condition}
        xs = [i + k * width for i, m in enumerate(methods) if m in mine]
        axes[0].bar(xs, [mine[m]["pass_at_1"] for m in methods if m in mine], width,
                    yerr=[mine[m]["pass_at_1_sd"] for m in methods if m in mine], capsize=3, label=condition)
        axes[1].scatter([mine[m]["heldout_loss"] for m in methods if m in mine], [mine[m]["pass_at_1"] for m in methods if m in mine],
                        label=condition)
        for m in mine:
            axes[1].annotate(m, (mine[m]["heldout_loss"], mine[m]["pass_at_1"]), fontsize=7)
    axes[0].set_xticks([i + width * (len(conditions) - 1) / 2 for i in range(len(methods))], methods, rotation=30)
    axes[0].set(ylabel="held-out pass@1 (mean ± sd over seeds)", title="Training methods at equal budget")
    axes[1].set(xlabel="held-out loss (reference answers, token-mean NLL)", ylabel="held-out pass@1", title="Does held-out loss predict pass@1?")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.savefig(out / "methods.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return "methods.png"


def budget(cfg: CompareMethodsConfig) -> str:
    return (f"Budget, every method: the same training prompts ({cfg.max_problems or 'all'} on the default conditions, every problem of "
            f"the paper's file), {cfg.num_samples} "
            f"generated student samples per prompt (GRPO: its group size; multi-round RRTF: split over its rounds), "
            f"{cfg.num_train_epochs:g} passes over them (GRPO: num_iterations), {cfg.per_device_train_batch_size} prompts per step, "
            f"learning rate {cfg.learning_rate}{' (' + ', '.join(cfg.learning_rates) + ')' if cfg.learning_rates else ' for every method'}, "
            f"{cfg.max_new_tokens} new tokens; held-out: greedy pass@1 on {cfg.eval_max_problems} problems.")


def write_report(records: list[dict], cfg: CompareMethodsConfig, out: Path, context: dict) -> dict:
    extra = [m for m in dict.fromkeys(r["method"] for r in records) if m != "base" and m not in cfg.methods]
    rows = summarize(records, [*cfg.methods, *extra], cfg.conditions)
    notes = loss_vs_pass(rows)
    image = plot(rows, out) if rows else None
    summary = {"rows": rows, "loss_vs_pass_at_1": notes, "budget": budget(cfg), "records": records, **context}
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    lines = ["# Training methods compared", "", budget(cfg), f"Seeds: {', '.join(map(str, cfg.seeds))}. Device: {context.get('device')}.", ""]
    for condition in cfg.conditions:
        prompts = sorted({r["train_problems"] for r in records if r["condition"] == condition and "train_problems" in r})
        lines += [f"## {condition}: {CONDITIONS[condition]}", "", f"Training prompts: {', '.join(map(str, prompts)) or '?'}.", "",
                  table(rows, condition), ""]
    lines += ["## Held-out loss against pass@1", "", *[f"- {n}" for n in notes], ""]
    if image:
        lines += [f"![{image}]({image})", ""]
    (out / "results.md").write_text("\n".join(lines))
    return summary

