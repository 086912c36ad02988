"""End-to-end tests of `python -m rrtf.train`: real processes, the real sandbox, a tiny real model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from testkit import REPO, kill_when

# Small enough to run in seconds on 2 cores; real sampling, judging, ranking and training all the same.
SMALL = ["--max_problems", "6", "--eval_max_problems", "4", "--num_samples", "2", "--max_new_tokens", "12",
         "--disable_tqdm", "true", "--logging_steps", "1", "--report_to", "none"]


@pytest.fixture(scope="module")
def tiny_model(tiny_dir) -> Path:
    return tiny_dir


def train_cmd(*args: str, launcher: list[str] | None = None) -> list[str]:
    return [*(launcher or [sys.executable]), "-m", "rrtf.train", *args]


def run_train(args: list[str], *, launcher: list[str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(train_cmd(*args, launcher=launcher), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def test_train_writes_every_artifact(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = run_train(["--model_name_or_path", str(tiny_model), "--output_dir", str(out), "--max_steps", "3", *SMALL,
                      "--eval_datasets", "humanevalpack-python:fix", "mbpp+"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["eval_before"]) >= {"pass@1"} and set(metrics["eval_after"]) >= {"pass@1"}
    # Any registered dataset x task evaluates before and after, with its own metrics (mbpp+: base and plus).
    for when in ("eval_before", "eval_after"):
        datasets = metrics[when]["datasets"]
        assert set(datasets) == {"tiny-tasks:heldout", "humanevalpack-python:fix", "mbpp+"}
        assert datasets["humanevalpack-python:fix"]["num_problems"] == 4 and datasets["humanevalpack-python:fix"]["task"] == "fix"
        assert set(datasets["mbpp+"]["metrics"]) == {"base", "plus"}
        assert "## EvalPlus" in (out / f"{when}.md").read_text()
    assert "held-out pass@1: before" in proc.stdout
    # What sampled the student and what evaluated, each with its precision (the in-memory float32 model).
    assert metrics["student_sampler"] == {"backend": "transformers", "precision": "float32"}
    assert metrics["eval_after"]["backend"]["precision"] == "float32"
    assert "student sampled by: transformers at float32" in (out / "report.md").read_text()
    for name in ("report.md", "loss.png", "pass_at_1.png", "verdicts.png", "round0/ranked.jsonl", "model/model.safetensors"):
        assert (out / name).exists(), name
    groups = [json.loads(line) for line in (out / "round0" / "ranked.jsonl").read_text().splitlines()]
    assert groups and all(len(g["responses"]) == len(g["rewards"]) for g in groups)
    trained, base = weights(out / "model"), weights(tiny_model)
    assert any(not torch.equal(trained[k], base[k]) for k in base), "training did not change the model"


@pytest.mark.slow
def test_two_processes_train_the_same_model(tiny_model, tmp_path):
    out = tmp_path / "ddp"
    # accelerate's own CPU path (`--cpu`) starts a single process here; docs/distributed.md explains
    # why this config (torchrun workers, each joining a gloo group on the CPU) is the one that works.
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(REPO / "configs" / "accelerate" / "cpu_2proc.yaml")]
    proc = run_train(["--model_name_or_path", str(tiny_model), "--output_dir", str(out), "--max_steps", "3", *SMALL],
                     launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    fingerprints = metrics["process_fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1], fingerprints
    # each rank sampled its own share of the prompts (TRL PR #2824: no duplicated work, distinct seeds)
    shards = [{json.loads(line)["task_id"] for line in (out / "round0" / f"candidates.process{r}.jsonl").read_text().splitlines()}
              for r in (0, 1)]
    assert shards[0] and shards[1] and not shards[0] & shards[1]


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(tiny_model, tmp_path):
    common = ["--model_name_or_path", str(tiny_model), "--max_steps", "30", "--save_steps", "4",
              "--save_total_limit", "10", "--seed", "7", *SMALL]
    # Reference: the same run, uninterrupted.
    ref = run_train([*common, "--output_dir", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr[-3000:]

    out = tmp_path / "killed"
    ckpt = out / "round0" / "checkpoints" / "checkpoint-8"
    kill_when(train_cmd(*common, "--output_dir", str(out)), ckpt / "trainer_state.json", timeout=240)
    assert (ckpt / "trainer_state.json").exists(), "the run never reached its checkpoint"
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"

    resumed = run_train([*common, "--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-8" in resumed.stderr  # the run says where it resumed from
    # The Trainer prints one log line per optimizer step it runs: only steps 9..30 ran again.
    stepped = [line for line in resumed.stdout.splitlines() if line.startswith("{'loss'")]
    assert len(stepped) == 30 - 8, f"expected 22 new steps after checkpoint-8, the resumed run logged {len(stepped)}"
    history = json.loads((out / "round0" / "log_history.json").read_text())
    assert max(row["step"] for row in history if "loss" in row) == 30
    # Resuming really continues: it lands on the weights of the uninterrupted run.
    got, want = weights(out / "model"), weights(tmp_path / "ref" / "model")
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5, msg=name)


def test_bad_inputs_name_what_is_wrong(tmp_path):
    missing = run_train(["--model_name_or_path", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "a"), *SMALL])
    assert missing.returncode != 0 and "does not exist" in missing.stderr and str(tmp_path / "nope") in missing.stderr

    bad = tmp_path / "problems.jsonl"
    bad.write_text('{"task_id": "t/0", "prompt": "p", "test_list": ["assert f() == 1"]}\n{"task_id": "t/1", "test_list": []\n')
    malformed = run_train(["--dataset", str(bad), "--output_dir", str(tmp_path / "b"), *SMALL])
    assert malformed.returncode != 0 and f"{bad}:2" in malformed.stderr

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    none = run_train(["--dataset", str(empty), "--output_dir", str(tmp_path / "c"), *SMALL])
    assert none.returncode == 2 and f"{empty}: no records: the input file is empty" in none.stderr  # the one rule of every input


def test_two_rounds_with_lora_sample_from_the_improved_student(tiny_model, tmp_path):
    out = tmp_path / "lora"
    proc = run_train(["--model_name_or_path", str(tiny_model), "--output_dir", str(out), "--max_steps", "2",
                      "--rounds", "2", "--tuning_method", "lora", "--lora_r", "4", *SMALL])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model" / "adapter_config.json").exists(), "LoRA must save an adapter, not the full model"
    assert not (out / "model" / "model.safetensors").exists()
    for r in (0, 1):
        assert (out / f"round{r}" / "ranked.jsonl").exists() and (out / f"round{r}" / "model").exists()
    rounds = {json.loads(line)["round"] for line in (out / "round1" / "candidates.jsonl").read_text().splitlines()}
    assert rounds == {1}
    assert json.loads((out / "state.json").read_text())["rounds_done"] == 2
