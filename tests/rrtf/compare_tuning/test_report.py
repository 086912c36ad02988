"""The comparison's statistics against hand values, and its findings read off a table."""
from __future__ import annotations

import math

import pytest

from rrtf.compare_tuning.report import findings, mean_sd, pareto_front, ranks, spearman, summarize, table


def test_ranks_share_ties():
    assert ranks([3.0, 1.0, 2.0, 1.0]) == [4.0, 1.5, 3.0, 1.5]


def test_spearman_hand_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # d = (0, 1, -1): rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1], [1])


def test_mean_sd_is_the_sample_standard_deviation():
    assert mean_sd([0.5, 0.7, 0.6]) == pytest.approx((0.6, 0.1))
    assert mean_sd([0.4]) == (0.4, 0.0)


def test_pareto_front():
    points = {"full": (100.0, 0.7), "lora": (0.3, 0.6), "ia3": (0.02, 0.4), "adapter_h": (4.2, 0.55)}
    assert sorted(pareto_front(points)) == ["full", "ia3", "lora"]  # adapter_h costs more than lora and scores less


def record(method, seed, percent, loss, held, passed):
    return {"method": method, "seed": seed, "trainable": 1, "all": 100, "trainable_percent": percent, "final_train_loss": loss,
            "heldout_loss": held, "pass_at_1": passed, "step_time_s": 0.1, "peak_memory_mb": 900.0, "memory_kind": "process peak RSS",
            "device": "cpu"}


def test_summary_table_and_findings():
    records = [record("full", s, 100.0, 0.2, 0.1 + s / 100, 0.70 + s / 100) for s in range(3)]
    records += [record("lora", s, 0.3, 0.3, 0.2, 0.60 + s / 100) for s in range(3)]
    records += [record("bitune", s, 0.6, 0.3, 0.25, 0.55) for s in range(3)]
    rows = summarize(records, ["full", "lora", "bitune", "ia3"])
    assert [r["method"] for r in rows] == ["full", "lora", "bitune"]  # no records, no row
    assert rows[0]["pass_at_1"] == pytest.approx(0.71) and rows[0]["pass_at_1_sd"] == pytest.approx(0.01)
    assert (rows[0]["pass_at_1_min"], rows[0]["pass_at_1_max"]) == (0.70, 0.72)
    text = table(rows)
    assert "| full | 100.000 |" in text and "0.710 ± 0.010 (0.700–0.720)" in text
    notes = " ".join(findings(rows))
    assert "Full fine-tuning best (Astraios): yes" in notes
    assert "LoRA is on the trainable-% / pass@1 Pareto front" in notes
    assert "Bitune over LoRA (Bitune: about +4 points on Gemma-2B): no -- -6.0 points" in notes
    assert "Spearman rho = -1.00" in notes  # the lower the held-out loss, the higher pass@1


def test_the_untrained_base_is_a_reference_row_not_a_contender():
    nan = float("nan")
    base = record("base", 0, 0.0, nan, 0.5, 0.40) | {"step_time_s": nan}
    rows = summarize([base, *[record("lora", s, 0.3, 0.3, 0.2, 0.60) for s in range(2)]], ["base", "lora"])
    assert "| base | 0.000 | – |" in table(rows) and "| – |" in table(rows)
    notes = findings(rows)
    assert notes[0].startswith("Untrained base model: pass@1 0.400") and notes[0].endswith("lora.")
    assert not any("Full fine-tuning" in n for n in notes)
