"""The command-line surface as a new user meets it: every bad input is one clear line and exit
status 2 (the traceback only with --debug); output directories derive from the run's identity; a
resumed run with another prompt template is refused; `--backend` really chooses the student's
backend (transformers in-process, and openai against a real `transformers serve`)."""
from __future__ import annotations

import json

import pytest
from testkit import run_module, start_transformers_serve, stop_process

from rrtf.config import DEFAULT_OUTPUT_DIR, RRTFConfig

SMALL = ["--max_problems", "4", "--eval_max_problems", "3", "--num_samples", "2", "--max_new_tokens", "12",
         "--disable_tqdm", "true", "--logging_steps", "1", "--report_to", "none", "--max_steps", "2"]


def one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_missing_model_directory_is_named_not_a_hub_error(tmp_path):
    proc = run_module("rrtf.train", "--model_name_or_path", "/nonexistent", "--output_dir", str(tmp_path / "o"), *SMALL)
    line = one_line_error(proc, "model directory /nonexistent does not exist")
    assert "repo" not in line.lower() and "huggingface" not in line.lower()
    proc = run_module("rrtf.evaluate", "--model_name_or_path", "/nonexistent", "--output_file", str(tmp_path / "r.json"))
    one_line_error(proc, "model directory /nonexistent does not exist")


def test_bad_names_are_one_line_errors_and_debug_shows_the_traceback(tmp_path):
    one_line_error(run_module("rrtf.evaluate", "--datasets", "humaneva", "--output_file", str(tmp_path / "r.json")),
                   "unknown dataset 'humaneva'", "known: ")
    one_line_error(run_module("rrtf.train", "--backend", "vllm-nope", "--output_dir", str(tmp_path / "o"), *SMALL),
                   "--backend vllm-nope", "unknown generation backend")
    one_line_error(run_module("rrtf.train", "--teachers", "gpt4", "--output_dir", str(tmp_path / "o2"), *SMALL),
                   "teacher 'gpt4'")
    debug = run_module("rrtf.evaluate", "--datasets", "humaneva", "--output_file", str(tmp_path / "r.json"), "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr and "unknown dataset" in debug.stderr


def test_the_default_output_dir_follows_the_run_identity():
    assert RRTFConfig().output_dir == DEFAULT_OUTPUT_DIR
    mbpp = RRTFConfig(dataset="mbpp")
    assert mbpp.output_dir.startswith("outputs/rrtf-mbpp-") and mbpp.output_dir != DEFAULT_OUTPUT_DIR
    assert RRTFConfig(dataset="mbpp").output_dir == mbpp.output_dir  # stable
    assert RRTFConfig(dataset="mbpp", seed=1).output_dir != mbpp.output_dir
    assert RRTFConfig(output_dir="x").output_dir == "x"
    # teachers count by model, not by URL: a moved server keeps the run's identity
    a = RRTFConfig(teachers=["openai:http://127.0.0.1:8000/v1#m", "reference"]).run_identity()
    b = RRTFConfig(teachers=["openai:http://10.0.0.5:9000/v1#m", "reference"]).run_identity()
    assert a == b and a != RRTFConfig(teachers=["openai:http://127.0.0.1:8000/v1#other", "reference"]).run_identity()


@pytest.mark.slow
def test_a_changed_prompt_template_is_refused_on_resume(tiny_dir, tmp_path):
    out = tmp_path / "run"
    first = run_module("rrtf.train", "--model_name_or_path", str(tiny_dir), "--output_dir", str(out), *SMALL)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_module("rrtf.train", "--model_name_or_path", str(tiny_dir), "--output_dir", str(out), "--prompt_template", "plain",
                       *SMALL)
    one_line_error(again, f"{out} holds a run with different prompt_template", "choose another --output_dir", "outputs/rrtf-")
    # the same command as the first: finished work is skipped (no round is trained again)
    rerun = run_module("rrtf.train", "--model_name_or_path", str(tiny_dir), "--output_dir", str(out), *SMALL)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "rounds done: 1" in rerun.stdout and "{'loss'" not in rerun.stdout


@pytest.mark.slow
def test_backend_openai_samples_the_student_through_a_real_server(tiny_dir, tmp_path):
    """--backend openai:URL: a real `transformers serve` (loading models on demand) is asked for the
    student's checkpoint by path each round -- the base model in round 0, the merged student export
    after training."""
    server, base_url = start_transformers_serve(None, tmp_path / "serve.log")
    out = tmp_path / "served"
    try:
        proc = run_module("rrtf.train", "--model_name_or_path", str(tiny_dir), "--output_dir", str(out), "--backend",
                          f"openai:{base_url}", "--rounds", "2", *SMALL)
    finally:
        stop_process(server)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == f"openai:{base_url}"
    for r in (0, 1):
        students = [json.loads(line) for line in (out / f"round{r}" / "candidates.jsonl").read_text().splitlines()
                    if json.loads(line)["source"] == "student"]
        assert len(students) == 4 * 2 and all(isinstance(c["response"], str) for c in students)
    assert (out / "round1" / "student" / "config.json").exists()  # exported for the server, merged
    assert not (out / "round0" / "student").exists()  # round 0 samples the base model itself
    log = (tmp_path / "serve.log").read_text()
    assert str(tiny_dir) in log and str(out / "round1" / "student") in log  # the server loaded both
    identity = json.loads((out / "run_identity.json").read_text())
    assert identity["backend"] == "openai"
