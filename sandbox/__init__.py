"""rrtf sandbox: judges untrusted candidate programs against unit tests, in isolation.

    from sandbox import Sandbox, SandboxConfig
    with Sandbox(SandboxConfig(workers=2)) as sb:
        verdict = sb.check(problem, completion, sample_index=0)
        for verdict in sb.check_many([(problem, completion, index), ...]):  # completion order
            ...
"""
from sandbox.config import SandboxConfig
from sandbox.isolation import IsolationError
from sandbox.pool import Sandbox
from sandbox.records import IOCase, Problem, Status, TestResult, Verdict

__all__ = ["Sandbox", "SandboxConfig", "Problem", "Verdict", "Status", "TestResult", "IOCase", "IsolationError"]
