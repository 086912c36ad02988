"""ReCode's robustness metrics (Wang et al. 2022, "ReCode: Robustness Evaluation of Code Generation
Models"), exactly as amazon-science/recode's `run_robust.py` computes them (commit 6688522;
`estimator`, `get_worst_passatk_dict[_sampling]`, `get_best_passatk_dict[_sampling]`,
`calculate_metric`, `report_results_coarse`). Small pure functions over pass/fail arrays.

Inputs, for P base problems and n samples each (greedy: n = 1, k = 1):

- `nominal`: bool (P, n), sample j of problem p passed the unperturbed problem;
- `variants`: a list of bool (P, n) arrays, one per perturbed copy (one perturbation type x seed),
  sample j of every copy paired with sample j of the nominal problem.

Then, with worst(p, j) = sample j passed every copy and best(p, j) = sample j passed some copy:

- RP_s@k (robust pass) = mean_p pass@k(n, #{j: worst(p, j)}, k): a sample counts only if it
  passes under all s perturbations.
- RD_s@k (robust drop) = (pass@k(nominal) - RP_s@k) / pass@k(nominal); None when the nominal
  pass@k is 0 (recode divides by zero there).
- RR_s@k (robust relative) = mean_p [pass@k(n, neg_p, k) + pass@k(n, pos_p, k)] with neg_p =
  #{j: worst(p, j) != nominal(p, j)} and pos_p = #{j: worst == nominal but best(p, j) != nominal}:
  how often the outcome changes either way under perturbation.

Per perturbation type the copies are its seeds (report_results_coarse with --aug_method); per family
they are every type's seeds together (report_results_coarse). One difference, on purpose: for sampled
(n > 1) runs recode's coarse report merges the per-type `best` dicts with `and` (run_robust.py,
report_results_coarse, the sampling branch), where its greedy branch and its own definition use `or`;
we use `or` in both, so family RR@k with n > 1 can be higher than recode's script prints. Everything
else is the reference arithmetic (tests/rrtf/evaluate/test_robustness.py checks it against ReCode's figures on fixed
inputs, tests/data/recode_metrics.json).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rrtf.evaluate.metrics import pass_at_k


def _stack(nominal: np.ndarray, variants: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    nominal = np.asarray(nominal, dtype=bool)
    if nominal.ndim != 2:
        raise ValueError(f"nominal outcomes must be (problems, samples), got shape {nominal.shape}")
    if not variants:
        raise ValueError("robustness needs at least one perturbed copy")
    stacked = np.stack([np.asarray(v, dtype=bool) for v in variants])
    if stacked.shape[1:] != nominal.shape:
        raise ValueError(f"perturbed outcomes {stacked.shape[1:]} do not match the nominal ones {nominal.shape}")
    return nominal, stacked


def mean_pass_at_k(outcomes: np.ndarray, k: int) -> float:
    """pass@k over problems of a (P, n) bool array (recode's calculate_passatk[_sampling])."""
    outcomes = np.asarray(outcomes, dtype=bool)
    return float(pass_at_k(outcomes.shape[1], outcomes.sum(axis=1), k).mean())


def robust_pass(nominal: np.ndarray, variants: Sequence[np.ndarray], k: int) -> float:
    _, stacked = _stack(nominal, variants)
    return mean_pass_at_k(stacked.all(axis=0), k)


def robust_drop(nominal: np.ndarray, variants: Sequence[np.ndarray], k: int) -> float | None:
    nominal_pass = mean_pass_at_k(nominal, k)
    if nominal_pass == 0:
        return None
    return (nominal_pass - robust_pass(nominal, variants, k)) / nominal_pass


def robust_relative(nominal: np.ndarray, variants: Sequence[np.ndarray], k: int) -> float:
    nominal, stacked = _stack(nominal, variants)
    worst, best = stacked.all(axis=0), stacked.any(axis=0)
    negative = (worst != nominal).sum(axis=1)
    positive = ((worst == nominal) & (best != nominal)).sum(axis=1)
    n = nominal.shape[1]
    return float((pass_at_k(n, positive, k) + pass_at_k(n, negative, k)).mean())


def robustness(nominal: np.ndarray, variants: Sequence[np.ndarray], ks: Sequence[int]) -> dict[str, float | None]:
    """{"nominal pass@k", "RP@k", "RD@k", "RR@k"} for each k; RD and RR as fractions (recode prints %)."""
    out: dict[str, float | None] = {}
    for k in ks:
        out[f"nominal pass@{k}"] = mean_pass_at_k(nominal, k)
        out[f"RP@{k}"] = robust_pass(nominal, variants, k)
        out[f"RD@{k}"] = robust_drop(nominal, variants, k)
        out[f"RR@{k}"] = robust_relative(nominal, variants, k)
    return out


def family_report(nominal: np.ndarray, types: Mapping[str, Sequence[np.ndarray]], ks: Sequence[int]) -> dict:
    """Per perturbation type (its seeds) and for the whole family (every type's seeds), as
    recode's report (fine-grained) and report_coarse (the paper's main tables)."""
    every = [v for seeds in types.values() for v in seeds]
    return {
        "family": {**robustness(nominal, every, ks), "types": len(types), "copies": len(every)},
        "types": {name: {**robustness(nominal, seeds, ks), "seeds": len(seeds)} for name, seeds in sorted(types.items())},
    }


__all__ = ["family_report", "mean_pass_at_k", "robust_drop", "robust_pass", "robust_relative", "robustness"]
