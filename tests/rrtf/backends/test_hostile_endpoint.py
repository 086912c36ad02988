"""A hostile OpenAI-compatible teacher, started by the test as a real process on loopback: oversized,
surrogate, invalid-JSON, silent and flaky replies. What is kept is capped at what was asked for, text is
sanitised at the boundary, transient failures are retried (and the waiting is reported), every error
names the endpoint, and nothing already written is lost."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import free_port, run_module

from rrtf.backends import GenerationRequest, SamplingParams
from rrtf.backends.openai_backend import EndpointError, OpenAIBackend
from rrtf.sampler import SamplerConfig, sample
from sandbox.base.records import Problem

SERVER = Path(__file__).with_name("hostile_server.py")


class Hostile:
    def __init__(self, mode: str):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(self.port), mode], stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                OpenAIBackend(self.url, "m", timeout=1, max_retries=0)
                return
            except ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("hostile server did not start")

    def requests(self) -> int:
        self.proc.kill()
        out = self.proc.communicate()[0]
        return sum(line.startswith("REQUEST") for line in out.splitlines())


@pytest.fixture
def hostile(request):
    servers = []

    def start(mode: str) -> Hostile:
        servers.append(Hostile(mode))
        return servers[-1]

    yield start
    for s in servers:
        s.proc.kill()
        s.proc.wait()


def problems(n: int = 2) -> list[Problem]:
    return [Problem(task_id=f"t/{i}", prompt=f"Write f{i}.", entry_point=f"f{i}", test_list=[f"assert f{i}() == 1"],
                    canonical_solution=f"def f{i}():\n    return 1\n") for i in range(n)]


def test_an_oversized_reply_is_refused_not_stored(hostile, tmp_path, caplog):
    server = hostile("oversized")
    cfg = SamplerConfig(num_samples=0, teachers=[f"openai:{server.url}#m"], max_new_tokens=64, progress=False)
    cands = sample(problems(), None, cfg.teachers, cfg, tmp_path / "c.jsonl")
    assert [c.response for c in cands] == ["", ""]  # refused whole: counted as an empty answer
    assert (tmp_path / "c.jsonl").stat().st_size < 10_000  # not 5 MB per line
    assert "refused" in caplog.text and server.url in caplog.text


def test_the_length_cap_applies_to_every_backend():
    """A reply under the byte cap but longer than max_new_tokens could make is cut to max_chars."""
    from rrtf.backends.base import MAX_CHARS_PER_TOKEN
    from rrtf.backends.reference import ReferenceBackend

    class Chatty(ReferenceBackend):
        trusted_output = False

    long = "y" * 100_000
    (out,) = Chatty({"p": long}).generate(["p"], SamplingParams(max_new_tokens=100))
    assert len(out[0]) == max(4096, 100 * MAX_CHARS_PER_TOKEN)


def test_a_lone_surrogate_is_sanitised_and_stored(hostile, tmp_path):
    server = hostile("surrogate")
    cfg = SamplerConfig(num_samples=0, teachers=[f"openai:{server.url}#m"], progress=False)
    cands = sample(problems(), None, cfg.teachers, cfg, tmp_path / "c.jsonl")
    assert all("\ud800" not in c.response and "return '?'" in c.response for c in cands)
    again = sample(problems(), None, cfg.teachers, cfg, tmp_path / "c.jsonl")  # the file reads back
    assert [c.to_record() for c in again] == [c.to_record() for c in cands]


def test_invalid_json_is_retried_then_named(hostile):
    server = hostile("invalid_json")
    backend = OpenAIBackend(server.url, "m", max_retries=2, timeout=5)
    with pytest.raises(EndpointError, match=rf"{server.url} \(model 'm'\) failed after 2 retries: reply is not JSON"):
        backend.generate([GenerationRequest(prompt="x")], SamplingParams())
    assert server.requests() == 3


def test_transient_errors_are_retried_and_the_wait_is_reported(hostile):
    server = hostile("flaky")
    waits: list[str] = []
    backend = OpenAIBackend(server.url, "m", max_retries=3, timeout=5, on_wait=waits.append)
    assert backend.generate(["x"], SamplingParams()) == [["def f():\n    return 1\n"]]
    assert len(waits) == 2 and all("HTTP 503" in w and server.url in w for w in waits)


def test_a_silent_teacher_times_out_with_the_configured_budget(hostile, tmp_path):
    """A teacher that never answers costs timeout x (retries + 1) plus backoff, not 5 x 120 s, and
    the CLI says which endpoint; what was sampled before stays."""
    server = hostile("silent")
    out = tmp_path / "run"
    start = time.monotonic()
    proc = run_module("rrtf.train", "--teachers", "reference", f"openai:{server.url}#silent-model", "--teacher_timeout", "1",
                      "--teacher_retries", "1", "--max_problems", "2", "--eval_max_problems", "2", "--output_dir", str(out),
                      "--disable_tqdm", "true", "--report_to", "none", timeout=300)
    took = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{server.url} (model 'silent-model')" in proc.stderr and "no reply within 1 s" in proc.stderr
    assert "retry 1/1" in proc.stderr  # the wait was shown, not silent
    assert took < 120, took
    lines = [json.loads(line) for line in (out / "round0" / "candidates.jsonl").read_text().splitlines()]
    assert {c["source"] for c in lines} == {"reference"} and len(lines) == 2  # the reference stage ran first, kept


def test_a_trickling_server_is_cut_off_at_the_request_deadline(hostile):
    """Headers, then a byte every half second for ever: each socket read is in time, so only a deadline on
    the whole request ends it (issue 18). Each attempt costs the timeout, and the error names the endpoint."""
    server = hostile("trickle")
    backend = OpenAIBackend(server.url, "m", max_retries=1, timeout=2)
    start = time.monotonic()
    with pytest.raises(EndpointError, match=rf"{server.url} \(model 'm'\) failed after 1 retries: reply not complete within 2 s"):
        backend.generate(["x"], SamplingParams())
    assert time.monotonic() - start < 2 * 2 + 3  # two attempts and one backoff, not for ever
