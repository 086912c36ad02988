"""Typed records of the RRTF loop: Candidate (sampler -> judge and ranker) and RankedGroup (ranker ->
trainer). Problems and Verdicts are the sandbox's records (`sandbox.base.records`).

Each is one JSONL line (sandbox.base.store), validated field by field when read back (sandbox.base.schema),
so sampling, judging and ranking can be run, inspected and resumed one at a time. A record carries
what the next stage needs: a Candidate its prompt, so ranking never rebuilds it.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.base.errors import RecordError
from sandbox.base.schema import build


@dataclass
class Candidate:
    """One response to a prompt, from the student or a teacher."""

    task_id: str
    index: int  # position within the prompt's group (also the sandbox sample index)
    source: str  # "student", or the teacher's name ("reference", "openai-chat:gpt-x", ...)
    prompt: str  # the exact text the model was conditioned on
    response: str  # the raw text generated after the prompt
    code: str  # code extracted from the response: the completion the sandbox runs
    teacher_priority: int = 0  # 0 for the student; teachers > 0, higher ranks higher within a status
    temperature: float = 0.0
    round: int = 0
    dataset: str = ""  # the dataset it was asked from (rrtf.rollout.AskedProblem): judged as that dataset asks
    stage: str = ""  # the rollout stage that generated it ("student@1", a teacher's name, "greedy", "sampled")
    first_response: str = ""  # two-step strategies (explain): the first answer (the description)
    error: str = ""  # why nothing was generated (e.g. the prompt does not fit the model): not judged, not run

    @property
    def is_teacher(self) -> bool:
        return self.teacher_priority > 0

    @property
    def code_hash(self) -> str:
        """Identity of what the sandbox judges: a stored verdict is reused only for the same code."""
        return code_hash(self.task_id, self.code)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> Candidate:
        return build(cls, rec, where)


def check_verdict_files(paths: Any) -> None:
    """Schema-check stored Verdict records (one file or several) before a job reuses them: a made-up
    status or an integer task id is a RecordError naming FILE:LINE and the field, never accepted."""
    from sandbox.base.records import Verdict
    from sandbox.base.store import read_store

    read_store(paths, key=lambda rec: id(rec), parse=Verdict.from_record)


def code_hash(task_id: str, code: str) -> str:
    return hashlib.sha256(f"{task_id}\0{code}".encode("utf-8", "replace")).hexdigest()[:24]


@dataclass
class RankedGroup:
    """All judged responses to one prompt, with their rewards: one training example for RRTF."""

    task_id: str
    prompt: str  # the exact text the model was conditioned on
    responses: list[str]  # training targets, each continuing `prompt`
    rewards: list[float]  # r_i: higher is better; equal rewards are ties (zero weight in the loss)
    sources: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    best_teacher: int = -1  # index of the teacher response used for the SFT term, -1 if none
    round: int = 0

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> RankedGroup:
        group = build(cls, rec, where)
        if len(group.responses) != len(group.rewards):
            raise RecordError(where, "rewards", f"{len(group.rewards)} rewards for {len(group.responses)} responses")
        if not -1 <= group.best_teacher < len(group.responses):
            raise RecordError(where, "best_teacher", f"{group.best_teacher} is not an index of the {len(group.responses)} responses")
        return group
