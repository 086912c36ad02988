"""`python -m sandbox serve` end to end: a real server on loopback over a real sandbox pool, real HTTP clients
(httpx, requests, raw sockets). The verdicts and rewards it gives are compared with the in-process pool's."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import requests

from rrtf.paths import DATA_DIR
from sandbox import Problem, Sandbox, SandboxConfig
from sandbox.base.records import IOCase
from sandbox.client import SandboxClient, ServiceError
from sandbox.serve.config import ServeConfig, is_loopback
from sandbox.serve.server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent.parent
LIMITS = ["--timeout-s", "30", "--program-timeout-s", "60"]  # a loaded CI machine never times a right answer out
TOKEN = "s3cret-token"
SLEEP = "import time\ntime.sleep({})\nprint('slept')\n"


def humanevalpack(n: int = 4) -> list[Problem]:
    with open(DATA_DIR / "humanevalpack" / "humanevalpack_python.jsonl") as fh:
        return [Problem.from_record(json.loads(line)) for line, _ in zip(fh, range(n), strict=False)]


@pytest.fixture(scope="module")
def cli_server():
    """`python -m sandbox serve` as a user starts it; yields its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--port", "0", "--workers", "2", *LIMITS],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+)", line)
    if not match:
        proc.kill()
        pytest.fail(f"server did not start: {line!r} {proc.stderr.read()[-2000:]}")
    try:
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="module")
def in_process():
    with Sandbox(SandboxConfig(workers=1, timeout_s=30, program_timeout_s=60)) as sb:
        yield sb


@pytest.fixture(scope="module")
def tight():
    """A server with one job at a time, two queued, 64 KiB bodies and a token."""
    config = ServeConfig(port=0, token=TOKEN, concurrency=1, queue_limit=2, max_request_bytes=64 << 10,
                         sandbox=SandboxConfig(workers=1))
    with SandboxServer(config) as server:
        yield server


def key(verdict) -> tuple:
    return (verdict.status, verdict.passed_tests, verdict.total_tests, verdict.reason, [t.passed for t in verdict.tests])


def test_judge_and_run_code_give_the_in_process_verdicts(cli_server, in_process):
    problems = humanevalpack()
    with SandboxClient(cli_server) as client:
        for p in problems:
            local = [in_process.check(p, c, i) for i, c in enumerate([p.canonical_solution, p.buggy_solution])]
            remote = client.judge(p, [p.canonical_solution, p.buggy_solution])
            assert [key(v) for v in remote] == [key(v) for v in local], p.task_id
            assert [v.sample_index for v in remote] == [0, 1]
            for completion, verdict in zip([p.canonical_solution, p.buggy_solution], local, strict=True):
                program = p.prompt + completion + "\n\n" + p.test + f"\ncheck({p.entry_point})\n"
                result = client.run_code(program, "python", run_timeout=30)
                assert (result["status"] == "Success") == verdict.passed, (p.task_id, result)
        assert [v.passed for p in problems for v in client.judge(p, [p.canonical_solution, p.buggy_solution])] \
            == [True, False] * len(problems)


def test_run_code_speaks_sandboxfusion(cli_server):
    post = lambda **body: httpx.post(cli_server + "/run_code", json=body, timeout=60)  # noqa: E731
    ok = post(code="print(int(input()) * 2)", language="python", stdin="21\n").json()
    assert ok["status"] == "Success" and ok["compile_result"] is None
    assert ok["run_result"]["status"] == "Finished" and ok["run_result"]["return_code"] == 0
    assert ok["run_result"]["stdout"] == "42\n" and isinstance(ok["run_result"]["execution_time"], float)
    failed = post(code="import sys\nprint('x')\nsys.exit(3)\n", language="python3").json()
    assert failed["status"] == "Failed" and failed["run_result"]["return_code"] == 3 and failed["run_result"]["stdout"] == "x\n"
    late = post(code="while True:\n    pass\n", language="python", run_timeout=1).json()
    assert late["run_result"]["status"] == "TimeLimitExceeded" and late["run_result"]["return_code"] is None
    assert post(code="print(1)", language="php").status_code == 422  # as SandboxFusion's FastAPI answers a bad body
    assert post(code="console.log(1)", language="nodejs").status_code == 422  # JavaScript: judged through tests only
    big = post(code="print('y' * 50000)", language="python").json()
    assert big["run_result"]["stdout"] == "y" * 50000 + "\n"
    cpp = post(code="#include <cstdio>\nint main() { int x; scanf(\"%d\", &x); printf(\"%d\\n\", 3 * x); return x; }\n",
               language="cpp", stdin="5").json()
    assert cpp["compile_result"]["return_code"] == 0 and cpp["run_result"]["stdout"] == "15\n"
    assert cpp["status"] == "Failed" and cpp["run_result"]["return_code"] == 5
    broken = post(code="int main() { return 0 }", language="cpp").json()
    assert broken["status"] == "Failed" and broken["run_result"] is None
    assert broken["compile_result"]["status"] == "Finished" and broken["compile_result"]["return_code"] != 0


def verl_compute_score(url: str, completion: str, test_cases: dict, timeout: int = 30, memory_limit_mb: int = 1024) -> float:
    """verl's SandboxFusion reward (verl/utils/reward_score/sandbox_fusion/__init__.py `compute_score` and utils.py
    `call_sandbox_api`, `_process_single_case`, `check_correctness`), re-implemented here with its request, its
    retries and its reading of the response; the fn_name wrapper for LeetCode-style calls is left out."""
    if "```python" in completion:
        solution = completion.split("```python")[-1].split("```")[0]
    else:
        return 0.0
    if "assert_case" in test_cases:
        test_cases.setdefault("inputs", ["" for _ in test_cases["assert_case"]])
        test_cases.setdefault("outputs", [None for _ in test_cases["assert_case"]])
    inputs, outputs = test_cases["inputs"], test_cases["outputs"]
    asserts = test_cases.get("assert_case", [""] * len(inputs))
    results = []
    for stdin, expected, assert_case in zip(inputs, outputs, asserts, strict=True):
        payload = json.dumps({"compile_timeout": timeout, "run_timeout": timeout, "code": solution + "\n\n" + assert_case,
                              "stdin": None if stdin is None else str(stdin), "memory_limit_MB": memory_limit_mb,
                              "language": "python", "files": {}, "fetch_files": []})
        response = None
        for attempt in range(3):
            r = requests.post(url, headers={"Content-Type": "application/json", "Accept": "application/json"},
                              data=payload, timeout=2 * timeout + 10)
            if r.status_code == 504:
                time.sleep(attempt + 1)
                continue
            r.raise_for_status()
            response = r.json()
            break
        if response is None or response.get("status") == "SandboxError":
            results.append(-1)
        elif response["status"] == "Failed":
            compile_result, run = response.get("compile_result"), response.get("run_result")
            if compile_result and (compile_result["status"] in ("Error", "TimeLimitExceeded") or compile_result.get("return_code") != 0):
                results.append(-4)
            elif run:
                results.append(-3 if run["status"] == "TimeLimitExceeded" else -2)
            else:
                results.append(-1)
        elif response["status"] == "Success" and response["run_result"]["status"] == "Finished":
            stdout = response["run_result"]["stdout"] or ""
            results.append(expected is None or str(stdout).rstrip("\n") == str(expected).rstrip("\n"))
        else:
            results.append(-1)
    return sum(1 for r in results if r is True) / len(results)


def test_verl_sandbox_fusion_client_gets_the_in_process_rewards(cli_server, in_process):
    for p in humanevalpack(3):
        for completion in (p.canonical_solution, p.buggy_solution):
            answer = f"Here it is:\n```python\n{p.prompt}{completion}\n```\n"
            remote = verl_compute_score(cli_server + "/run_code", answer,
                                        {"assert_case": [p.test + f"\ncheck({p.entry_point})\n"]})
            assert remote == float(in_process.check(p, completion).passed), p.task_id
    # stdin/stdout tests: the reward is the fraction of cases passed, as the judge counts them.
    io = Problem(task_id="io/triangle", prompt="", io_cases=[IOCase(f"{n}\n", f"{n * (n + 1) // 2}\n") for n in (1, 2, 3, 10)])
    cases = {"inputs": [c.input for c in io.io_cases], "outputs": [c.output for c in io.io_cases]}
    for program in ("n = int(input())\nprint(n * (n + 1) // 2)\n", "n = int(input())\nprint(n * (n + 1) // 2 if n < 3 else 0)\n",
                    "n = int(input())\nprint(1 // (n - 1))\n"):
        local = in_process.check(io, program)
        remote = verl_compute_score(cli_server + "/run_code", f"```python\n{program}```", dict(cases))
        assert remote == local.passed_tests / local.total_tests, program


def test_a_token_is_required_and_refused_off_loopback(tight):
    body = {"code": "print(1)", "language": "python"}
    assert httpx.post(tight.url + "/run_code", json=body).status_code == 401
    assert httpx.post(tight.url + "/run_code", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(tight.url + "/stats").status_code == 401
    assert httpx.post(tight.url + "/run_code", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).json()["status"] == "Success"
    assert httpx.post(tight.url + f"/run_code?token={TOKEN}", json=body).json()["status"] == "Success"  # verl's URL
    with pytest.raises(ValueError, match="without --token"):
        SandboxServer(ServeConfig(host="0.0.0.0", port=0))
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("0.0.0.0")
    cli = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--host", "0.0.0.0", "--port", "0"], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "without --token" in cli.stderr


def test_oversized_requests_are_413_before_any_work(tight):
    with SandboxClient(tight.url, token=TOKEN) as client:
        before = client.stats()["admitted"]
        with pytest.raises(ServiceError) as exc:
            client.run_code("x = '" + "a" * (70 << 10) + "'\n")
        assert exc.value.status == 413
        p = humanevalpack(1)[0]
        with pytest.raises(ServiceError) as exc:
            client.judge(p, [p.canonical_solution] * 3)  # more jobs than the queue can ever hold
        assert exc.value.status == 413
        assert client.stats()["admitted"] == before


def test_the_client_retries_connection_failures_a_bounded_number_of_times():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SandboxClient(f"http://127.0.0.1:{port}", retries=3, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        client.run_code("print(1)")
    assert client.retried == 3 and time.monotonic() - start < 5


def _wait_for(client: SandboxClient, predicate, timeout: float = 30) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        stats = client.stats()
        if predicate(stats):
            return stats
        time.sleep(0.05)
    raise AssertionError(f"server never reached the state; last {stats}")


def _background(client: SandboxClient, seconds: float, out: list) -> threading.Thread:
    t = threading.Thread(target=lambda: out.append(client.run_code(SLEEP.format(seconds), run_timeout=30)))
    t.start()
    return t


def test_a_full_queue_is_429_with_retry_after_and_the_client_retries(tight):
    with SandboxClient(tight.url, token=TOKEN) as client:
        _wait_for(client, lambda s: s["running"] == 0 and s["queued"] == 0)
        done: list = []
        threads = [_background(client, 3.0, done)]
        _wait_for(client, lambda s: s["running"] == 1)
        threads += [_background(client, 0.1, done), _background(client, 0.1, done)]
        _wait_for(client, lambda s: s["queued"] == 2)
        full = httpx.post(tight.url + "/run_code", json={"code": "print(1)", "language": "python"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        retrying = SandboxClient(tight.url, token=TOKEN, backoff_s=0.1)
        assert retrying.run_code("print(7)")["run_result"]["stdout"] == "7\n"  # waits out the 429s
        assert retrying.retried >= 1
        for t in threads:
            t.join(timeout=60)
        assert [r["status"] for r in done] == ["Success"] * 3


def test_a_client_that_disconnects_has_its_queued_jobs_dropped(tight):
    with SandboxClient(tight.url, token=TOKEN) as client:
        _wait_for(client, lambda s: s["running"] == 0 and s["queued"] == 0)
        before = client.stats()
        done: list = []
        holder = _background(client, 3.0, done)  # holds the only slot
        _wait_for(client, lambda s: s["running"] == 1)
        body = json.dumps({"code": SLEEP.format(5), "language": "python", "run_timeout": 30}).encode()
        host, port = tight.httpd.server_address[:2]
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            _wait_for(client, lambda s: s["queued"] == 1)
        after = _wait_for(client, lambda s: s["dropped"] == before["dropped"] + 1 and s["queued"] == 0, timeout=5)
        assert after["running"] == 1  # only the holder's job
        holder.join(timeout=60)
        final = _wait_for(client, lambda s: s["running"] == 0)
        assert final["judged"] == before["judged"] + 1  # the disconnected client's 5-second job never ran
        assert done[0]["status"] == "Success"


def test_a_request_past_its_time_limit_is_504_and_its_queued_jobs_are_dropped():
    config = ServeConfig(port=0, concurrency=1, request_timeout_s=1.0, sandbox=SandboxConfig(workers=1))
    with SandboxServer(config) as server, SandboxClient(server.url, retries=0) as client:
        results: list = []
        first = threading.Thread(target=lambda: results.append(httpx.post(
            server.url + "/run_code", json={"code": SLEEP.format(4), "language": "python"}, timeout=30)))
        first.start()
        _wait_for(client, lambda s: s["running"] == 1)
        with pytest.raises(ServiceError) as exc:
            client.run_code(SLEEP.format(2.5))  # queued behind the first: never starts within 1 s
        assert exc.value.status == 504
        first.join(timeout=30)
        assert results[0].status_code == 504  # the running job was past the limit too (it runs to its own end)
        final = _wait_for(client, lambda s: s["running"] == 0)
        assert final["dropped"] == 1 and final["judged"] == 1
