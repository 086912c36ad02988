"""ReCode's RP/RD/RR@k (rrtf.evaluate.robustness, reached through rrtf.evaluate.breakdown): hand
values, and ReCode's own figures on fixed inputs (tests/data/recode_metrics.json, computed once with
amazon-science/recode's published metric code; its provenance is in the file)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rrtf.evaluate.breakdown import robustness_scores
from rrtf.evaluate.metrics import pass_at_k
from rrtf.evaluate.results import GREEDY, SAMPLED
from rrtf.evaluate.robustness import robust_drop, robust_pass, robust_relative, robustness
from sandbox.base.records import Problem

RECODE = json.loads((Path(__file__).parents[2] / "data" / "recode_metrics.json").read_text())
T, F = True, False


def test_hand_values_greedy():
    # Two problems, greedy (n = 1), two seeds of one perturbation.
    nominal = np.array([[T], [F]])
    seeds = [np.array([[T], [T]]), np.array([[F], [T]])]
    # worst = [F, T], best = [T, T]
    assert robust_pass(nominal, seeds, 1) == 0.5
    assert robust_drop(nominal, seeds, 1) == 0.0  # (0.5 - 0.5) / 0.5
    assert robust_relative(nominal, seeds, 1) == 1.0  # both problems change outcome under some seed
    # A perturbation that changes nothing: RP = nominal, RD = 0, RR = 0.
    assert robustness(nominal, [nominal, nominal], [1]) == {"nominal pass@1": 0.5, "RP@1": 0.5, "RD@1": 0.0, "RR@1": 0.0}


def test_hand_values_sampled():
    # One problem, n = 4 samples, k = 2; nominal passes samples 0, 1, 2.
    nominal = np.array([[T, T, T, F]])
    seeds = [np.array([[T, F, T, T]]), np.array([[T, T, F, T]])]
    # worst = [T, F, F, T] (2 of 4), best = [T, T, T, T]
    rp = 1 - (2 / 4) * (1 / 3)  # 1 - C(2,2)/C(4,2) = 5/6
    assert robust_pass(nominal, seeds, 2) == pytest.approx(rp)
    nominal_pass = 1.0  # 3 of 4 pass: every pair holds one
    assert robust_drop(nominal, seeds, 2) == pytest.approx((nominal_pass - rp) / nominal_pass)
    # neg: worst != nominal at samples 1, 2, 3 -> 3; pos: worst == nominal but best != nominal: none.
    assert robust_relative(nominal, seeds, 2) == pytest.approx(1.0 + 0.0)
    assert robust_relative(nominal, seeds, 1) == pytest.approx(3 / 4)


def test_drop_is_none_without_nominal_passes_and_shapes_are_checked():
    assert robust_drop(np.array([[F]]), [np.array([[T]])], 1) is None
    with pytest.raises(ValueError, match="do not match"):
        robust_pass(np.array([[T, F]]), [np.array([[T]])], 1)
    with pytest.raises(ValueError, match="at least one"):
        robust_pass(np.array([[T]]), [], 1)


def _matrix(words: str) -> np.ndarray:
    """"10 01" -> [[T, F], [F, T]]: one word per problem, one character per sample."""
    return np.array([[c == "1" for c in w] for w in words.split()], dtype=bool)


def _report(case: dict) -> dict:
    """The case as judged samples, scored by breakdown.robustness_scores as `evaluate` scores them:
    nominal problem HumanEval/p, perturbed copy HumanEval/p@TYPE/SEED."""
    n, mode = case["n"], GREEDY if case["n"] == 1 else SAMPLED
    copies = {"": _matrix(case["nominal"])}
    copies.update({f"@{t}/{s}": _matrix(w) for t, seeds in case["types"].items() for s, w in enumerate(seeds)})
    problems, records = [], {}
    for suffix, outcomes in copies.items():
        for p, row in enumerate(outcomes):
            problems.append(Problem(task_id=f"HumanEval/{p}{suffix}", prompt=""))
            records.update({("recode", problems[-1].task_id, mode, j): {"verdict": {"passed": bool(row[j])}} for j in range(n)})

    def variant(task_id: str):
        return tuple(task_id.split("@")[1].split("/")) if "@" in task_id else None

    out = robustness_scores("recode", problems, variant, lambda t: t.split("@")[0], 0 if n == 1 else n, [case["k"]], n == 1, records)
    return out[mode]


@pytest.mark.parametrize("case", RECODE["cases"], ids=lambda c: c["name"])
def test_matches_recode_figures(case):
    k, report = case["k"], _report(case)
    assert report["problems"] == len(case["nominal"].split())
    pairs = [(report["family"], case["recode"]["family"])] + [(report["types"][t], r) for t, r in case["recode"]["types"].items()]
    assert sorted(report["types"]) == sorted(case["recode"]["types"])
    for ours, ref in pairs:
        assert ours[f"nominal pass@{k}"] == pytest.approx(ref["nominal pass@k"])
        assert ours[f"RP@{k}"] == pytest.approx(ref["RP@k"])
        assert ours[f"RD@{k}"] * 100 == pytest.approx(ref["RD@k %"])  # recode prints RD and RR in percent
    for t, ref in case["recode"]["types"].items():
        assert report["types"][t][f"RR@{k}"] * 100 == pytest.approx(ref["RR@k %"])
    family_rr, ref_rr = report["family"][f"RR@{k}"] * 100, case["recode"]["family"]["RR@k %"]
    if case["n"] == 1 or len(case["types"]) == 1:
        assert family_rr == pytest.approx(ref_rr)
    else:
        # recode's sampling branch merges the types' `best` with `and` (robustness.py's docstring);
        # we merge with `or`, as its greedy branch does: a superset of changes, so never lower.
        assert family_rr >= ref_rr - 1e-9
    if case["name"] == "sampled_types_best_merge":
        # nominal 01, copies 11 and 01: worst 01 = nominal, best (or) 11 flips sample 0 -> pass@1(2, 1) = 1/2; recode: 0
        assert (family_rr, ref_rr) == pytest.approx((50.0, 0.0))


def test_pass_at_k_is_recode_estimator():
    assert len(RECODE["estimator"]) > 50
    for n, c, k, value in RECODE["estimator"]:
        assert float(pass_at_k(n, c, k)) == pytest.approx(value), (n, c, k)


def test_overall_is_the_mean_of_the_families():
    from rrtf.evaluate.breakdown import robustness_overall

    def fam(rp, rd, rr):
        return {"robustness": {"greedy": {"family": {"nominal pass@1": 0.5, "RP@1": rp, "RD@1": rd, "RR@1": rr}}}}

    assert robustness_overall({"recode-format": fam(0.2, 0.6, 0.4)}) == {}  # one family: nothing to average
    overall = robustness_overall({"recode-format": fam(0.2, 0.6, 0.4), "recode-natgen": fam(0.4, None, 0.2), "humaneval+": {"base": {}}})
    assert overall["families"] == ["recode-format", "recode-natgen"]
    assert overall["greedy"] == pytest.approx({"nominal pass@1": 0.5, "RP@1": 0.3, "RD@1": 0.6, "RR@1": 0.3})
    assert "sampled" not in overall
