"""`python -m rrtf.train --tuning_method bitune`, killed (SIGKILL) after a checkpoint and resumed: it goes
on from the checkpoint and lands on the uninterrupted run's weights -- Bitune's two adapters and its
mixing coefficients, saved by the method itself (TuningMethod.own_checkpoints)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from testkit import QUIET_ENV, REPO, kill_when

SMALL = ["--max_problems", "6", "--eval_max_problems", "4", "--num_samples", "2", "--max_new_tokens", "12",
         "--disable_tqdm", "true", "--logging_steps", "1", "--report_to", "none"]
WEIGHTS = ["adapter_model.safetensors", "bitune_bidir/adapter_model.safetensors", "bitune_mix.safetensors"]


def train(*args: str) -> list[str]:
    return [sys.executable, "-m", "rrtf.train", *args]


@pytest.mark.slow
def test_a_killed_bitune_run_resumes_onto_the_uninterrupted_weights(tiny_dir, tmp_path):
    common = ["--model_name_or_path", str(tiny_dir), "--tuning_method", "bitune", "--max_steps", "16", "--save_steps", "4",
              "--save_total_limit", "10", "--seed", "7", *SMALL]
    env = {**os.environ, **QUIET_ENV}
    ref = subprocess.run(train(*common, "--output_dir", str(tmp_path / "ref")), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]

    out = tmp_path / "killed"
    ckpt = out / "round0" / "checkpoints" / "checkpoint-8"
    kill_when(train(*common, "--output_dir", str(out)), ckpt / "trainer_state.json")
    assert (ckpt / "trainer_state.json").exists(), "the run never reached its checkpoint"
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    assert all((ckpt / name).exists() for name in WEIGHTS) and not (ckpt / "model.safetensors").exists()

    resumed = subprocess.run(train(*common, "--output_dir", str(out), "--resume_from_checkpoint", "true"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-8" in resumed.stderr
    stepped = [line for line in resumed.stdout.splitlines() if line.startswith("{'loss'")]
    assert len(stepped) == 16 - 8
    for name in WEIGHTS:
        got, want = load_file(str(out / "model" / name)), load_file(str(tmp_path / "ref" / "model" / name))
        assert got.keys() == want.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=f"{name}: {key}")
