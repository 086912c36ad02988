"""cpp: judged by sandbox/compiled/ (transitional adapter)."""
from __future__ import annotations

from sandbox.compiled import judge as _judge
from sandbox.config import SandboxConfig
from sandbox.records import Problem, Verdict

NAME = "cpp"
RUNS_IN = "isolated"


def validate(problem: Problem) -> None:
    pass


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    return _judge.check_compiled(problem, completion, sample_index, config)
