"""rrtf.datasets.tiny_tasks: every generated problem is solvable and its tests bite (judged by the real sandbox);
splits are disjoint by template; generation is deterministic."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from rrtf.datasets.tiny_tasks import FRAMES, OPERATIONS, SPLITS, load_tiny_tasks, make_tiny_tasks, operation_of
from sandbox import Sandbox, SandboxConfig
from sandbox.base.records import Status


@pytest.fixture(scope="module")
def tasks():
    # The train and held-out splits at their default size, and a slice of the warm-up split.
    return {"warmup": load_tiny_tasks("warmup")[:120], "train": load_tiny_tasks("train"), "heldout": load_tiny_tasks("heldout")}


def _argument(problem) -> str:
    return problem.canonical_solution.split("(", 1)[1].split(")", 1)[0]


def _wrong_solution(problem, others):
    """The reference of a *different* operation on the same argument type, renamed to this entry point."""
    op = operation_of(problem)
    for other in others:
        if operation_of(other) != op and _argument(other) == _argument(problem):
            return other.canonical_solution.replace(f"def {other.entry_point}(", f"def {problem.entry_point}(", 1)
    raise AssertionError(f"no other operation with the same argument as {problem.task_id}")


def test_problem_records(tasks):
    for split, problems in tasks.items():
        for p in problems:
            assert p.split == split and p.source == "tiny-tasks" and p.language == "python"
            assert p.code_prefix == ""  # the model writes the whole function
            assert p.prompt.startswith(tuple(f.split("{")[0] for f in FRAMES))
            assert f"def {p.entry_point}(" in p.canonical_solution and p.entry_point in p.prompt
            assert 4 <= len(p.test_list) <= 6 and all(t.startswith(f"assert {p.entry_point}(") for t in p.test_list)
            assert len({t.split(" == ")[0] for t in p.test_list}) == len(p.test_list)  # distinct inputs


def test_references_pass_and_wrong_solutions_fail_in_the_sandbox(tasks):
    problems = [p for split in SPLITS for p in tasks[split]]
    jobs = [(p, p.canonical_solution, 0) for p in problems]
    rotated = problems[7:] + problems[:7]  # a fixed, different problem order to draw wrong solutions from
    jobs += [(p, _wrong_solution(p, rotated), 1) for p in problems]
    with Sandbox(SandboxConfig(workers=2)) as sandbox:
        verdicts = {(v.task_id, v.sample_index): v for v in sandbox.check_many(jobs)}
    assert len(verdicts) == len(jobs)
    for p in problems:
        good, bad = verdicts[(p.task_id, 0)], verdicts[(p.task_id, 1)]
        assert good.status == Status.PASSED, (p.task_id, good.reason)
        assert good.passed_tests == good.total_tests == len(p.test_list)
        assert bad.status != Status.PASSED and bad.passed_tests < bad.total_tests, (p.task_id, p.test_list)
    # Several asserts per problem make partial credit real: some wrong answers pass some tests.
    assert any(0 < verdicts[(p.task_id, 1)].passed_tests for p in problems)


def _template_of(prompt: str) -> tuple[str, int, int]:
    """Recover (operation, wording, frame) from the prompt text alone, independently of the task id."""
    matches = []
    for f, frame in enumerate(FRAMES):
        for op in OPERATIONS:
            for w, wording in enumerate(op.wordings):
                desc = re.escape(wording)
                for name in ("c", "d"):
                    desc = desc.replace(re.escape("{" + name + "}"), r"\d+")
                for name in ("ch", "ch2"):
                    desc = desc.replace(re.escape("{" + name + "}"), r"[a-z]")
                pattern = re.escape(frame).replace(re.escape("{desc}"), desc)
                pattern = pattern.replace(re.escape("{name}"), r"\w+").replace(re.escape("{arg}"), r"\w+")
                if re.fullmatch(pattern, prompt):
                    matches.append((op.name, w, f))
    assert len(matches) == 1, (prompt, matches)
    return matches[0]


def test_splits_are_disjoint_by_template(tasks):
    seen = {split: {_template_of(p.prompt) for p in problems} for split, problems in tasks.items()}
    training = seen["warmup"] | seen["train"]
    assert not seen["heldout"] & training
    # ... and not by (operation, frame) either: a held-out problem's operation never met its frame.
    assert not {(o, f) for o, _, f in seen["heldout"]} & {(o, f) for o, _, f in training}
    # Yet every operation and every frame is trained on, and every operation is tested.
    assert {o for o, _, _ in training} == {op.name for op in OPERATIONS}
    assert {f for _, _, f in training} == set(range(len(FRAMES)))
    assert {o for o, _, _ in seen["heldout"]} == {op.name for op in OPERATIONS}
    # The prompts the model is trained on never reappear in evaluation.
    assert not {p.prompt for p in tasks["heldout"]} & {p.prompt for s in ("warmup", "train") for p in tasks[s]}


def test_train_prompts_are_new_to_the_warmed_up_model():
    warmup = {p.prompt for p in load_tiny_tasks("warmup")}  # all of it: what the default model saw
    train = [p.prompt for p in load_tiny_tasks("train")]
    assert len(set(train)) == len(train) and not set(train) & warmup


def test_operations_are_balanced(tasks):
    counts = Counter(operation_of(p) for p in tasks["train"])
    assert len(counts) == len(OPERATIONS) and max(counts.values()) - min(counts.values()) <= 1


def test_deterministic_given_seed():
    a = make_tiny_tasks(3, n_warmup=50, n_train=20, n_heldout=20)
    b = make_tiny_tasks(3, n_warmup=50, n_train=20, n_heldout=20)
    c = make_tiny_tasks(4, n_warmup=50, n_train=20, n_heldout=20)
    records = lambda d: {s: [p.to_record() for p in ps] for s, ps in d.items()}  # noqa: E731
    assert records(a) == records(b)
    assert records(a) != records(c)
    # Resizing one split leaves the others unchanged (each split has its own random stream).
    d = make_tiny_tasks(3, n_warmup=10, n_train=20, n_heldout=20)
    assert records(d)["heldout"] == records(a)["heldout"] and records(d)["warmup"] == records(a)["warmup"][:10]


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="heldout"):
        load_tiny_tasks("test")
