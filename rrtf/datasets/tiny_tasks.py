"""tiny-tasks: a procedurally generated family of small function-writing problems with unit tests.

The embedded default of `python -m rrtf.train` needs problems a tiny model can learn in minutes on a
CPU, yet with held-out problems that test generalisation. Each problem is one *operation* (add a
constant, reverse a list, upper-case a string, ...) described by one of several *wordings* inside
one of several *frames* (the sentence around the wording), with a fresh function name and constants.

Splits are by template: every operation is held out in exactly one frame (a Latin square over
operations x frames), so a held-out problem is an (operation, frame) combination never seen in
training although each operation and each frame is. "warmup" (used to pre-train the base model) and
"train" (RRTF's prompts) share the training templates but not their instances.

Expected outputs are computed by running the reference function in-process: it is our own code.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from rrtf.datasets import DatasetSpec, register
from sandbox.base.records import Problem

SPLITS = ("warmup", "train", "heldout")
SOURCE = "tiny-tasks"
# Single-token names in the StarCoder tokenizer (with the leading space they get after "def" and in
# prose), so the model names its function by copying one token from the instruction.
FUNCTION_NAMES = (
    "solve", "compute", "transform", "process", "calc", "convert", "apply", "handle", "answer",
    "check", "change", "update", "make", "build", "get", "run", "work", "do", "go", "fix",
)
# The sentence around an operation's wording. {desc} is a verb phrase in the third person.
FRAMES = (
    "Write a function {name} that {desc}.",
    "Create a Python function called {name} which {desc}.",
    "Implement {name}({arg}): it {desc}.",
    "Define a function named {name} that {desc}.",
)
ARG_NAMES = {"int": "x", "list": "xs", "str": "s"}


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # "int", "list" or "str": the type of the single argument
    body: str  # the return expression; may use {c}, {d}, {ch}, {ch2} (filled from `consts`)
    wordings: tuple[str, ...]  # verb phrases; same placeholders
    consts: Callable[[random.Random], dict] = lambda rng: {}


def _c(lo: int, hi: int) -> Callable[[random.Random], dict]:
    return lambda rng: {"c": rng.randint(lo, hi)}


def _chars(rng: random.Random) -> dict:
    ch, ch2 = rng.sample("abcdeilnorst", 2)
    return {"ch": ch, "ch2": ch2}


OPERATIONS: tuple[Operation, ...] = (
    # --- integers -------------------------------------------------------------------------------
    Operation("add", "int", "x + {c}", ("returns x plus {c}", "adds {c} to x", "returns the sum of x and {c}"), _c(2, 9)),
    Operation("sub", "int", "x - {c}", ("returns x minus {c}", "subtracts {c} from x", "returns x decreased by {c}"), _c(2, 9)),
    Operation("mul", "int", "x * {c}", ("returns x times {c}", "multiplies x by {c}", "returns the product of x and {c}"), _c(2, 9)),
    Operation("muladd", "int", "x * {c} + {d}", ("multiplies x by {c} and then adds {d}", "returns x times {c} plus {d}"),
              lambda rng: {"c": rng.randint(2, 9), "d": rng.randint(1, 9)}),
    Operation("square", "int", "x * x", ("returns the square of x", "returns x squared", "multiplies x by itself")),
    Operation("mod", "int", "x % {c}", ("returns the remainder of x divided by {c}", "returns x modulo {c}"), _c(2, 9)),
    Operation("is_even", "int", "x % 2 == 0", ("returns True if x is even and False otherwise", "checks whether x is even")),
    Operation("abs", "int", "abs(x)", ("returns the absolute value of x", "returns x without its sign")),
    # --- lists of integers ------------------------------------------------------------------
    Operation("reverse_list", "list", "xs[::-1]", ("returns the list xs reversed", "reverses the list xs",
                                                     "returns the elements of the list xs in reverse order")),
    Operation("sum", "list", "sum(xs)", ("returns the sum of the list xs", "adds up all numbers in the list xs")),
    Operation("max", "list", "max(xs)", ("returns the largest number in the list xs", "finds the maximum of the list xs")),
    Operation("min", "list", "min(xs)", ("returns the smallest number in the list xs", "finds the minimum of the list xs")),
    Operation("evens", "list", "[x for x in xs if x % 2 == 0]",
              ("keeps only the even numbers of the list xs", "returns the even numbers in the list xs")),
    Operation("odds", "list", "[x for x in xs if x % 2 == 1]",
              ("keeps only the odd numbers of the list xs", "returns the odd numbers in the list xs")),
    Operation("map_add", "list", "[x + {c} for x in xs]",
              ("adds {c} to every number in the list xs", "returns the list xs with {c} added to each element"), _c(2, 9)),
    Operation("map_mul", "list", "[x * {c} for x in xs]",
              ("multiplies every number in the list xs by {c}", "returns the list xs with each element times {c}"), _c(2, 9)),
    Operation("sort", "list", "sorted(xs)", ("returns the list xs sorted in ascending order", "sorts the list xs from smallest to largest")),
    Operation("greater", "list", "[x for x in xs if x > {c}]",
              ("keeps the numbers in the list xs that are greater than {c}", "returns the elements of the list xs above {c}"), _c(2, 9)),
    Operation("len_list", "list", "len(xs)", ("returns the number of elements in the list xs", "returns the length of the list xs")),
    # --- strings ------------------------------------------------------------------------------
    Operation("upper", "str", "s.upper()", ("returns the string s in upper case", "converts the string s to uppercase")),
    Operation("lower", "str", "s.lower()", ("returns the string s in lower case", "converts the string s to lowercase")),
    Operation("reverse_str", "str", "s[::-1]", ("returns the string s reversed", "reverses the string s")),
    Operation("repeat", "str", "s * {c}", ("returns the string s repeated {c} times", "repeats the string s {c} times"), _c(2, 9)),
    Operation("count_char", "str", "s.count('{ch}')",
              ("counts how many times the letter '{ch}' appears in the string s", "returns the number of '{ch}' characters in the string s"),
              _chars),
    Operation("replace", "str", "s.replace('{ch}', '{ch2}')",
              ("replaces every '{ch}' in the string s with '{ch2}'", "returns the string s with each '{ch}' changed to '{ch2}'"), _chars),
    Operation("len_str", "str", "len(s)", ("returns the length of the string s", "returns the number of characters in the string s")),
)
OPERATIONS_BY_NAME = {op.name: op for op in OPERATIONS}


def heldout_frame(op_index: int) -> int:
    """The one frame each operation is never trained with (a Latin square: every frame is held out too)."""
    return op_index % len(FRAMES)


def templates(split: str) -> list[tuple[int, int, int]]:
    """(operation index, wording index, frame index) triples a split draws from."""
    if split not in SPLITS:
        raise ValueError(f"unknown tiny-tasks split {split!r}; known: {', '.join(SPLITS)}")
    out = []
    for o, op in enumerate(OPERATIONS):
        for w in range(len(op.wordings)):
            for f in range(len(FRAMES)):
                if (f == heldout_frame(o)) == (split == "heldout"):
                    out.append((o, w, f))
    return out


def _inputs(kind: str, rng: random.Random, n: int) -> list:
    """n distinct test inputs for an argument of this kind."""
    if kind == "int":
        values = {0, 1} | {rng.randint(-20, 30) for _ in range(2 * n)}
        return rng.sample(sorted(values), n)  # small edge values sometimes
    out: list = []
    while len(out) < n:
        if kind == "list":
            value = [rng.randint(-9, 20) for _ in range(rng.randint(2, 6))]
        else:
            letters = "abcdeilnorst"  # shares letters with count_char / replace constants so tests bite
            value = "".join(rng.choice(letters.upper() if rng.random() < 0.3 else letters) for _ in range(rng.randint(3, 8)))
        if value not in out:
            out.append(value)
    return out


def _make_problem(split: str, index: int, template: tuple[int, int, int], rng: random.Random) -> Problem:
    o, w, f = template
    op = OPERATIONS[o]
    consts = op.consts(rng)
    name = rng.choice(FUNCTION_NAMES)
    arg = ARG_NAMES[op.kind]
    desc = op.wordings[w].format(**consts)
    instruction = FRAMES[f].format(name=name, arg=arg, desc=desc)
    solution = f"def {name}({arg}):\n    return {op.body.format(**consts)}\n"
    namespace: dict = {}
    exec(solution, namespace)  # noqa: S102 - our own reference code, to compute expected outputs
    fn = namespace[name]
    tests = []
    for value in _inputs(op.kind, rng, rng.randint(4, 6)):
        tests.append(f"assert {name}({value!r}) == {fn(value)!r}")
    return Problem(
        task_id=f"tiny/{split}/{index:05d}/{op.name}/w{w}f{f}",
        prompt=instruction,
        entry_point=name,
        language="python",
        code_prefix="",
        test_list=tests,
        canonical_solution=solution,
        source=SOURCE,
        split=split,
    )


def make_tiny_tasks(seed: int = 0, *, n_warmup: int = 3000, n_train: int = 256, n_heldout: int = 128) -> dict[str, list[Problem]]:
    """Generate the three splits. Deterministic in (seed, sizes).

    Operations are visited round-robin in a seeded order, so every operation is equally frequent
    whatever its number of wordings; the wording and frame are drawn among the templates the split
    allows for that operation. "train" and "heldout" never repeat a prompt, and "train" never repeats
    a "warmup" prompt: RRTF must train on prompts the base model was not warmed up on. ("warmup" may
    repeat itself: it is pre-training data, and leaving it alone keeps it independent of the sizes of
    the other splits.)
    """
    sizes = {"warmup": n_warmup, "train": n_train, "heldout": n_heldout}
    out: dict[str, list[Problem]] = {}
    used: set[str] = set()  # prompts train / heldout must not repeat
    for split in SPLITS:
        rng = random.Random(f"{seed}/{split}")  # per-split streams
        by_op: dict[int, list[tuple[int, int, int]]] = {}
        for template in templates(split):
            by_op.setdefault(template[0], []).append(template)
        problems: list[Problem] = []
        while len(problems) < sizes[split]:
            ops = sorted(by_op)
            rng.shuffle(ops)
            for o in ops[: sizes[split] - len(problems)]:
                for _attempt in range(1000):
                    problem = _make_problem(split, len(problems), rng.choice(by_op[o]), rng)
                    if split == "warmup" or problem.prompt not in used:
                        break
                else:
                    raise ValueError(f"tiny-tasks: cannot make {sizes[split]} distinct {split} problems; ask for fewer")
                problems.append(problem)
                used.add(problem.prompt)
        out[split] = problems
    return out


@functools.lru_cache(maxsize=4)
def _default_tasks(seed: int) -> dict[str, list[Problem]]:
    return make_tiny_tasks(seed)


def load_tiny_tasks(split: str = "train", *, seed: int = 0) -> list[Problem]:
    """One split of the default-sized family (what `--dataset tiny-tasks` means)."""
    if split not in SPLITS:
        raise ValueError(f"unknown tiny-tasks split {split!r}; known: {', '.join(SPLITS)}")
    return list(_default_tasks(seed)[split])


def operation_of(problem: Problem) -> str:
    """The operation name a tiny-tasks problem was generated from (named in its task id)."""
    return problem.task_id.split("/")[3]


__all__ = [
    "FRAMES", "FUNCTION_NAMES", "OPERATIONS", "SPLITS", "heldout_frame", "load_tiny_tasks", "make_tiny_tasks",
    "operation_of", "templates",
]


register(DatasetSpec(
    SOURCE, lambda split: load_tiny_tasks(split), SPLITS, "heldout", {"synthesize": "instruct"}, benchmark=False,
    train_split="train", eval_split="heldout",
    description="tiny-tasks: procedural one-line functions (embedded default; held-out = unseen phrasings)",
))
