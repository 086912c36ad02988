"""The comparison's statistics against hand values: the paired comparison with RRTF is seed by seed, SFT is
not run without a teacher, and the table says so."""
from __future__ import annotations

import math

import pytest

from rrtf.compare_methods.config import CompareMethodsConfig, condition_overrides
from rrtf.compare_methods.report import paired, summarize, table


def rec(condition, method, seed, p, loss=1.0, wall=10.0):
    return {"condition": condition, "method": method, "seed": seed, "pass_at_1": p, "pass_at_1_before": 0.4, "heldout_loss": loss,
            "wall_time_s": wall}


def test_paired_hand_values():
    got = paired([0.1, 0.2, 0.3])
    assert got["mean_diff"] == pytest.approx(0.2) and got["sd_diff"] == pytest.approx(0.1)
    assert got["t"] == pytest.approx(0.2 / (0.1 / math.sqrt(3)))  # 3.464
    assert got["p"] == pytest.approx(0.0742, abs=1e-3)  # two-sided, 2 degrees of freedom
    assert (got["wins"], got["ties"], got["losses"]) == (3, 0, 0)
    flat = paired([0.0, 0.0])
    assert flat["mean_diff"] == 0 and math.isnan(flat["p"]) and flat["ties"] == 2


def test_summary_pairs_each_seed_with_rrtfs_own():
    records = [rec("default", "base", 1, 0.4), rec("default", "rrtf", 1, 0.6), rec("default", "rrtf", 2, 0.7),
               rec("default", "sft", 2, 0.8), rec("default", "sft", 1, 0.5)]  # out of order on purpose
    rows = summarize(records, ["rrtf", "sft"], ["default"])
    assert [r["method"] for r in rows] == ["base", "rrtf", "sft"]
    sft = rows[2]
    assert sft["vs_rrtf"]["mean_diff"] == pytest.approx(0.0) and (sft["vs_rrtf"]["wins"], sft["vs_rrtf"]["losses"]) == (1, 1)
    assert sft["pass_at_1"] == pytest.approx(0.65)
    text = table(rows, "default")
    assert "| rrtf | 0.650 ± 0.071 | (baseline) |" in text and "| base (untrained) |" in text


def test_conditions_set_the_teachers():
    cfg = CompareMethodsConfig(output_dir="/tmp/unused")
    assert condition_overrides(cfg, "default") == {}
    assert condition_overrides(cfg, "no_teacher") == {"teachers": []}
    paper = condition_overrides(cfg, "paper")
    assert paper["teachers"] == ["dataset:default", "dataset:default-weak"] and paper["dataset"] == cfg.paper_dataset
    with pytest.raises(ValueError, match="unknown condition 'best'"):
        CompareMethodsConfig(conditions=["best"])
    with pytest.raises(ValueError, match="unknown training method"):
        CompareMethodsConfig(methods=["ppo"])


def test_learning_rate_overrides_per_method():
    cfg = CompareMethodsConfig(output_dir="/tmp/unused", learning_rates=["dpo=5e-6", "grpo=1e-5"])
    assert (cfg.lr_for("dpo"), cfg.lr_for("grpo"), cfg.lr_for("rrtf")) == (5e-6, 1e-5, 5e-4)
    assert "learning_rates" in cfg.identity() and "learning_rates" not in CompareMethodsConfig().identity()
    with pytest.raises(ValueError, match="expected METHOD=LR"):
        CompareMethodsConfig(learning_rates=["dpo"])


def test_a_method_an_earlier_call_added_is_reported_after_the_requested_ones(tmp_path):
    import json

    from rrtf.compare_methods.report import write_report

    records = [rec("no_teacher", "base", 1, 0.4), rec("no_teacher", "rrtf", 1, 0.3), rec("no_teacher", "rrtf_best", 1, 0.5)]
    cfg = CompareMethodsConfig(methods=["rrtf"], conditions=["no_teacher"], seeds=[1], output_dir=str(tmp_path))
    summary = write_report(records, cfg, tmp_path, {"device": "cpu"})
    assert [r["method"] for r in summary["rows"]] == ["base", "rrtf", "rrtf_best"]
    assert summary["rows"][2]["vs_rrtf"]["mean_diff"] == pytest.approx(0.2)
    assert "| rrtf_best | 0.500" in (tmp_path / "results.md").read_text() and json.loads((tmp_path / "results.json").read_text())["rows"]
