"""The sandbox as a reward: a reward function for TRL's `GRPOTrainer` (and any trainer that takes
`reward_funcs`), on the rollout's own spine -- a completion becomes code exactly as evaluation and RRTF's
sampler make it (`AskedProblem.completion` / `judge_input`), judged in the same pool with the same
isolation, one float per completion.

    from rrtf.rollout.reward import SandboxReward, prompt_rows
    reward = SandboxReward(ask("tiny-tasks", problems), kind="pass_fraction", log_path="verdicts.jsonl")
    trainer = GRPOTrainer(model, reward_funcs=[reward], train_dataset=Dataset.from_list(prompt_rows(asked)), ...)

The dataset's rows carry `task_id` (TRL passes every column but the prompt to the reward function), so the
reward finds the problem each completion answers. Kinds (`REWARD_KINDS`): `pass_fraction` (tests passed /
tests), `all_pass` (1 if every test passed), `rrtf` (the ranker's four levels: compile error 0, runtime error 1,
partial 2, passed 3 -- what RRTF ranks by). A completion that cannot be judged here (a missing toolchain) gets
None, which TRL turns into NaN and leaves out of that completion's reward -- never a made-up 0.

Every verdict is logged (one JSONL record per completion: call, task, status, reason, tests, reward, seconds of
the call), so a run's rewards can be audited afterwards -- for reward hacking above all: a policy that learns
to exploit its judge shows up as passes the reference path would not give.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

from rrtf.rollout.asked import AskedProblem, as_asked
from sandbox.base.records import Problem, Verdict
from sandbox.base.store import JsonlStore

REWARD_KINDS = ("pass_fraction", "all_pass", "rrtf")


def reward_of(verdict: Verdict, kind: str) -> float | None:
    if not verdict.status.judged:
        return None
    if kind == "all_pass":
        return 1.0 if verdict.passed else 0.0
    if kind == "rrtf":
        return float(int(verdict.status))
    return verdict.passed_tests / verdict.total_tests if verdict.total_tests else float(verdict.passed)


def prompt_rows(asked: Sequence[AskedProblem | Problem], template: str | None = None) -> list[dict[str, str]]:
    """Rows of a GRPO training set: the exact prompt the rollout would ask, and the task id the reward looks up."""
    return [{"prompt": a.prompt(template), "task_id": a.task_id} for a in as_asked(asked)]


def _text(completion: Any) -> str:
    """A completion as TRL passes it: text, or (conversational) a list of messages whose last is the answer."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"a completion must be text or a list of chat messages, got {type(completion).__name__}")


class SandboxReward:
    """`reward_funcs` entry: `reward(prompts=..., completions=..., task_id=[...], **columns) -> list[float | None]`."""

    def __init__(self, problems: Sequence[AskedProblem | Problem], *, kind: str = "pass_fraction", sandbox=None,
                 sandbox_config=None, log_path: str | os.PathLike | None = None):
        """sandbox: a running `sandbox.Sandbox` to share (the caller closes it); else one is started from
        `sandbox_config` (default SandboxConfig()) and closed by `close()`."""
        if kind not in REWARD_KINDS:
            raise ValueError(f"reward kind must be one of {', '.join(REWARD_KINDS)}, got {kind!r}")
        self.kind = kind
        self.__name__ = f"sandbox_{kind}"  # TRL names the reward's logged columns after the function
        self.asked = {a.task_id: a for a in as_asked(problems)}
        self._own = sandbox is None
        if sandbox is None:
            from sandbox import Sandbox, SandboxConfig

            sandbox = Sandbox(sandbox_config or SandboxConfig())
        self.sandbox = sandbox
        self.log = JsonlStore(log_path, key=lambda r: (r["call"], r["index"])) if log_path else None
        self.calls = len({r["call"] for r in self.log.records}) if self.log else 0
        self.seconds: list[float] = []  # wall time of each call (the judging cost per GRPO step)

    def __call__(self, prompts=None, completions=None, task_id=None, **columns) -> list[float | None]:
        if completions is None or task_id is None:
            raise ValueError("SandboxReward needs `completions` and a `task_id` column in the training set (see prompt_rows)")
        if len(task_id) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(task_id)} task ids")
        start = time.monotonic()
        items = []
        for i, (tid, completion) in enumerate(zip(task_id, completions)):
            asked = self.asked.get(tid)
            if asked is None:
                raise KeyError(f"task {tid!r} is not among the reward's {len(self.asked)} problems")
            problem, code = asked.judge_input(asked.completion(_text(completion)))
            items.append((problem, code, i))
        verdicts = {v.sample_index: v for v in self.sandbox.check_many(items)}
        rewards = [reward_of(verdicts[i], self.kind) for i in range(len(items))]
        seconds = time.monotonic() - start
        self.seconds.append(seconds)
        if self.log is not None:
            step = getattr(columns.get("trainer_state"), "global_step", None)
            self.log.write_many({"call": self.calls, "step": step, "index": i, "task_id": items[i][0].task_id,
                                 "code_sha": hashlib.sha256(items[i][1].encode()).hexdigest()[:16], "code": items[i][1],
                                 "status": verdicts[i].status.label, "reason": verdicts[i].reason,
                                 "passed_tests": verdicts[i].passed_tests, "total_tests": verdicts[i].total_tests,
                                 "reward": rewards[i], "call_seconds": round(seconds, 3)} for i in range(len(items)))
        self.calls += 1
        return rewards

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self._own:
            self.sandbox.close()

    def __enter__(self) -> SandboxReward:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["REWARD_KINDS", "SandboxReward", "prompt_rows", "reward_of"]
