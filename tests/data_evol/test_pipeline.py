"""End-to-end runs of the data job: a local transformers model, a real `transformers serve` killed
mid-run and resumed (no lost or duplicate records, no repeated call), bad endpoints, and rrtf
training on the output."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from testkit import CHAT_TEMPLATE, QUIET_ENV, REPO, run_module

from data_evol.config import EvolConfig
from data_evol.pipeline import run
from sandbox.base.records import Problem


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


@pytest.fixture(scope="module")
def chat_model(tiny_dir, tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("chat") / "model"
    shutil.copytree(tiny_dir, path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory) -> Path:
    from rrtf.datasets import load_dataset

    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    path.write_text("".join(json.dumps(p.to_record()) + "\n" for p in load_dataset("tiny-tasks:train").problems[:10]))
    return path


@pytest.fixture(scope="module")
def local_run(chat_model, seeds_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("evol") / "out"
    spec = f"transformers:{chat_model}"
    cfg = EvolConfig(seeds=str(seeds_file), output_dir=str(out), evolver=spec, teachers=[spec], max_seeds=6, rounds=2,
                     max_new_tokens=24, answer_max_new_tokens=32, num_threads=1, progress=False, min_tests=2)
    return cfg, run(cfg)


def test_local_run_writes_every_stage_with_provenance(local_run):
    cfg, stats = local_run
    out = Path(cfg.output_dir)
    for name in ("seeds", "evolved", "eliminated", "instructions", "deduped", "decontaminated", "answers", "validated", "problems"):
        assert (out / f"{name}.jsonl").exists(), name
    evolved = lines(out / "evolved.jsonl")
    assert len(evolved) == 12 and len({r["id"] for r in evolved}) == 12  # 6 seeds x 2 rounds, once each
    assert {r["round"] for r in evolved} == {1, 2} and all(r["template_version"].startswith("code-evol@v1+") for r in evolved)
    problems = lines(out / "problems.jsonl")
    assert problems, stats["select"]
    for rec in problems:
        Problem.from_record(rec)
        assert set(rec["evol"]) >= {"seed_id", "parent_id", "method", "round", "model", "template_version"}
        assert rec["teacher_answers"][0]["solution"] == rec["canonical_solution"]
    import datasets

    ds = datasets.load_dataset("json", data_files=str(out / "problems.jsonl"), split="train")
    assert len(ds) == len(problems) and "evol" in ds.column_names
    assert stats["calls"]["evolve"]["calls"] == 12 and stats["select"]["kept"] == len(problems)
    report = (out / "report.md").read_text()
    assert "survivors.png" in report and (out / "survivors.png").stat().st_size > 1000


def test_finished_dir_rerun_builds_and_calls_nothing(local_run, monkeypatch):
    cfg, stats = local_run
    from data_evol import models

    def refuse(self, spec):
        raise AssertionError(f"a finished run built {spec}")

    monkeypatch.setattr(models.ModelPool, "_build", refuse)
    again = run(cfg)
    assert again["calls"] == stats["calls"] and again["select"] == stats["select"]
    with pytest.raises(ValueError, match="other settings.*rounds"):
        run(replace(cfg, rounds=3))


def test_a_state_file_of_the_wrong_shape_is_set_aside_not_a_traceback(local_run, tmp_path, caplog):
    """`{"done": 5}` (valid JSON, wrong shape) used to fail every rerun; now the stages resume from their files."""
    import shutil

    cfg, stats = local_run
    out = tmp_path / "copy"
    shutil.copytree(cfg.output_dir, out)
    (out / "state.json").write_text(json.dumps({"done": 5, "info": [], "calls": {"x": "y"}}))
    again = run(replace(cfg, output_dir=str(out)))
    assert "field 'done' of the wrong shape ignored" in caplog.text and "field 'calls'" in caplog.text
    assert again["select"] == stats["select"]
    assert json.loads((out / "state.json").read_text())["done"][-1] == "select"


@pytest.mark.slow
def test_rrtf_trains_on_the_output(local_run, tiny_dir, tmp_path):
    cfg, _ = local_run
    proc = subprocess.run([sys.executable, "-m", "rrtf.train", "--dataset", f"{cfg.output_dir}/problems.jsonl", "--model_name_or_path",
                           str(tiny_dir), "--output_dir", str(tmp_path / "train"), "--max_steps", "2", "--num_samples", "2",
                           "--max_new_tokens", "12", "--eval_max_problems", "2", "--disable_tqdm", "true", "--report_to", "none"],
                          cwd=REPO, env={**os.environ, **QUIET_ENV}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "train" / "metrics.json").exists()


def _posts(log: Path) -> int:
    return log.read_text(errors="replace").count("POST /v1/chat/completions")


def _stored(out: Path) -> int:
    return len(lines(out / "evolved.jsonl")) + len([a for a in lines(out / "answers.jsonl") if a["teacher"] != "seed"])


@pytest.mark.slow
def test_killed_served_run_resumes_without_loss_duplicates_or_repeated_calls(served, seeds_file, tmp_path):
    base_url, model_dir = served
    log = Path(model_dir).parent / "serve.log"
    out = tmp_path / "out"
    spec = f"openai-chat:{base_url}#{model_dir}"
    args = ["--seeds", str(seeds_file), "--evolver", spec, "--teachers", spec, "--rounds", "2", "--max_new_tokens", "16",
            "--answer_max_new_tokens", "24", "--concurrency", "2", "--output_dir", str(out), "--progress", "false"]
    cmd = [sys.executable, "-m", "data_evol", *args]
    env = {**os.environ, **QUIET_ENV}
    before = _posts(log)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(lines(out / "evolved.jsonl")) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored_at_kill = _stored(out)
    assert 0 < stored_at_kill < 40, "the kill must land mid-run"
    posts_at_kill = _posts(log)
    assert 0 <= posts_at_kill - before - stored_at_kill <= 2  # at most the requests in flight were lost
    done = run_module("data_evol", *args, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    evolved, answers = lines(out / "evolved.jsonl"), lines(out / "answers.jsonl")
    assert sorted(r["id"] for r in evolved) == sorted(f"{s}/r{r}" for s in {json.loads(x)["task_id"] for x in seeds_file.read_text().splitlines()}
                                                       for r in (1, 2))
    assert len({(a["id"], a["teacher"]) for a in answers}) == len(answers)
    pool = lines(out / "decontaminated.jsonl")
    assert {a["id"] for a in answers if a["teacher"] != "seed"} == {t["id"] for t in pool}
    # the rerun asked exactly for what was missing: one request per newly stored record
    assert _posts(log) - posts_at_kill == _stored(out) - stored_at_kill
    finished = _posts(log)
    again = run_module("data_evol", *args, timeout=300)
    assert again.returncode == 0 and _posts(log) == finished  # a finished output dir makes no call


def test_unreachable_endpoint_is_a_clear_error_keeping_finished_records(seeds_file, tmp_path):
    from testkit import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = run_module("data_evol", "--seeds", str(seeds_file), "--evolver", f"openai-chat:{url}#m", "--teachers", f"openai-chat:{url}#m",
                      "--output_dir", str(tmp_path / "o"), "--progress", "false", timeout=120)
    assert proc.returncode == 2 and url in proc.stderr and "unreachable" in proc.stderr
    assert len(lines(tmp_path / "o" / "seeds.jsonl")) == 10


def test_non_json_replies_stop_the_job_with_the_reason(seeds_file, tmp_path):
    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"<html>oops")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        proc = run_module("data_evol", "--seeds", str(seeds_file), "--evolver", f"openai-chat:{url}#m", "--teachers", "default",
                          "--output_dir", str(tmp_path / "o"), "--max_retries", "0", "--max_failed_calls", "3", "--progress", "false",
                          timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "requests in a row failed" in proc.stderr and "not JSON" in proc.stderr
    assert len(lines(tmp_path / "o" / "seeds.jsonl")) == 10


@pytest.mark.slow
def test_llm_equality_judge_is_asked_for_every_rule_survivor(served, chat_model, seeds_file, tmp_path):
    base_url, model_dir = served
    spec = f"transformers:{chat_model}"
    cfg = EvolConfig(seeds=str(seeds_file), output_dir=str(tmp_path / "o"), evolver=spec, teachers=[spec], judge=f"openai-chat:{base_url}#{model_dir}",
                     max_seeds=3, rounds=1, max_new_tokens=24, answer_max_new_tokens=16, num_threads=1, progress=False)
    stats = run(cfg)
    verdicts = lines(tmp_path / "o" / "eliminated.jsonl")
    asked = [v for v in verdicts if "judge" in v]
    assert len(verdicts) == 3 and stats["calls"]["judge"]["calls"] == len(asked) > 0
    for v in asked:  # the tiny served model answers noise: "unclear" keeps the task, and is counted
        assert v["kept"] == (v["reason"] == "") and (v["judge_unclear"] or v["reason"] in ("", "judge_equal"))
