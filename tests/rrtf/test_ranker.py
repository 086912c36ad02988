"""Ranker rules on hand-built verdicts (pure), and judge() with the real sandbox."""
from __future__ import annotations

import json

import pytest

from rrtf.ranker import RankerConfig, reward, teacher_bonus
from rrtf.ranker import rank_groups as rank
from rrtf.records import Candidate
from rrtf.rollout.judge import align, judge, read_verdicts
from sandbox.base.records import Problem, Status, Verdict

C, R, P, OK = Status.COMPILE_ERROR, Status.RUNTIME_ERROR, Status.PARTIAL, Status.PASSED


def problem(task_id: str = "t/0") -> Problem:
    return Problem(
        task_id=task_id,
        prompt="Write a function add1 that returns x plus 1.",
        entry_point="add1",
        test_list=["assert add1(1) == 2", "assert add1(-1) == 0"],
        canonical_solution="def add1(x):\n    return x + 1\n",
        source="tiny-tasks",
    )


def group(task_id: str, spec: list[tuple[str, int, Status]]):
    """spec: (source, teacher_priority, status) per candidate -> candidates, verdicts."""
    cands, verdicts = [], []
    for i, (source, prio, status) in enumerate(spec):
        cands.append(Candidate(task_id, i, source, prompt="p", response=f"resp {i}", code=f"code {i}", teacher_priority=prio))
        verdicts.append(Verdict(task_id, i, status, passed_tests=int(status == OK) * 2, total_tests=2))
    return cands, verdicts


def test_rewards_follow_situations_and_teacher_bonus_never_crosses_a_situation():
    assert teacher_bonus(0) == 0 and teacher_bonus(1) == 0.5 and teacher_bonus(2) == 0.75
    assert all(0 < teacher_bonus(p) < 1 for p in range(1, 30))
    assert reward(C, 0) < reward(R, 0) < reward(P, 0) < reward(OK, 0)
    assert reward(P, 0) < reward(P, 1) < reward(P, 2) < reward(OK, 0)
    assert reward(P, 30) < reward(OK, 0)


def test_rank_orders_by_situation_and_breaks_ties_in_favour_of_teachers():
    cands, verdicts = group("t/0", [("student", 0, C), ("student", 0, R), ("student", 0, P), ("student", 0, P),
                                    ("student", 0, OK), ("gpt", 2, OK), ("reference", 1, OK)])
    groups, stats = rank([problem()], cands, verdicts)
    (g,) = groups
    assert g.rewards == [0.0, 1.0, 2.0, 2.0, 3.0, 3.75, 3.5]
    assert g.responses == [f"resp {i}" for i in range(7)]
    assert g.statuses == ["compile_error", "runtime_error", "partial", "partial", "passed", "passed", "passed"]
    assert g.sources[-2:] == ["gpt", "reference"]
    assert g.best_teacher == 5  # both teachers pass: the higher priority wins
    assert g.prompt == "p"  # the candidates' own prompt, never rebuilt
    assert stats.kept == 1 and stats.prompts == 1 and not stats.dropped
    assert stats.statuses["student"] == {"compile_error": 1, "runtime_error": 1, "partial": 2, "passed": 1}


def test_best_teacher_is_the_highest_reward_even_against_priority():
    cands, verdicts = group("t/0", [("student", 0, R), ("big", 2, P), ("ref", 1, OK)])
    (g,), _ = rank([problem()], cands, verdicts)
    assert g.best_teacher == 2 and g.rewards == [1.0, 2.75, 3.5]


def test_drop_when_the_best_teacher_is_worse_than_a_student():
    worse = group("t/0", [("student", 0, OK), ("student", 0, R), ("reference", 1, P)])
    same = group("t/1", [("student", 0, P), ("reference", 1, P)])
    cands, verdicts = worse[0] + same[0], worse[1] + same[1]
    problems = [problem("t/0"), problem("t/1")]
    groups, stats = rank(problems, cands, verdicts)
    assert [g.task_id for g in groups] == ["t/1"]
    assert stats.dropped == {"teacher_worse": ["t/0"]} and stats.kept == 1
    # the teacher in the same situation ranks above the student, but it fails: no SFT target by default
    assert groups[0].rewards == [2.0, 2.5] and groups[0].best_teacher == -1

    kept, stats = rank(problems, cands, verdicts, RankerConfig(drop_if_teacher_worse=False, sft_on_failing_teacher=True))
    assert [g.task_id for g in kept] == ["t/0", "t/1"] and not stats.dropped
    assert kept[0].best_teacher == 2 and kept[1].best_teacher == 1


def test_groups_without_any_signal_are_dropped_but_sft_only_groups_are_kept():
    ties = group("t/0", [("student", 0, P), ("student", 0, P)])  # no teacher, all tie
    sft_only = group("t/1", [("reference", 1, OK)])  # nothing to rank, but an SFT target
    failing_alone = group("t/2", [("reference", 1, C)])
    cands = ties[0] + sft_only[0] + failing_alone[0]
    verdicts = ties[1] + sft_only[1] + failing_alone[1]
    groups, stats = rank([problem("t/0"), problem("t/1"), problem("t/2"), problem("t/3")], cands, verdicts)
    assert [g.task_id for g in groups] == ["t/1"] and groups[0].best_teacher == 0
    assert stats.dropped == {"no_signal": ["t/0", "t/2"]}
    assert stats.prompts == 3  # t/3 had no candidates
    assert "dropped 2 (no_signal)" in stats.summary()
    json.dumps(stats.to_record())  # the stats are written as JSON by the trainer


def test_missing_verdicts_and_foreign_candidates_are_clear_errors():
    cands, verdicts = group("t/0", [("student", 0, P), ("reference", 1, OK)])
    with pytest.raises(ValueError, match=r"1 verdicts for 2 candidates"):
        rank([problem()], cands, verdicts[:1])
    with pytest.raises(ValueError, match=r"no verdict for candidate t/0#1 \(reference\)"):
        align(cands, {(cands[0].dataset, cands[0].task_id, cands[0].code_hash): verdicts[0]})
    with pytest.raises(ValueError, match="not among the problems"):
        rank([problem("other")], cands, verdicts)


def test_judge_runs_the_real_sandbox_resumes_and_feeds_rank(tmp_path):
    from sandbox import Sandbox, SandboxConfig

    p = problem()
    codes = {
        0: "def add1(x)\n    return x + 1\n",  # compile error
        1: "def add1(x):\n    return x + undefined_name\n",  # runtime error
        2: "def add1(x):\n    return x + 1 if x > 0 else 5\n",  # one of two tests
        3: "def add1(x):\n    return x + 1\n",  # passes
        4: "def add1(x):\n    return x + 1\n",  # same code again: run once, judged twice
    }
    cands = [Candidate(p.task_id, i, "student", prompt="p", response=code, code=code) for i, code in codes.items()]
    cands.append(Candidate(p.task_id, 5, "reference", prompt="p", response=p.canonical_solution, code=p.canonical_solution,
                           teacher_priority=1))
    out = tmp_path / "verdicts.jsonl"
    with Sandbox(SandboxConfig(workers=2, timeout_s=30, program_timeout_s=60)) as sb:  # loaded CI: no spurious timeouts
        verdicts = judge([p], cands[:3], sb, out, progress=False)  # a first, partial run
        assert [v.sample_index for v in verdicts] == [0, 1, 2]
        with out.open("a") as fh:
            fh.write('{"task_id": "t/0", "sample_in')  # killed mid-write
        verdicts = judge([p], cands, sb, out, progress=False)
    assert [v.status for v in verdicts] == [C, R, P, OK, OK, OK]
    assert [v.sample_index for v in verdicts] == list(range(6))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # one line per distinct program (3 and 4 are the same code; the reference too): nothing judged twice
    assert sorted(r["sample_index"] for r in lines) == [0, 1, 2, 3] and all(r["round"] == 0 for r in lines)
    assert align(cands, read_verdicts(out)) == verdicts
    assert read_verdicts([out, out]) == read_verdicts(out)  # several files (one per process) merge

    (g,), stats = rank([p], cands, verdicts)
    assert g.rewards == [0.0, 1.0, 2.0, 3.0, 3.0, 3.5] and g.best_teacher == 5


def test_a_stored_verdict_of_other_code_is_never_reused(tmp_path):
    """Reliability: after resampling, a candidate with the same (round, task, index) but new code is
    rejudged; the verdict of the old code never feeds training."""
    from sandbox import Sandbox, SandboxConfig

    p = problem()
    wrong = Candidate(p.task_id, 0, "student", prompt="p", response="x", code="def add1(x):\n    return x\n")
    right = Candidate(p.task_id, 0, "student", prompt="p", response="y", code="def add1(x):\n    return x + 1\n")
    out = tmp_path / "verdicts.jsonl"
    with Sandbox(SandboxConfig(workers=1, timeout_s=30, program_timeout_s=60)) as sb:
        (first,) = judge([p], [wrong], sb, out, progress=False)
        (second,) = judge([p], [right], sb, out, progress=False)
    assert first.status == P and second.status == OK
    assert len(out.read_text().splitlines()) == 2
