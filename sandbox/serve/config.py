"""ServeConfig: every knob of `python -m sandbox serve`, usable from Python and from the CLI.

The limits are what keep one HTTP client from taking the judge (docs/distributed.md, "sandbox as a
service"): jobs judged at once, jobs waiting, bytes per request, completions per request, seconds per
request, open connections. A client's own time and memory limits (SandboxFusion's `run_timeout`,
`compile_timeout`, `memory_limit_MB`) are honoured up to the `max_*` here.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from sandbox.config import SandboxConfig


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class ServeConfig:
    host: str = _opt("127.0.0.1", "address to bind; anything but loopback needs --token")
    port: int = _opt(8080, "port to bind (0: any free port, printed on start)")
    token: str | None = _opt(None, "clients must send `Authorization: Bearer TOKEN` (or ?token=TOKEN in the URL, for "
                                    "clients such as verl that cannot set headers); required off loopback")
    concurrency: int = _opt(0, "jobs judged at once (0: 2 per sandbox worker, what keeps the pool's pipeline full)")
    queue_limit: int = _opt(1024, "jobs admitted but not yet judging; past it a request gets 429 with Retry-After")
    max_request_bytes: int = _opt(4 << 20, "largest request body (413 past it)")
    max_completions: int = _opt(256, "completions in one /judge request (413 past it)")
    request_timeout_s: float = _opt(600.0, "a request not answered by then is 504 and its queued jobs are dropped")
    max_connections: int = _opt(1024, "open connections at once (past it: 503 with Retry-After, connection closed)")
    idle_timeout_s: float = _opt(30.0, "a connection silent this long while the server reads a request is closed")
    max_run_timeout_s: float = _opt(30.0, "/run_code: the most a request's run_timeout may ask")
    max_compile_timeout_s: float = _opt(60.0, "/run_code: the most a request's compile_timeout may ask")
    max_memory_mb: int = _opt(2048, "/run_code: the most a request's memory_limit_MB may ask (also what -1 means)")
    run_code_output_bytes: int = _opt(64 << 10, "/run_code: stdout/stderr returned per run (the rest is dropped)")
    sandbox: SandboxConfig = field(default_factory=SandboxConfig,
                                   metadata={"help": "the judging pool; /judge uses its limits as they are"})

    @property
    def slots(self) -> int:
        return self.concurrency or 2 * max(1, self.sandbox.workers)

    def check(self) -> None:
        """Refuse a configuration that would expose the judge: off loopback without a token, or no limits."""
        if not is_loopback(self.host) and not self.token:
            raise ValueError(f"refusing to serve on {self.host!r} without --token: only a loopback address may be "
                             "served without authentication")
        for name in ("queue_limit", "max_request_bytes", "max_completions", "max_connections", "max_memory_mb",
                     "run_code_output_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("request_timeout_s", "idle_timeout_s", "max_run_timeout_s", "max_compile_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.concurrency < 0:
            raise ValueError("concurrency must be 0 (automatic) or more")


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback one (a name that resolves elsewhere is not)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
