"""data_evol after a server's bad spell (issue 18): calls that failed in a stage that still finished are asked again
on the rerun, and the rerun ends with what a clean run has -- even with the server moved to another port (a run is
identified by model, not URL), and with a line of a finished stage's file garbled on disk. A real HTTP server on
loopback answers deterministically from the request, so two runs can be compared record for record."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from testkit import run_module

TASKS = [{"instruction": f"Write a function that returns the number {i} plus its argument, for any integer."} for i in range(6)]


class Server:
    """evolve: the parent task with one sentence added; answer: a solution and tests that pass; some calls can be
    refused with HTTP 400 (as a server in trouble does), chosen by a hash of the request."""

    def __init__(self, refuse_every: int = 0):
        self.refuse_every, self.posts, self.refused = refuse_every, 0, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                self.send_response(404)
                self.end_headers()

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                status, data = owner.reply(body["messages"][-1]["content"])
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, prompt: str) -> tuple[int, bytes]:
        self.posts += 1
        digest = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
        if self.refuse_every and digest % self.refuse_every == 0:
            self.refused += 1
            return 400, b'{"error": {"message": "context length exceeded"}}'
        if prompt.startswith("Solve the task"):
            text = "```python\ndef f(x):\n    return x\n```\n```python\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n```\n"
        else:
            task = prompt.rsplit("\n", 1)[-1].strip() or prompt[-200:]
            text = f"{task} Also explain variant {digest % 97} of the approach."
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return 200, json.dumps({"id": "x", "object": "chat.completion", "choices": [choice]}).encode()

    def close(self) -> None:
        self.httpd.shutdown()


def job(url: str, seeds: Path, out: Path, *extra: str):
    spec = f"openai-chat:{url}#fake-model"
    return run_module("data_evol", "--seeds", str(seeds), "--evolver", spec, "--teachers", spec, "--rounds", "2",
                      "--max_retries", "0", "--max_failed_calls", "50", "--output_dir", str(out), "--progress", "false",
                      *extra, timeout=300)


def records(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name).read_text().splitlines() if line.strip()]


def final(out: Path) -> dict[str, list]:
    return {name: sorted(json.dumps(r, sort_keys=True) for r in records(out, name))
            for name in ("instructions.jsonl", "decontaminated.jsonl", "problems.jsonl", "rejected.jsonl")}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    return path


@pytest.fixture(scope="module")
def clean(seeds, tmp_path_factory) -> Path:
    server = Server()
    out = tmp_path_factory.mktemp("clean") / "out"
    try:
        assert job(server.url, seeds, out).returncode == 0
    finally:
        server.close()
    return out


def test_failed_calls_are_asked_again_and_the_rerun_ends_as_a_clean_run(seeds, clean, tmp_path):
    flaky = Server(refuse_every=3)
    out = tmp_path / "out"
    try:
        first = job(flaky.url, seeds, out)
    finally:
        flaky.close()
    assert first.returncode == 0, first.stderr[-2000:]
    assert flaky.refused > 0, "the bad spell must hit some calls"
    assert final(out) != final(clean)  # the failures showed in the output
    healthy = Server()  # the same model, served on another port now
    try:
        again = job(healthy.url, seeds, out)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "reopening stage 'evolve'" in again.stderr and "asking them again" in again.stderr
        assert 0 < healthy.posts
        assert final(out) == final(clean)
        asked = healthy.posts
        assert job(healthy.url, seeds, out).returncode == 0 and healthy.posts == asked  # finished now: no call
    finally:
        healthy.close()


def test_a_garbled_line_in_a_finished_stage_is_set_aside_and_redone(seeds, clean, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(clean, out)
    answers = (out / "answers.jsonl").read_text().splitlines(keepends=True)
    answers[1] = '{"id": "seed/1", "teach\x00\x00garbled\n'
    (out / "answers.jsonl").write_text("".join(answers))
    server = Server()
    try:
        rerun = job(server.url, seeds, out)
    finally:
        server.close()
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "answers.jsonl:2 is unreadable" in rerun.stderr
    assert server.posts == 1  # exactly the answer that was lost
    assert (out / "answers.jsonl.corrupt.jsonl").read_text().count("garbled") == 1  # set aside, not lost
    assert final(out) == final(clean)
