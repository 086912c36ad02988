"""Helpers the tests share (importable as `testkit`: pytest puts tests/ on the path): running the
project's entry points as a user does, free ports, a real `transformers serve` process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Two cores are shared by everything a test starts: one thread per torch process keeps them usable.
QUIET_ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_module(module: str, *args: str, timeout: int = 600, env: dict | None = None, launcher: list[str] | None = None,
               cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS...` in a real process, from the repository root, output captured."""
    cmd = [*(launcher or [sys.executable]), "-m", module, *args]
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **QUIET_ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)


CHAT_TEMPLATE = (
    "{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant:\n{% endif %}"
)


def start_transformers_serve(model_dir: Path | None, log_path: Path) -> tuple[subprocess.Popen, str]:
    """A real `transformers serve` on a loopback port; returns (process, base URL ending in /v1).
    With `model_dir` the server is pinned to it; without, it loads whatever path a request names."""
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    log = log_path.open("w")
    pinned = [str(model_dir)] if model_dir else []
    proc = subprocess.Popen([str(cli), "serve", *pinned, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if json.load(r).get("status") == "ok":
                    return proc, f"{base}/v1"
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("transformers serve did not become ready within 120 s")
        time.sleep(0.5)


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_when(cmd: list[str], marker: Path, *, env: dict | None = None, timeout: float = 300) -> None:
    """Run `cmd` from the repository root in its own session and SIGKILL the whole group as soon as
    `marker` exists (or it exits, or `timeout` passes): a real process killed mid-work."""
    import signal

    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **QUIET_ENV, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
