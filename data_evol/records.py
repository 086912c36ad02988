"""The records data_evol reads and writes, every one schema-checked when it crosses a file boundary.

`Instruction` is one task in the pool: a seed (round 0) or an evolution of a parent, with its
provenance. The final output is `sandbox.Problem` records (problems.jsonl) with an extra `evol`
object (the provenance) and `teacher_answers` (every teacher's solution, those that passed the tests
first): `Problem.from_record` keeps the answers (rrtf's `--teachers dataset:NAME`) and ignores `evol`;
`datasets.load_dataset("json", ...)` loads both as columns.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.base.schema import build


@dataclass
class Instruction:
    id: str  # stable: the seed's id for round 0, "<seed id>/r<round>" for an evolution
    seed_id: str
    instruction: str
    round: int = 0
    parent_id: str = ""
    method: str = "seed"  # "seed" or the evolution method
    model: str = ""  # the evolver (its identity), "" for a seed
    template_version: str = ""  # Templates.tag
    # A seed's own answer and tests, when it came with them (a Problem record): used as one more "teacher".
    reference_solution: str = ""
    reference_tests: list[str] = field(default_factory=list)
    entry_point: str = ""
    origin: str = ""  # where the seed came from ("file.jsonl:12", "tiny-tasks:train[3]")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> Instruction:
        return build(cls, rec, where)

    def provenance(self) -> dict[str, Any]:
        return {"id": self.id, "seed_id": self.seed_id, "parent_id": self.parent_id, "method": self.method, "round": self.round,
                "model": self.model, "template_version": self.template_version, "origin": self.origin}


@dataclass
class Answer:
    """One teacher's answer to one instruction: the solution and the tests it wrote."""

    id: str  # the instruction's id
    teacher: str
    response: str = ""
    solution: str = ""
    tests: list[str] = field(default_factory=list)
    entry_point: str = ""
    problem: str = ""  # why no usable answer: "no_code", "no_tests", "refused"; "" when usable

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> Answer:
        return build(cls, rec, where)


_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case and whitespace folded: what "exactly the same task" means."""
    return _WS.sub(" ", text).strip().lower()


def text_id(text: str, prefix: str = "s") -> str:
    return prefix + hashlib.sha256(normalize(text).encode()).hexdigest()[:12]


def instruction_key(rec: dict[str, Any]) -> str:
    return str(rec["id"])


def answer_key(rec: dict[str, Any]) -> tuple[str, str]:
    return (str(rec["id"]), str(rec["teacher"]))


__all__ = ["Answer", "Instruction", "answer_key", "instruction_key", "normalize", "text_id"]
