"""Evaluation results: per-problem rows, per-dataset scores, the table; scoring is pure.

Besides pass@k and greedy pass@1 over all of a dataset's problems, `DatasetResult.metrics` holds what
the dataset itself calls for: base and plus pass@k (EvalPlus records: `base` counts the original
inputs only, `plus` all of them), pass@k per category (`DatasetSpec.category`: LeetCode's
difficulty), and ReCode's robustness metrics (`DatasetSpec.variant`: rrtf.evaluate.robustness).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rrtf.evaluate.metrics import pass_at_k
from sandbox.base.records import Problem, Status
from sandbox.compiled.toolchain import MISSING as TOOLCHAIN_MISSING  # how the verdict for an absent compiler begins

GREEDY, SAMPLED = "greedy", "sampled"


@dataclass
class ProblemRow:
    dataset: str
    task_id: str
    num_samples: int
    num_passed: int
    greedy_status: str | None
    status_counts: dict[str, int]


@dataclass
class DatasetResult:
    name: str
    strategy: str
    num_problems: int
    num_samples: int
    temperature: float
    pass_at_k: dict[str, float]  # {"pass@1": 0.42, ...}, over sampled completions
    greedy_pass_at_1: float | None
    status_counts: dict[str, int]  # sampled completions, by Status label
    greedy_status_counts: dict[str, int]
    failure_reasons: dict[str, int] = field(default_factory=dict)  # greedy + sampled, most common: {"NameError": 7, ...}
    task: str = ""  # the dataset's task (synthesize, fix, ...), "" for a file
    metrics: dict[str, Any] = field(default_factory=dict)  # base/plus, by category, robustness (see the module doc)
    error: str | None = None  # why the dataset was not (fully) evaluated, e.g. "toolchain missing: install ..."


@dataclass
class EvalResult:
    datasets: dict[str, DatasetResult]
    problems: list[ProblemRow]
    config: dict[str, Any] = field(default_factory=dict)
    recode_overall: dict[str, Any] = field(default_factory=dict)  # the mean over ReCode families, when 2+ ran

    def to_record(self) -> dict[str, Any]:
        return {"config": self.config, "datasets": {k: asdict(v) for k, v in self.datasets.items()},
                "recode_overall": self.recode_overall, "problems": [asdict(p) for p in self.problems]}

    def table(self) -> str:
        ks = sorted({k for d in self.datasets.values() for k in d.pass_at_k}, key=lambda s: int(s.split("@")[1]))
        head = ["dataset", "strategy", "problems", "n", *ks, "greedy@1", "pass/part/rt/ce", "note"]
        rows = [head]
        for d in self.datasets.values():
            sc = d.status_counts or d.greedy_status_counts
            counts = "/".join(str(sc.get(s.label, 0)) for s in Status.ranked()) + unjudged_note(sc)
            rows.append([d.name, d.strategy, str(d.num_problems), str(d.num_samples),
                         *[_pct(d.pass_at_k.get(k)) for k in ks], _pct(d.greedy_pass_at_1), counts, d.error or ""])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def unjudged_note(counts: dict[str, int]) -> str:
    """" (+N not judged, +M not run)" for samples whose outcome says nothing of their code, else ""."""
    extra = [f"+{counts[s.label]} {s.label.replace('_', ' ')}" for s in Status if not s.judged and counts.get(s.label)]
    return f" ({', '.join(extra)})" if extra else ""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def score(name: str, problems: Sequence[Problem], strategy: str, num_samples: int, ks: Sequence[int], greedy: bool,
          temperature: float, records: dict[tuple, dict[str, Any]]) -> tuple[DatasetResult, list[ProblemRow]]:
    """Scores of one dataset from its judged samples, `records[(dataset, task_id, mode, index)]`."""
    rows, n_list, c_list, greedy_pass = [], [], [], []
    status_counts: Counter = Counter()
    greedy_counts: Counter = Counter()
    reasons: Counter = Counter()
    for p in problems:
        sampled = [records[(name, p.task_id, SAMPLED, i)]["verdict"] for i in range(num_samples)]
        statuses = Counter(v["status"] for v in sampled)
        reasons.update(reason_kind(v["reason"]) for v in sampled if not v["passed"])
        status_counts.update(statuses)
        greedy_status = None
        if greedy:
            g = records[(name, p.task_id, GREEDY, 0)]["verdict"]
            greedy_status = g["status"]
            greedy_counts[greedy_status] += 1
            greedy_pass.append(g["passed"])
            reasons.update([reason_kind(g["reason"])] if not g["passed"] else [])
        c = sum(v["passed"] for v in sampled)
        n_list.append(len(sampled))
        c_list.append(c)
        rows.append(ProblemRow(name, p.task_id, len(sampled), c, greedy_status, dict(statuses)))
    pass_k = {}
    if num_samples and problems:
        pass_k = {f"pass@{k}": float(pass_at_k(n_list, c_list, k).mean()) for k in sorted(set(ks))}
    result = DatasetResult(
        name=name, strategy=strategy, num_problems=len(problems), num_samples=num_samples, temperature=temperature,
        pass_at_k=pass_k, greedy_pass_at_1=float(np.mean(greedy_pass)) if greedy_pass else None,
        status_counts=dict(status_counts), greedy_status_counts=dict(greedy_counts), failure_reasons=dict(reasons.most_common(8)),
    )
    return result, rows


def reason_kind(reason: str) -> str:
    """"NameError: name 'x' is not defined" -> "NameError": groups failures by kind. A missing
    toolchain keeps its whole message: it names the package to install."""
    if reason.startswith(TOOLCHAIN_MISSING):
        return reason.strip()[:200]
    if reason.startswith("prompt too long"):
        return "prompt too long"
    return reason.split(":", 1)[0].strip()[:60] or "unknown"


__all__ = ["GREEDY", "SAMPLED", "TOOLCHAIN_MISSING", "DatasetResult", "EvalResult", "ProblemRow", "reason_kind", "score", "unjudged_note"]
