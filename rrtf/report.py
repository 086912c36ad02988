"""report.md with plots for a finished run: loss curves, pass@1 before/after, verdict distribution.

Pure with respect to the run: it reads what the run wrote (metrics dict, the Trainer's log history,
verdict counts) and renders files, so a report can be regenerated from an output dir at any time.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

from sandbox.base.records import Status  # noqa: E402

LOSS_KEYS = ("loss", "loss_rank", "loss_sft")
STATUS_COLORS = {"not_judged": "#bababa", "not_run": "#e0e0e0", "compile_error": "#b2182b", "runtime_error": "#ef8a62", "partial": "#fddb7f",
                 "passed": "#4dac26"}


def plot_losses(log_history: list[dict[str, Any]], path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    drawn = False
    for key in LOSS_KEYS:
        points = [(row["step"], row[key]) for row in log_history if key in row and "step" in row]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker=".", label=key)
            drawn = True
    ax.set_xlabel("optimizer step (all rounds)")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    if drawn:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def plot_pass_at_1(before: float, after: float, path: Path, label: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 3.5))
    bars = ax.bar(["before", "after"], [before, after], color=["#999999", "#2b7bba"])
    ax.bar_label(bars, labels=[f"{before:.3f}", f"{after:.3f}"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("pass@1 (greedy)")
    ax.set_title(label)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_verdicts(distribution: dict[str, dict[str, int]], path: Path) -> None:
    """distribution: {"round 0 student": {"passed": 12, ...}, ...} stacked by status."""
    labels = list(distribution)
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(labels)), 3.5))
    bottom = [0] * len(labels)
    for status in Status:
        counts = [distribution[label].get(status.label, 0) for label in labels]
        ax.bar(labels, counts, bottom=bottom, label=status.label, color=STATUS_COLORS[status.label])
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_ylabel("candidates")
    ax.set_title("Sandbox verdicts of the samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe_sampler(sampler: dict[str, Any] | None) -> str:
    """"ct2 at int8_float32 (compute_type default, seeding request)": the backend and the precision it sampled in."""
    if not sampler:
        return "the method's own generation (no sampler backend recorded)"
    rest = ", ".join(f"{k} {v}" for k, v in sampler.items() if k not in ("backend", "precision"))
    return f"{sampler.get('backend')} at {sampler.get('precision', 'unknown precision')}" + (f" ({rest})" if rest else "")


def write_report(output_dir: str | Path, metrics: dict[str, Any], log_history: list[dict[str, Any]]) -> Path:
    out = Path(output_dir)
    before = metrics["eval_before"]["pass@1"]
    after = metrics["eval_after"]["pass@1"]
    has_losses = plot_losses(log_history, out / "loss.png")
    plot_pass_at_1(before, after, out / "pass_at_1.png", metrics.get("eval_dataset", "held-out"))
    plot_verdicts(metrics.get("verdicts", {}), out / "verdicts.png")
    lines = [
        "# RRTF run report",
        "",
        f"- model: `{metrics.get('model')}`",
        f"- training problems: {metrics.get('train_problems')}, evaluated on: {metrics.get('eval_dataset')} "
        f"({metrics.get('eval_problems')} problems)",
        f"- ranking loss: {'on' if metrics.get('rank_loss', True) else 'off (SFT on teacher answers only)'}, "
        f"rounds: {metrics.get('rounds')}",
        f"- student sampled by: {describe_sampler(metrics.get('student_sampler'))}",
        f"- wall time: {metrics.get('wall_time_s', 0):.0f} s",
        "",
        "| | pass@1 (greedy) |",
        "|---|---|",
        f"| before | {before:.3f} |",
        f"| after | {after:.3f} |",
        "",
        "![pass@1 before and after](pass_at_1.png)",
        "",
        "## Training loss" if has_losses else "## Training loss (no steps logged)",
        "",
        "![loss curves](loss.png)",
        "",
        "## Verdicts of the sampled candidates",
        "",
        "![verdict distribution](verdicts.png)",
        "",
        "```json",
        json.dumps(metrics.get("verdicts", {}), indent=1),
        "```",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
