"""Reliability with real processes: whatever is killed, torn, corrupted or full, no run is stuck,
no record is silently lost, and a resumed run ends where the uninterrupted one does."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from testkit import QUIET_ENV, REPO, run_module

SMALL = ["--max_problems", "16", "--eval_max_problems", "3", "--num_samples", "2", "--max_new_tokens", "12",
         "--prompts_per_call", "2", "--disable_tqdm", "true", "--logging_steps", "1", "--report_to", "none"]


def train(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    return run_module("rrtf.train", *args, timeout=timeout)


def start_train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rrtf.train", *args], cwd=REPO, env={**os.environ, **QUIET_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def same_weights(a: Path, b: Path) -> None:
    got, want = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def reference_run(tiny_dir, tmp_path_factory) -> tuple[list[str], Path]:
    """The uninterrupted run every interrupted one must end up equal to."""
    common = ["--model_name_or_path", str(tiny_dir), "--max_steps", "12", "--save_steps", "2", "--save_total_limit", "10",
              "--seed", "5", *SMALL]
    out = tmp_path_factory.mktemp("reference") / "run"
    proc = train(*common, "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return common, out


@pytest.mark.slow
def test_a_kill_in_the_middle_of_sampling_resumes_to_the_identical_run(reference_run, tmp_path):
    common, ref = reference_run
    out = tmp_path / "killed"
    cands = out / "round0" / "candidates.jsonl"
    proc = start_train(*common, "--output_dir", str(out))
    # 16 reference lines come first; kill once the first student batches are written, well before the last
    reached = wait_for(lambda: 16 + 4 <= len(lines(cands)) < 16 + 16 * 2, proc)
    kill(proc)
    assert reached, "the run never reached the middle of sampling"
    assert len(lines(cands)) < 16 * 3
    resumed = train(*common, "--output_dir", str(out))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    def key(line: str) -> tuple:
        rec = json.loads(line)
        return rec["task_id"], rec["index"]

    assert sorted(lines(cands), key=key) == sorted(lines(ref / "round0" / "candidates.jsonl"), key=key)
    same_weights(out / "model", ref / "model")


@pytest.mark.slow
def test_a_torn_checkpoint_is_set_aside_and_the_newest_valid_one_resumed(reference_run, tmp_path):
    common, ref = reference_run
    out = tmp_path / "torn"
    ckpts = out / "round0" / "checkpoints"
    proc = start_train(*common, "--output_dir", str(out))
    reached = wait_for(lambda: (ckpts / "checkpoint-6" / "trainer_state.json").exists(), proc)
    kill(proc)
    assert reached and not (out / "metrics.json").exists()
    # what a kill (or a full disk) in the middle of writing checkpoint-6 leaves behind
    weights = ckpts / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (ckpts / "checkpoint-6" / "trainer_state.json").unlink()
    for later in ckpts.glob("checkpoint-*"):
        if int(later.name.split("-")[1]) > 6:
            shutil.rmtree(later)
    resumed = train(*common, "--output_dir", str(out), "--resume_from_checkpoint", "true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-6 cannot be resumed from (trainer_state.json missing or unreadable)" in resumed.stderr
    assert "resuming training from" in resumed.stderr and "checkpoint-4" in resumed.stderr
    assert (ckpts / "checkpoint-6.torn").is_dir()  # kept for a person to look at
    same_weights(out / "model", ref / "model")


@pytest.mark.slow
def test_state_files_of_the_wrong_shape_count_as_not_done_and_name_the_file(reference_run, tmp_path):
    """Valid JSON of another shape ("x", [], a count that is a word) used to crash every rerun."""
    common, ref = reference_run
    out = tmp_path / "shapes"
    shutil.copytree(ref, out)
    for name, text in (("state.json", '{"rounds_done": "five"}'), ("eval_before.json", '"x"'), ("run_identity.json", "[]"),
                       ("round0/rank_stats.json", "5"), ("round0/log_history.json", '{"loss": 1}')):
        (out / name).write_text(text)
    again = train(*common, "--output_dir", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "rounds_done 'five' is not a round count" in again.stderr
    for name in ("eval_before.json", "run_identity.json", "rank_stats.json"):
        assert f"{name}: state file of the wrong shape ignored, treated as not done" in again.stderr, name
    assert json.loads((out / "state.json").read_text()) == {"rounds_done": 1}
    same_weights(out / "model", ref / "model")


@pytest.mark.slow
def test_empty_state_files_count_as_not_done_and_name_the_file(reference_run, tmp_path):
    common, ref = reference_run
    out = tmp_path / "empty"
    shutil.copytree(ref, out)
    for name in ("state.json", "eval_before.json", "run_identity.json", "round0/rank_stats.json"):
        (out / name).write_text("")  # a kill on a file system without atomic rename, or a full disk
    again = train(*common, "--output_dir", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "state.json: corrupt state file ignored, treated as not done" in again.stderr
    assert json.loads((out / "state.json").read_text()) == {"rounds_done": 1}
    same_weights(out / "model", ref / "model")


@pytest.mark.slow
def test_a_garbled_middle_line_is_quarantined_never_silently_truncated(tmp_path):
    args = ["--backend", "reference", "--datasets", "humaneval", "--max_problems", "12", "--num_samples", "0",
            "--output_file", str(tmp_path / "r.json")]
    first = run_module("rrtf.evaluate", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    samples = tmp_path / "r.samples.jsonl"
    first_result = json.loads((tmp_path / "r.json").read_text())["datasets"]
    good = lines(samples)
    garbled = good[:]
    garbled[5] = garbled[5][:40] + "\x00garbage"
    samples.write_text("\n".join(garbled) + "\n")
    again = run_module("rrtf.evaluate", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{samples}:6: unreadable line moved to" in again.stderr
    assert len(lines(samples)) == 12 and sorted(lines(samples)) != sorted(garbled)  # redone, all 12 there once
    assert lines(samples.with_name(samples.name + ".corrupt.jsonl")) == [garbled[5]]
    assert json.loads((tmp_path / "r.json").read_text())["datasets"] == first_result


def test_bad_problem_records_name_file_line_and_field(tmp_path):
    cases = {
        '{"task_id": "t/0", "prompt": 7, "test_list": ["assert f() == 1"]}': ("prompt", "expected a string, got an integer"),
        '{"task_id": "t/0", "prompt": "p", "entry_point": ["f"], "test_list": ["assert f() == 1"]}': ("entry_point", "expected a string"),
        '{"task_id": "t/0", "prompt": "p", "test_list": "assert f() == 1"}': ("test_list", "expected a list, got a string"),
        '{"task_id": "t/0", "prompt": "' + "x" * 1_100_000 + '", "test_list": ["assert f() == 1"]}':
            ("prompt", "1,100,000 characters is over the limit of 1,000,000"),
    }
    for i, (line, (field, message)) in enumerate(cases.items()):
        path = tmp_path / f"p{i}.jsonl"
        path.write_text('{"task_id": "ok", "prompt": "p", "test_list": ["assert f() == 1"]}\n' + line + "\n")
        proc = run_module("rrtf.evaluate", "--datasets", str(path), "--backend", "reference", "--output_file", str(tmp_path / "r.json"))
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"{path}:2: field '{field}': {message}" in proc.stderr, proc.stderr[-2000:]
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"task_id": "t", "prompt": "caf\xe9", "test_list": ["assert 1"]}\n')
    proc = run_module("rrtf.evaluate", "--datasets", str(path), "--backend", "reference", "--output_file", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and f"{path}:1: not valid UTF-8" in proc.stderr, proc.stderr[-2000:]


def test_a_full_disk_names_the_file_and_loses_nothing_written(tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -m` (root or user namespaces) to mount a small tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    script = (f"mount -t tmpfs -o size=48k tmpfs {full} && {sys.executable} -m rrtf.evaluate --backend reference --datasets humaneval "
              f"--num_samples 0 --output_file {full}/r.json; echo RC=$?; wc -l < {full}/r.samples.jsonl")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, env={**os.environ, **QUIET_ENV}, capture_output=True,
                          text=True, timeout=300)
    assert "RC=2" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert f"{full}/r.samples.jsonl: cannot write (No space left on device)" in proc.stderr, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) > 0  # what was judged before the disk filled is still there
