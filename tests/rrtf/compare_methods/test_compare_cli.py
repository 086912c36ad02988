"""`python -m rrtf.compare_methods` end to end, made small: the shared stage runs once per (condition, seed),
each method runs in its own process and is recorded, SFT is skipped without a teacher, a rerun redoes nothing,
and another budget is refused."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

SMALL = ["--seeds", "42", "--max_problems", "8", "--eval_max_problems", "4", "--num_samples", "3", "--num_train_epochs", "1",
         "--max_new_tokens", "48", "--disable_tqdm", "true"]


@pytest.mark.slow
@pytest.mark.extended  # each method trains for real here; test_methods.py covers each method's step in seconds
def test_compare_runs_each_unit_once_and_reports(tmp_path):
    out = tmp_path / "cmp"
    args = ["--output_dir", str(out), "--methods", "rrtf", "sft", "dpo", "--conditions", "default", "no_teacher", *SMALL]
    first = run_module("rrtf.compare_methods", *args, timeout=1500)
    assert first.returncode == 0, first.stderr[-3000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["condition"], r["method"]) for r in records) == [
        ("default", "base"), ("default", "dpo"), ("default", "rrtf"), ("default", "sft"),
        ("no_teacher", "base"), ("no_teacher", "dpo"), ("no_teacher", "rrtf")]  # no SFT target without a teacher
    for r in records:
        assert 0 <= r["pass_at_1"] <= 1 and r["heldout_loss"] > 0 and r["wall_time_s"] > 0
    # the methods on ranked data trained on the shared stage's very samples
    shared = (out / "shared" / "default-seed42" / "round0" / "ranked.jsonl").read_text()
    assert (out / "runs" / "default" / "dpo-seed42" / "round0" / "ranked.jsonl").read_text() == shared
    summary = json.loads((out / "results.json").read_text())
    assert {(row["condition"], row["method"]) for row in summary["rows"]} >= {("default", "sft"), ("no_teacher", "dpo")}
    assert "vs RRTF" in (out / "results.md").read_text() and (out / "methods.png").stat().st_size > 0

    stamp = (out / "runs" / "default" / "rrtf-seed42" / "result.json").stat().st_mtime_ns
    again = run_module("rrtf.compare_methods", *args, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "runs" / "default" / "rrtf-seed42" / "result.json").stat().st_mtime_ns == stamp, "a finished run was redone"

    other = [("2" if prev == "--num_samples" else a) for prev, a in zip(["", *args], args)]
    changed = run_module("rrtf.compare_methods", *other, timeout=300)
    assert changed.returncode == 2 and "holds a comparison with different num_samples" in changed.stderr
