"""`python -m rrtf.compare_tuning` end to end on the embedded default, made small: the shared data is made
once, each method x seed runs in its own process and is recorded, a rerun with one more method runs only
that one, and the table, plots and summary are written."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

SMALL = ["--seeds", "0", "--max_problems", "8", "--eval_max_problems", "4", "--max_steps", "2", "--num_samples", "2",
         "--max_new_tokens", "16", "--disable_tqdm", "true", "--eval_datasets", "aatk"]


@pytest.mark.slow
def test_compare_runs_every_method_once_and_reports(tmp_path):
    out = tmp_path / "compare"
    first = run_module("rrtf.compare_tuning", "--output_dir", str(out), "--methods", "lora", *SMALL, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    lora = out / "runs" / "lora-seed0" / "result.json"
    stamp = lora.stat().st_mtime_ns

    second = run_module("rrtf.compare_tuning", "--output_dir", str(out), "--methods", "lora", "prompt_tuning",
                        "--results_json", str(tmp_path / "summary.json"), *SMALL, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert lora.stat().st_mtime_ns == stamp, "the finished run was redone"
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in records] == [("lora", 0), ("prompt_tuning", 0)]
    for r in records:
        assert 0 <= r["pass_at_1"] <= 1 and r["steps"] == 2 and r["peak_memory_mb"] > 0 and r["heldout_loss"] > 0
        assert len(r["loss_curve"]) == 2 and 0 < r["trainable_percent"] < 100
        aatk = r["benchmarks"]["aatk"]  # --eval_datasets: code security judged for every trained model
        assert 0 <= aatk["valid"] <= 1 and (aatk["insecure"] is None or 0 <= aatk["insecure"] <= 1) and "error" not in aatk, aatk
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["method"] for row in summary["rows"]] == ["lora", "prompt_tuning"]
    assert "| lora |" in second.stdout and "aatk valid" in (out / "report.md").read_text()
    assert (out / "loss_curves.png").stat().st_size > 0 and (out / "pass_at_1.png").stat().st_size > 0

    longer = [("3" if prev == "--max_steps" else arg) for prev, arg in zip(["", *SMALL], SMALL)]
    changed = run_module("rrtf.compare_tuning", "--output_dir", str(out), "--methods", "lora", *longer, timeout=300)
    assert changed.returncode == 2 and "holds a comparison with different max_steps" in changed.stderr
