"""The comparison's table, plots and findings from its per-run records (pure functions, then files).

Per method, over its seeds: trainable %, final train loss, held-out loss, held-out pass@1 (mean, sample
standard deviation, min-max), step time and peak memory; then the papers' claims checked against the
table: full fine-tuning best? LoRA the best trade-off (on the trainable-% / pass@1 Pareto front, best
pass@1 per trainable parameter among the PEFT methods)? Bitune over LoRA? held-out loss predicting
pass@1 (Spearman's rho over methods)?
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path


def mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (Pearson's on the ranks); NaN when either side is constant."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("spearman needs two equally long lists of at least two values")
    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx, sy = sum((a - mx) ** 2 for a in rx) ** 0.5, sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (sx * sy) if sx and sy else float("nan")


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (cost: lower is better, score: higher is better)."""
    front = []
    for name, (cost, score) in points.items():
        dominated = any(c <= cost and s >= score and (c, s) != (cost, score) for other, (c, s) in points.items() if other != name)
        if not dominated:
            front.append(name)
    return front


def summarize(records: list[dict], methods: list[str]) -> list[dict]:
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        if not mine:
            continue
        passes = [r["pass_at_1"] for r in mine]
        row = {"method": method, "seeds": sorted(r["seed"] for r in mine), "trainable_percent": mine[0]["trainable_percent"],
               "trainable": mine[0]["trainable"], "all": mine[0]["all"], "pass_at_1_min": min(passes), "pass_at_1_max": max(passes),
               "memory_kind": mine[0]["memory_kind"], "device": mine[0]["device"]}
        for key in ("final_train_loss", "heldout_loss", "pass_at_1", "step_time_s", "peak_memory_mb"):
            row[key], row[key + "_sd"] = mean_sd([r[key] for r in mine])
        rows.append(row)
    return rows


def findings(rows: list[dict]) -> list[str]:
    base = next((r for r in rows if r["method"] == "base"), None)
    rows = [r for r in rows if r["method"] != "base"]
    by = {r["method"]: r for r in rows}
    out = []
    if base is not None and rows:
        better = [r["method"] for r in rows if r["pass_at_1"] > base["pass_at_1"] + r["pass_at_1_sd"]]
        out.append(f"Untrained base model: pass@1 {base['pass_at_1']:.3f}, held-out loss {base['heldout_loss']:.3f}; "
                   f"above it by more than their seed sd: {', '.join(better) or 'none'}.")
    if "full" in by and len(rows) > 1:
        best = max(rows, key=lambda r: r["pass_at_1"])
        out.append(f"Full fine-tuning best (Astraios): {'yes' if best['method'] == 'full' else 'no'} -- highest mean pass@1 is "
                   f"{best['method']} ({best['pass_at_1']:.3f}); full fine-tuning {by['full']['pass_at_1']:.3f}.")
    peft = {r["method"]: r for r in rows if r["trainable_percent"] < 100}
    if "lora" in peft and len(peft) > 1:
        front = pareto_front({m: (r["trainable_percent"], r["pass_at_1"]) for m, r in by.items()})
        best_peft = max(peft.values(), key=lambda r: r["pass_at_1"])
        out.append(f"LoRA the best trade-off (Astraios): LoRA is {'on' if 'lora' in front else 'off'} the trainable-% / pass@1 "
                   f"Pareto front ({', '.join(front)}); best PEFT pass@1 is {best_peft['method']} ({best_peft['pass_at_1']:.3f}), "
                   f"LoRA {peft['lora']['pass_at_1']:.3f}.")
    if "bitune" in by and "lora" in by:
        gap = by["bitune"]["pass_at_1"] - by["lora"]["pass_at_1"]
        noise = by["bitune"]["pass_at_1_sd"] + by["lora"]["pass_at_1_sd"]
        verdict = "yes" if gap > noise else "no" if gap < -noise else "within the seed spread"
        out.append(f"Bitune over LoRA (Bitune: about +4 points on Gemma-2B): {verdict} -- {100 * gap:+.1f} points "
                   f"(seed sd {100 * by['bitune']['pass_at_1_sd']:.1f} / {100 * by['lora']['pass_at_1_sd']:.1f}).")
    if len(rows) >= 3:
        rho = spearman([r["heldout_loss"] for r in rows], [r["pass_at_1"] for r in rows])
        out.append(f"Held-out loss predicting pass@1 (Astraios: validation loss tracks it): Spearman rho = {rho:+.2f} over "
                   f"{len(rows)} methods ({'lower loss, higher pass@1' if rho < -0.5 else 'no clear relation' if rho == rho else 'undefined'}).")
    return out


def _f(value: float, spec: str = ".3f") -> str:
    return "–" if value != value else format(value, spec)  # NaN (the untrained base has no train loss or step)


def table(rows: list[dict]) -> str:
    memory = rows[0]["memory_kind"] if rows else ""
    head = ("| method | trainable % | final train loss | held-out loss | held-out pass@1 (mean ± sd, min–max) | step time (s) | "
            f"peak memory (MB, {memory}) |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        train = "–" if r["final_train_loss"] != r["final_train_loss"] else f"{r['final_train_loss']:.3f} ± {r['final_train_loss_sd']:.3f}"
        lines.append(f"| {r['method']} | {r['trainable_percent']:.3f} | {train} | "
                     f"{r['heldout_loss']:.3f} ± {r['heldout_loss_sd']:.3f} | {r['pass_at_1']:.3f} ± {r['pass_at_1_sd']:.3f} "
                     f"({r['pass_at_1_min']:.3f}–{r['pass_at_1_max']:.3f}) | {_f(r['step_time_s'])} | {r['peak_memory_mb']:.0f} |")
    return "\n".join(lines)


def benchmark_table(records: list[dict], methods: list[str]) -> str:
    """--eval_datasets: per method, each benchmark figure's mean over seeds (empty without benchmarks)."""
    keys = list(dict.fromkeys((name, key) for rec in records for name, scores in rec.get("benchmarks", {}).items()
                              for key, value in scores.items() if key != "error"))
    if not keys:
        return ""
    lines = ["| method | " + " | ".join(f"{name} {key}" for name, key in keys) + " |", "|---|" + "---:|" * len(keys)]
    for method in methods:
        runs = [rec.get("benchmarks", {}) for rec in records if rec["method"] == method]
        if runs:
            cells = [mean_sd([r.get(name, {}).get(key) for r in runs])[0] for name, key in keys]
            lines.append(f"| {method} | " + " | ".join(_f(c) for c in cells) + " |")
    errors = sorted({f"{name}: {scores['error']}" for rec in records for name, scores in rec.get("benchmarks", {}).items() if "error" in scores})
    return "\n".join(lines + [""] + [f"- not evaluated: {e}" for e in errors])


def plot(records: list[dict], rows: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        curves = [dict(rec["loss_curve"]) for rec in records if rec["method"] == r["method"] and rec["loss_curve"]]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        ax.plot(steps, [statistics.fmean(c[s] for c in curves) for s in steps], label=r["method"])
    ax.set(xlabel="optimizer step", ylabel="train loss (mean over seeds)", title="Training loss by tuning method")
    ax.legend(fontsize=8)
    fig.savefig(out / "loss_curves.png", dpi=120, bbox_inches="tight")
    written.append("loss_curves.png")
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [r["method"] for r in rows]
    left.bar(names, [r["pass_at_1"] for r in rows], yerr=[r["pass_at_1_sd"] for r in rows], capsize=3)
    left.set(ylabel="held-out pass@1 (mean ± sd over seeds)", title="pass@1")
    left.tick_params(axis="x", rotation=45)
    right.errorbar([r["heldout_loss"] for r in rows], [r["pass_at_1"] for r in rows], xerr=[r["heldout_loss_sd"] for r in rows],
                   yerr=[r["pass_at_1_sd"] for r in rows], fmt="o")
    for r in rows:
        right.annotate(r["method"], (r["heldout_loss"], r["pass_at_1"]), fontsize=8)
    right.set(xlabel="held-out loss", ylabel="held-out pass@1", title="Does held-out loss predict pass@1?")
    fig.savefig(out / "pass_at_1.png", dpi=120, bbox_inches="tight")
    written.append("pass_at_1.png")
    plt.close(fig)
    return written


def write_report(records: list[dict], methods: list[str], out: Path, context: dict) -> dict:
    rows = summarize(records, methods)
    notes = findings(rows)
    images = plot(records, rows, out) if rows else []
    summary = {"rows": rows, "findings": notes, **context}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    benchmarks = benchmark_table(records, methods)
    lines = ["# Tuning methods compared", "", f"{context.get('description', '')}", "", table(rows), "", "## Findings", "",
             *[f"- {n}" for n in notes], "", *(["## Benchmarks (--eval_datasets; greedy, mean over seeds)", "", benchmarks, ""] if benchmarks else []),
             *[f"![{name}]({name})" for name in images], ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary
