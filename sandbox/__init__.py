"""rrtf sandbox: judges untrusted candidate programs against unit tests, in isolation.

    from sandbox import Sandbox, SandboxConfig
    with Sandbox(SandboxConfig(workers=2)) as sb:
        verdict = sb.check(problem, completion, sample_index=0)
        for verdict in sb.check_many([(problem, completion, index), ...]):  # completion order
            ...

`sandbox.base` is the foundation every package uses (records, schema, store, errors); the names below
are loaded on first use (PEP 562), so importing the foundation never loads the judge.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"Sandbox": "sandbox.pool", "SandboxConfig": "sandbox.config", "IsolationError": "sandbox.isolation",
            "Problem": "sandbox.base.records", "Verdict": "sandbox.base.records", "Status": "sandbox.base.records",
            "TestResult": "sandbox.base.records", "IOCase": "sandbox.base.records"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")


__all__ = ["Sandbox", "SandboxConfig", "Problem", "Verdict", "Status", "TestResult", "IOCase", "IsolationError"]
