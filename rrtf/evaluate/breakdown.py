"""Dataset-specific scores from judged samples (pure): EvalPlus base vs plus pass@k, pass@k per
category (LeetCode's difficulty), and ReCode's robustness metrics per perturbation type and family.

`records[(dataset, task_id, mode, index)]["verdict"]` are the judged samples (rrtf.evaluate.runner);
a verdict's `passed` is the whole test, `base_passed` (EvalPlus only) the original inputs alone.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rrtf.evaluate.metrics import pass_at_k
from rrtf.evaluate.results import GREEDY, SAMPLED
from rrtf.evaluate.robustness import family_report
from sandbox.base.records import Problem


def outcome_matrix(name: str, problems: Sequence[Problem], mode: str, n: int, records: dict[tuple, dict[str, Any]],
                   key: str = "passed") -> np.ndarray:
    """bool (problems, n): whether sample j of each problem passed (`key` of its verdict)."""
    return np.array([[bool(records[(name, p.task_id, mode, i)]["verdict"].get(key)) for i in range(n)] for p in problems],
                    dtype=bool).reshape(len(problems), n)


def pass_scores(matrix: np.ndarray, ks: Sequence[int], greedy: np.ndarray | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if matrix.size and matrix.shape[1]:
        out.update({f"pass@{k}": float(pass_at_k(matrix.shape[1], matrix.sum(axis=1), k).mean()) for k in sorted(set(ks))})
    if greedy is not None and greedy.size:
        out["greedy@1"] = float(greedy[:, 0].mean())
    return out


def _modes(name, problems, num_samples, greedy, records, key="passed"):
    sampled = outcome_matrix(name, problems, SAMPLED, num_samples, records, key) if num_samples else np.zeros((len(problems), 0), bool)
    first = outcome_matrix(name, problems, GREEDY, 1, records, key) if greedy else None
    return sampled, first


def evalplus_scores(name, problems, num_samples, ks, greedy, records) -> dict[str, dict[str, float]]:
    """{"base": {...}, "plus": {...}}: evalplus's base (original inputs) and plus (all inputs) pass@k."""
    out = {}
    for part, key in (("base", "base_passed"), ("plus", "passed")):
        sampled, first = _modes(name, problems, num_samples, greedy, records, key)
        out[part] = pass_scores(sampled, ks, first)
    return out


def category_scores(name, problems, category, num_samples, ks, greedy, records) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        groups[category(p.task_id)].append(p)
    out = {}
    for label, group in sorted(groups.items()):
        sampled, first = _modes(name, group, num_samples, greedy, records)
        out[label] = {"problems": len(group), **pass_scores(sampled, ks, first)}
    return out


def robustness_scores(name, problems, variant, base_task, num_samples, ks, greedy, records) -> dict[str, Any]:
    """{"greedy": family_report, "sampled": family_report}: ReCode's RP/RD/RR per type and family."""
    nominal = [p for p in problems if variant(p.task_id) is None]
    order = {p.task_id: i for i, p in enumerate(nominal)}
    copies: dict[tuple[str, int], list[Problem | None]] = defaultdict(lambda: [None] * len(nominal))
    for p in problems:
        v = variant(p.task_id)
        if v is not None:
            base = base_task(p.task_id)
            if base not in order:
                raise ValueError(f"{name}: {p.task_id} is a variant of {base}, which is not among the evaluated problems")
            copies[v][order[base]] = p
    incomplete = [f"{t}/s{s}" for (t, s), ps in copies.items() if any(x is None for x in ps)]
    if incomplete:
        raise ValueError(f"{name}: perturbations {incomplete[:3]} lack copies of some evaluated problems")
    out = {}
    modes = ([(GREEDY, 1, [1])] if greedy else []) + ([(SAMPLED, num_samples, sorted(set(ks)))] if num_samples else [])
    for mode, n, mode_ks in modes:
        types: dict[str, list[np.ndarray]] = defaultdict(list)
        for (ptype, _seed), ps in sorted(copies.items()):
            types[ptype].append(outcome_matrix(name, ps, mode, n, records))
        if nominal and types:
            out[mode] = {"problems": len(nominal), **family_report(outcome_matrix(name, nominal, mode, n, records), types, mode_ks)}
    return out


def dataset_metrics(name, problems, spec, num_samples, ks, greedy, records) -> dict[str, Any]:
    """Every dataset-specific score that applies to `problems` (spec: its DatasetSpec, or None)."""
    out: dict[str, Any] = {}
    if problems and all(p.test_format == "evalplus" for p in problems):
        out.update(evalplus_scores(name, problems, num_samples, ks, greedy, records))
    if spec is not None and spec.category is not None:
        out["by_category"] = category_scores(name, problems, spec.category, num_samples, ks, greedy, records)
    if spec is not None and spec.variant is not None and spec.base_task is not None:
        out["robustness"] = robustness_scores(name, problems, spec.variant, spec.base_task, num_samples, ks, greedy, records)
    if spec is not None and spec.scores is not None:
        out.update(spec.scores(name, problems, num_samples, ks, greedy, records))
    return out


def robustness_overall(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The mean over ReCode families of each family-level metric ({dataset: DatasetResult.metrics});
    {} unless two or more families were evaluated. A family whose RD is None (no nominal pass) is left
    out of that mean."""
    families = {name: m["robustness"] for name, m in metrics.items() if m.get("robustness")}
    if len(families) < 2:
        return {}
    out: dict[str, Any] = {"families": sorted(families)}
    for mode in (GREEDY, SAMPLED):
        reports = [r[mode]["family"] for r in families.values() if mode in r]
        if len(reports) != len(families):
            continue
        keys = [k for k in reports[0] if k.startswith(("nominal pass@", "RP@", "RD@", "RR@"))]
        values = {k: [r[k] for r in reports if r.get(k) is not None] for k in keys}
        out[mode] = {k: float(np.mean(v)) if v else None for k, v in values.items()}
    return out


__all__ = ["category_scores", "dataset_metrics", "robustness_overall", "evalplus_scores", "outcome_matrix", "pass_scores", "robustness_scores"]
