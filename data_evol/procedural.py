"""The procedural task family the embedded default teacher is trained on.

No pretrained model exists on this machine, so the default job cannot ask a real LLM to evolve or
answer tasks. Instead a tiny model is trained (data_evol/tiny_teacher.py) on pairs generated here:

- evolve pairs: (method template + parent task) -> evolved task, for each of the six methods;
- answer pairs: (answer template + task) -> a ```python solution block, then a block of asserts.

A task is a pipeline of 1-3 operations of rrtf's tiny-tasks family (add a constant, reverse a
list, count a letter, ...) applied one after the other to the argument, optionally with a
complexity note or a piece of erroneous code appended. The methods change a parent the way the
templates ask: `constraints` appends a step ("After that, it ..."), `reasoning` prepends one and
spells out the steps, `specific` swaps the last step for another operation on the same type,
`misdirection` appends wrong code (same task), `complexity` appends a bound (same task), `contest`
restates the task in a contest designer's words. Expected test outputs come from running the
reference code in-process: it is our own code, never model output.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

from rrtf.datasets.tiny_tasks import ARG_NAMES, FRAMES, FUNCTION_NAMES, OPERATIONS, Operation

CONTEST_FRAME = "You are given {argdesc}. Write a function {name}({arg}) that {desc}."
ARG_DESC = {"int": "an integer x", "list": "a list of integers xs", "str": "a string s"}
COMPLEXITY_NOTE = {"int": "It must run in constant time.", "list": "It must run in O(n log n) time or better.",
                   "str": "It must run in linear time in the length of s."}
MAX_TEST_CHARS = 100  # a test line longer than this ("abc" * 36) teaches a tiny model little
_SUBJECT = re.compile(r"\bthe list xs\b|\bthe string s\b|\bxs\b|\bx\b|\bs\b")


def _result_kind(op: Operation) -> str:
    sample = {"int": 3, "list": [3, 1, 2], "str": "abc"}[op.kind]
    consts = op.consts(random.Random(0))
    value = eval(op.body.format(**consts), {}, {ARG_NAMES[op.kind]: sample})  # noqa: S307 - our own expression
    return {bool: "bool", int: "int", list: "list", str: "str"}[type(value)]


RESULT_KIND = {op.name: _result_kind(op) for op in OPERATIONS}


@dataclass(frozen=True)
class Step:
    op: str  # operation name in tiny-tasks
    consts: tuple[tuple[str, object], ...]
    wording: int

    @property
    def operation(self) -> Operation:
        return _OPS[self.op]

    def desc(self, first: bool) -> str:
        text = self.operation.wordings[self.wording].format(**dict(self.consts))
        return text if first else _SUBJECT.sub("the result", text)


_OPS = {op.name: op for op in OPERATIONS}


@dataclass(frozen=True)
class Task:
    name: str
    steps: tuple[Step, ...]
    frame: int = 0  # index in FRAMES, or -1 for the contest frame
    explicit_steps: bool = False  # "works in N steps: first ..., then ..."
    complexity: bool = False
    wrong_body: str = ""  # erroneous code shown as misdirection
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> str:
        return self.steps[0].operation.kind

    @property
    def arg(self) -> str:
        return ARG_NAMES[self.kind]

    def text(self) -> str:
        first, rest = self.steps[0], self.steps[1:]
        if self.explicit_steps and rest:
            words = ["second", "third"]
            desc = f"works in {len(self.steps)} steps: first it {first.desc(True)}" + "".join(
                f", {words[i]} it {s.desc(False)}" for i, s in enumerate(rest))
            more = ""
        else:
            desc = first.desc(True)
            more = "".join(f" After that, it {s.desc(False)}." for s in rest)
        frame = CONTEST_FRAME if self.frame < 0 else FRAMES[self.frame]
        out = frame.format(name=self.name, arg=self.arg, desc=desc, argdesc=ARG_DESC[self.kind]) + more
        if self.complexity:
            out += " " + COMPLEXITY_NOTE[self.kind]
        if self.wrong_body:
            out += f"\nHere is a piece of erroneous code for reference:\n```python\ndef {self.name}({self.arg}):\n    return {self.wrong_body}\n```"
        return out

    def solution(self) -> str:
        lines = [f"def {self.name}({self.arg}):"]
        for i, step in enumerate(self.steps):
            body = step.operation.body.format(**dict(step.consts))
            if i == len(self.steps) - 1:
                lines.append(f"    return {body}")
            else:
                lines.append(f"    {ARG_NAMES[self.steps[i + 1].operation.kind]} = {body}")
        return "\n".join(lines) + "\n"

    def tests(self, rng: random.Random, n: int) -> list[str]:
        """Asserts with expected values computed by the reference; edge inputs first (they are the
        ones a small model gets right most often), inputs that make the reference raise skipped."""
        namespace: dict = {}
        exec(self.solution(), namespace)  # noqa: S102 - our own reference code
        fn = namespace[self.name]
        out: list[str] = []
        for value in _inputs(self.kind, rng, 3 * n):
            try:
                expected = fn(value)
            except Exception:  # noqa: BLE001 - e.g. max([]): not a valid test input for this task
                continue
            line = f"assert {self.name}({value!r}) == {expected!r}"
            if len(line) <= MAX_TEST_CHARS and line not in out:
                out.append(line)
            if len(out) == n:
                break
        return out

    def answer(self, rng: random.Random, n_tests: int) -> str:
        tests = "\n".join(self.tests(rng, n_tests))
        return f"```python\n{self.solution()}```\nTests:\n```python\n{tests}\n```"


def _inputs(kind: str, rng: random.Random, n: int) -> list:
    edges = {"int": [0, 1, 2, -1], "list": [[], [1], [2, 1], [0, 3, 0]], "str": ["", "a", "ab", "Abc"]}[kind]
    out = list(edges[: rng.randint(2, 4)])  # edge cases first: the tests a small model (and a real one) gets right most
    while len(out) < n:
        if kind == "int":
            out.append(rng.randint(-20, 30))
        elif kind == "list":
            out.append([rng.randint(-9, 20) for _ in range(rng.randint(2, 5))])
        else:
            out.append("".join(rng.choice("abcdeilnorstAE") for _ in range(rng.randint(2, 6))))
    return out


def _step(rng: random.Random, kind: str, exclude: str = "") -> Step:
    ops = [op for op in OPERATIONS if op.kind == kind and op.name != exclude]
    op = rng.choice(ops)
    return Step(op.name, tuple(sorted(op.consts(rng).items())), rng.randrange(len(op.wordings)))


def _chainable(kind: str) -> bool:
    return kind in ARG_NAMES  # a bool result ends a pipeline


def random_task(rng: random.Random, max_steps: int = 2) -> Task:
    steps = [_step(rng, rng.choice(list(ARG_NAMES)))]
    while len(steps) < max_steps and rng.random() < 0.4 and _chainable(RESULT_KIND[steps[-1].op]):
        steps.append(_step(rng, RESULT_KIND[steps[-1].op]))
    return Task(rng.choice(FUNCTION_NAMES), tuple(steps), frame=rng.randrange(len(FRAMES)),
                complexity=rng.random() < 0.1, wrong_body=_wrong_body(rng, steps[0].operation.kind) if rng.random() < 0.1 else "")


def _wrong_body(rng: random.Random, kind: str) -> str:
    step = _step(rng, kind)
    return step.operation.body.format(**dict(step.consts))


def evolve(task: Task, method: str, rng: random.Random, max_steps: int = 3) -> Task | None:
    """The task evolved by `method`, or None when the method cannot apply (too many steps already)."""
    last_kind = RESULT_KIND[task.steps[-1].op]
    if method == "constraints":
        if len(task.steps) >= max_steps or not _chainable(last_kind):
            return None
        return replace(task, steps=task.steps + (_step(rng, last_kind),))
    if method == "reasoning":
        if len(task.steps) >= max_steps:
            return None
        first = _step(rng, task.kind)
        if RESULT_KIND[first.op] != task.kind:
            first = Step("sort", (), 0) if task.kind == "list" else Step("lower", (), 0) if task.kind == "str" else Step("abs", (), 0)
        return replace(task, steps=(first,) + task.steps, explicit_steps=True)
    if method == "specific":
        kind = task.steps[-1].operation.kind
        return replace(task, steps=task.steps[:-1] + (_step(rng, kind, exclude=task.steps[-1].op),))
    if method == "misdirection":
        return replace(task, wrong_body=_wrong_body(rng, task.kind))
    if method == "complexity":
        return None if task.complexity else replace(task, complexity=True)
    if method == "contest":
        return replace(task, frame=-1, steps=tuple(replace(s, wording=rng.randrange(len(s.operation.wordings))) for s in task.steps))
    raise ValueError(f"unknown evolution method {method!r}")


def training_pairs(templates, n_evolve: int, n_answer: int, seed: int = 0) -> list[tuple[list[dict], str]]:
    """(chat messages, response) pairs for the default teacher, in a seeded order."""
    rng = random.Random(f"data-evol-teacher/{seed}")
    methods = [m for m in templates.methods if m in ("constraints", "specific", "reasoning", "misdirection", "complexity", "contest")]
    pairs: list[tuple[list[dict], str]] = []
    while len(pairs) < n_evolve:
        parent = random_task(rng)
        method = rng.choice(methods)
        child = evolve(parent, method, rng)
        if child is not None:
            pairs.append((templates.evolve_messages(method, parent.text()), child.text()))
    for _ in range(n_answer):
        task = random_task(rng, max_steps=3)
        if rng.random() < 0.5:  # answers to evolved tasks too: the teacher answers what it evolved
            task = evolve(task, rng.choice(methods), rng) or task
        pairs.append((templates.answer_messages(task.text()), task.answer(rng, rng.randint(5, 6))))
    rng.shuffle(pairs)
    return pairs


__all__ = ["RESULT_KIND", "Step", "Task", "evolve", "random_task", "training_pairs"]
