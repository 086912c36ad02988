"""`python -m sandbox serve`: the judging pool as an HTTP service for trainers outside this project.

    python -m sandbox serve --host 127.0.0.1 --port 8080 [--token T] [--workers 4 ...]

Two APIs over the same pool (`sandbox.Sandbox`): SandboxFusion's `POST /run_code` (runcode.py), so
reward managers written for SandboxFusion (verl's) point here unchanged, and `POST /judge` (a `Problem`
and completions in, `Verdict` records out: the tests are the server's, the verdict cannot be forged by
the program). Limits and their HTTP answers: config.py and server.py; the Python client: sandbox.client.
Standard library only (http.server), like the rest of the sandbox package.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import fields

from sandbox.config import SandboxConfig
from sandbox.serve.config import ServeConfig


def build_parser() -> argparse.ArgumentParser:
    from sandbox.cli import _add_config_args

    parser = argparse.ArgumentParser(prog="python -m sandbox serve", description=__doc__.split("\n\n")[0])
    defaults = ServeConfig()
    for f in fields(ServeConfig):
        if f.name == "sandbox":
            continue
        value = getattr(defaults, f.name)
        kind = str if f.name in ("host", "token") else type(value)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=value,
                            help=f"{f.metadata.get('help', '')} (default: {value})")
    _add_config_args(parser)  # the pool's own knobs, as `python -m sandbox check` takes them
    return parser


def config_from_args(argv: list[str] | None) -> ServeConfig:
    args = build_parser().parse_args(argv)
    sandbox = SandboxConfig(**{f.name: getattr(args, f.name) for f in fields(SandboxConfig)})
    return ServeConfig(**{f.name: getattr(args, f.name) for f in fields(ServeConfig) if f.name != "sandbox"},
                       sandbox=sandbox)


def main(argv: list[str] | None = None) -> int:
    from sandbox.isolation import IsolationError
    from sandbox.serve.server import SandboxServer

    config = config_from_args(argv)
    try:
        server = SandboxServer(config).start()
    except (ValueError, IsolationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving on {server.url} ({config.slots} jobs at once, queue {config.queue_limit}, "
          f"{config.sandbox.workers} workers, isolation {server.sandbox.isolation})", flush=True)
    stop.wait()
    server.close()
    return 0


__all__ = ["ServeConfig", "main"]
