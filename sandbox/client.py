"""A Python client of `python -m sandbox serve` (sandbox/serve/): both APIs, with bounded retries.

    from sandbox.client import SandboxClient
    with SandboxClient("http://127.0.0.1:8080", token=None) as client:
        verdicts = client.judge(problem, ["    return x + y\\n", "    return x - y\\n"])   # [Verdict, ...]
        result = client.run_code("print(input())", "python", stdin="hi")        # SandboxFusion's response

Retried, because the request did no work: 429 (queue full) and 503 (too many connections, shutting
down), after the server's Retry-After (capped by `max_wait_s`), and connection failures (refused, reset
before an answer), with exponential backoff. At most `retries` retries; then the last error is raised.
Never retried: anything that may have judged (a read timeout, a 5xx after the request was taken, 504).
Verdicts are validated as records (`Verdict.from_record`): a malformed answer is an error, never a verdict.
"""
from __future__ import annotations

import time
from typing import Any

import httpx

from sandbox.base.errors import RecordError
from sandbox.base.records import Problem, Verdict

RETRY_STATUSES = (429, 503)
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class ServiceError(RuntimeError):
    def __init__(self, status: int, detail: str):
        super().__init__(f"sandbox service answered {status}: {detail}")
        self.status, self.detail = status, detail


class SandboxClient:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 660.0, retries: int = 8,
                 backoff_s: float = 0.25, max_wait_s: float = 30.0, http: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self.retries, self.backoff_s, self.max_wait_s = retries, backoff_s, max_wait_s
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._own = http is None
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self.retried = 0  # retries made so far (load tests report it)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict) -> Any:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self.http.post(self.url + path, json=body, headers=self.headers)
            except CONNECT_ERRORS:
                if last:
                    raise
                self.retried += 1
                time.sleep(min(self.max_wait_s, self.backoff_s * 2 ** attempt))
                continue
            if resp.status_code in RETRY_STATUSES and not last:
                self.retried += 1
                time.sleep(self._wait(resp, attempt))
                continue
            if resp.status_code != 200:
                raise ServiceError(resp.status_code, _detail(resp))
            return resp.json()
        raise AssertionError("unreachable")

    def _wait(self, resp: httpx.Response, attempt: int) -> float:
        try:
            after = float(resp.headers.get("Retry-After", ""))
        except ValueError:
            after = self.backoff_s * 2 ** attempt
        return min(self.max_wait_s, max(0.0, after))

    def run_code(self, code: str, language: str = "python", stdin: str | None = None, *, run_timeout: float = 10,
                 compile_timeout: float = 10, memory_limit_mb: int = -1) -> dict:
        """SandboxFusion's /run_code: {"status", "message", "compile_result", "run_result", "files"}."""
        return self._post("/run_code", {"code": code, "language": language, "stdin": stdin, "run_timeout": run_timeout,
                                        "compile_timeout": compile_timeout, "memory_limit_MB": memory_limit_mb,
                                        "files": {}, "fetch_files": []})

    def judge(self, problem: Problem | dict, completions: list[str], sample_index: int = 0) -> list[Verdict]:
        """One verdict per completion, in their order (sample indices from `sample_index` up)."""
        record = problem.to_record() if isinstance(problem, Problem) else problem
        reply = self._post("/judge", {"problem": record, "completions": list(completions), "sample_index": sample_index})
        verdicts = reply.get("verdicts") if isinstance(reply, dict) else None
        if not isinstance(verdicts, list) or len(verdicts) != len(completions):
            raise RecordError("response", "verdicts", f"expected a list of {len(completions)} verdicts")
        return [Verdict.from_record(v, where=f"response:verdicts[{i}]") for i, v in enumerate(verdicts)]

    def stats(self) -> dict:
        resp = self.http.get(self.url + "/stats", headers=self.headers)
        if resp.status_code != 200:
            raise ServiceError(resp.status_code, _detail(resp))
        return resp.json()


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
    except ValueError:
        return resp.text[:300]
