"""Typed records the sandbox reads (Problem) and writes (Verdict).

Every stage of the system exchanges these as JSONL lines (`to_record` / `from_record`), so a stage
can be run, inspected and resumed on its own. `Problem.from_record` accepts the public formats
(HumanEval, HumanEvalPack, MBPP) as well as our own. It knows no language: which languages exist, and
which HumanEvalPack task-id prefix means which, is the judge's (`sandbox.registry.problem_from_record`
infers and checks it where problems are read).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from sandbox.base.errors import RecordError
from sandbox.base.schema import build


class Status(IntEnum):
    """Ordered outcome of a candidate: the order from COMPILE_ERROR up is what RRTF ranks by. The two
    negative outcomes say nothing of the candidate's code: ranking drops them, evaluation reports them."""

    NOT_JUDGED = -2  # cannot be judged here: a toolchain is missing, or the judge does not support the problem
    NOT_RUN = -1  # nothing was generated to run (e.g. the prompt did not fit the model's context)
    COMPILE_ERROR = 0
    RUNTIME_ERROR = 1  # includes timeouts and memory limits (see Verdict.reason)
    PARTIAL = 2  # ran, k of n tests passed (k may be 0: wrong answers, no crash)
    PASSED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def judged(self) -> bool:
        """Whether the candidate's code was judged (False: the outcome says nothing of the code)."""
        return self >= Status.COMPILE_ERROR

    @classmethod
    def ranked(cls) -> list[Status]:
        """The outcomes of judged code, best first (what tables count and RRTF ranks)."""
        return sorted((s for s in cls if s.judged), reverse=True)

    @classmethod
    def parse(cls, value: str | int) -> Status:
        if isinstance(value, int):
            return cls(value)
        return cls[value.upper()]


@dataclass
class IOCase:
    """One stdin/stdout test case (competitive-programming style)."""

    input: str
    output: str


@dataclass
class TeacherAnswer:
    """A solution from a named teacher, kept with the problem (data_evol writes them) so that a run
    can rank teachers of different quality (`--teachers dataset:NAME`)."""

    teacher: str
    solution: str


@dataclass
class Problem:
    """A programming problem with its tests.

    The program that runs is `code_prefix + completion` followed by the tests: HumanEval-style
    records continue the prompt (code_prefix = prompt); MBPP and instruction-style problems expect a
    whole program (code_prefix = "").
    """

    task_id: str
    prompt: str  # what the model is shown (code or an English instruction)
    entry_point: str = ""
    language: str = "python"
    code_prefix: str = ""
    test: str = ""  # HumanEval `check(candidate)` code, or a Java/C++ test main
    test_list: list[str] = field(default_factory=list)  # MBPP assert strings
    test_setup_code: str = ""
    io_cases: list[IOCase] = field(default_factory=list)
    canonical_solution: str = ""  # a completion that passes (relative to code_prefix)
    buggy_solution: str = ""
    source: str = ""  # dataset name, e.g. "humaneval", "mbpp", "tiny-tasks"
    split: str = ""  # e.g. "train", "heldout", "test"
    teacher_answers: list[TeacherAnswer] = field(default_factory=list)  # other teachers' solutions
    # evalplus (HumanEval+ / MBPP+): inputs whose expected outputs come from the canonical solution
    # (run in the sandbox, cached: sandbox/evalplus.py); `atol` for floats; `contract` documents them.
    base_input: list[Any] = field(default_factory=list)
    plus_input: list[Any] = field(default_factory=list)
    atol: float = 0.0
    contract: str = ""

    def program(self, completion: str) -> str:
        return self.code_prefix + completion

    @property
    def test_format(self) -> str:
        if self.base_input or self.plus_input:
            return "evalplus"
        if self.io_cases:
            return "stdio"
        if self.test_list:
            return "mbpp"
        if self.test:
            return "humaneval"
        return "none"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> Problem:
        """Build from our own format or HumanEval / HumanEvalPack / MBPP records, every field
        type-checked (sandbox.base.schema): a bad record is an error naming file:line and field."""
        if not isinstance(rec, dict):
            raise RecordError(where, "", f"expected a JSON object, got {type(rec).__name__}")
        if "task_id" not in rec:
            raise RecordError(where, "task_id", "missing field")
        rec = dict(rec)
        task_id = rec["task_id"]
        if isinstance(task_id, bool) or not isinstance(task_id, (str, int)):
            raise RecordError(where, "task_id", f"expected a string, got {type(task_id).__name__}")
        if "text" in rec and "code" in rec and "test_list" in rec:  # MBPP
            rec = {
                "task_id": f"MBPP/{task_id}" if isinstance(task_id, int) else task_id,
                "prompt": rec["text"],
                "canonical_solution": rec["code"],
                "test_list": rec["test_list"],
                "test_setup_code": rec.get("test_setup_code") or "",
                "source": "mbpp",
            }
            rec["entry_point"] = _mbpp_entry_point(rec["test_list"]) if isinstance(rec["test_list"], list) else ""
        rec["task_id"] = str(rec["task_id"])
        if isinstance(rec.get("test_setup"), str) and "test_setup_code" not in rec:  # HumanEvalPack Go: package and imports
            rec["test_setup_code"] = rec["test_setup"] + "\n" + (rec.get("import") or "")  # Go's `import`: packages the solution uses
        if rec.get("plus_input") == {}:  # MBPP+ v0.2.0 writes Mbpp/793's empty plus inputs as {}
            rec["plus_input"] = []
        if "code_prefix" not in rec and "prompt" in rec and (rec.get("test") or rec.get("base_input")) and not rec.get("io_cases"):
            rec["code_prefix"] = rec["prompt"]  # HumanEval style: the completion continues the prompt
        problem = build(cls, rec, where)
        if not problem.language.isidentifier():
            raise RecordError(where, "language", f"expected a language name, got {problem.language!r}")
        if problem.test_format == "none":
            raise RecordError(where, "test", "no tests: need one of 'test', 'test_list', 'io_cases' or 'base_input'")
        return problem


def _mbpp_entry_point(test_list: list[str]) -> str:
    # MBPP names its function only in the asserts: "assert min_cost(...) == 8".
    import re

    for test in test_list:
        m = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:math\.isclose\(|set\()?\s*([A-Za-z_]\w*)\s*\(", test)
        if m:
            return m.group(1)
    return ""


@dataclass
class TestResult:
    name: str
    passed: bool
    error: str = ""  # e.g. "AssertionError", "timeout", "ValueError: bad input"


@dataclass
class Verdict:
    task_id: str
    sample_index: int
    status: Status
    passed_tests: int
    total_tests: int
    tests: list[TestResult] = field(default_factory=list)
    duration_s: float = 0.0
    stdout: str = ""  # truncated
    stderr: str = ""  # truncated
    reason: str = ""  # why not passed: "timeout", "memory_limit", "SyntaxError: ...", ...
    isolation: str = ""  # isolation level in force when judged

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    @property
    def score(self) -> tuple[int, float]:
        """Comparable: status first, then the fraction of tests passed."""
        frac = self.passed_tests / self.total_tests if self.total_tests else 0.0
        return (int(self.status), frac)

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["status"] = self.status.label
        rec["passed"] = self.passed
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, where: str = "") -> Verdict:
        return build(cls, rec, where)
