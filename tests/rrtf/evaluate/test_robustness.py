"""ReCode's RP/RD/RR@k (rrtf.evaluate.robustness): hand values, and equality with recode's own code
(tests/recode_reference.py, copied from run_robust.py) on random outcomes."""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import numpy as np
import pytest
from recode_reference import calculate_metric, estimator, report_coarse

from rrtf.evaluate.metrics import pass_at_k
from rrtf.evaluate.robustness import family_report, robust_drop, robust_pass, robust_relative, robustness

MIRROR = Path("/work/.mirror/amazon-science+recode/repo")
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


def _records(outcomes: np.ndarray) -> list[dict]:
    """recode's completion records: per task its n samples in order."""
    return [{"task_id": f"HumanEval/{p}", "passed": bool(outcomes[p, j])} for p in range(outcomes.shape[0]) for j in range(outcomes.shape[1])]


def _random_case(rng, problems, n, types):
    nominal = rng.random((problems, n)) < 0.5
    copies = {f"type{t}": [rng.random((problems, n)) < rng.uniform(0.2, 0.8) for _ in range(rng.integers(1, 6))] for t in range(types)}
    if not nominal.any():
        nominal[0, 0] = True  # recode divides by the nominal pass rate
    return nominal, copies


def test_per_type_greedy_matches_recode_calculate_metric():
    rng = np.random.default_rng(0)
    for _ in range(50):
        nominal, copies = _random_case(rng, problems=7, n=1, types=1)
        seeds = copies["type0"]
        ref_nominal, ref_seeds = _records(nominal), [_records(s) for s in seeds]
        assert robust_pass(nominal, seeds, 1) == pytest.approx(calculate_metric(ref_seeds, "passatk", ref_nominal)[1])
        assert robust_drop(nominal, seeds, 1) == pytest.approx(calculate_metric(ref_seeds, "drop", ref_nominal)[1])
        assert robust_relative(nominal, seeds, 1) == pytest.approx(calculate_metric(ref_seeds, "relative", ref_nominal)[1])


@pytest.mark.parametrize("n,k", [(1, 1), (5, 1), (5, 2), (6, 3)])
def test_family_matches_recode_report_coarse(n, k):
    rng = np.random.default_rng(n * 10 + k)
    policy = "greedy" if n == 1 else "sampling"
    for case in range(30):
        nominal, copies = _random_case(rng, problems=6, n=n, types=1 if (policy == "sampling" and case % 2) else 3)
        ref = report_coarse(_records(nominal), [[_records(s) for s in seeds] for seeds in copies.values()], policy, n, k)
        ours = family_report(nominal, copies, [k])["family"]
        assert ours[f"nominal pass@{k}"] == pytest.approx(ref[0])
        assert ours[f"RP@{k}"] == pytest.approx(ref[1])
        assert ours[f"RD@{k}"] * 100 == pytest.approx(ref[2])
        if policy == "greedy" or len(copies) == 1:
            assert ours[f"RR@{k}"] * 100 == pytest.approx(ref[3])
        else:
            # recode's sampling branch merges the types' `best` with `and` (robustness.py's docstring);
            # we merge with `or`, as its greedy branch does: a superset of changes, so never lower.
            assert ours[f"RR@{k}"] * 100 >= ref[3] - 1e-9


def test_reference_estimator_is_our_pass_at_k():
    for n in range(1, 7):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert estimator(n, c, k) == pytest.approx(float(pass_at_k(n, c, k)))


def test_reference_copy_is_verbatim():
    """The copied functions are byte-for-byte those of the mirrored upstream file (when it is here)."""
    if not MIRROR.exists():
        pytest.skip("amazon-science/recode is not mirrored on this machine")
    upstream = subprocess.run(["git", f"--git-dir={MIRROR}", "show", "HEAD:run_robust.py"], capture_output=True, text=True, check=True).stdout
    ours = (Path(__file__).parents[2] / "recode_reference.py").read_text()

    def functions(src: str) -> dict[str, str]:
        return {n.name: ast.get_source_segment(src, n) for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}

    up, copied = functions(upstream), functions(ours)
    copied.pop("report_coarse")
    assert copied and all(copied[name] == up[name] for name in copied)


def test_overall_is_the_mean_of_the_families():
    from rrtf.evaluate.breakdown import robustness_overall

    def fam(rp, rd, rr):
        return {"robustness": {"greedy": {"family": {"nominal pass@1": 0.5, "RP@1": rp, "RD@1": rd, "RR@1": rr}}}}

    assert robustness_overall({"recode-format": fam(0.2, 0.6, 0.4)}) == {}  # one family: nothing to average
    overall = robustness_overall({"recode-format": fam(0.2, 0.6, 0.4), "recode-natgen": fam(0.4, None, 0.2), "humaneval+": {"base": {}}})
    assert overall["families"] == ["recode-format", "recode-natgen"]
    assert overall["greedy"] == pytest.approx({"nominal pass@1": 0.5, "RP@1": 0.3, "RD@1": 0.6, "RR@1": 0.3})
    assert "sampled" not in overall
