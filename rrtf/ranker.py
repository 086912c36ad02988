"""Ranker: judge every candidate in the sandbox, then turn each prompt's candidates into a RankedGroup.

    from rrtf.ranker import RankerConfig, judge, rank
    verdicts = judge(problems, candidates, sandbox, "out/verdicts.jsonl")       # resumable
    groups, stats = rank(problems, candidates, verdicts, RankerConfig.from_config(rrtf_config))

Rewards (PanGu-Coder2's four situations, RRHF's ranking loss on top):

    r = status + teacher_bonus(priority)
    status:  compile error 0 < runtime error (incl. timeout, memory limit) 1 < partial 2 < all tests pass 3
             (`sandbox.records.Status`; "partial" means the program ran, k of n tests passed, k may be 0)
    teacher_bonus(p) = 0 for the student (p = 0), 1 - 0.5**p for a teacher of priority p >= 1:
             0.5, 0.75, 0.875, ... -- always < 1, so a teacher outranks a student *in the same situation*
             and never crosses into the next situation; with T teachers the first listed has p = T.

Students in the same situation tie (equal rewards): the loss gives ties zero weight. The fraction of
tests passed is deliberately not used -- the paper ranks by the four situations only.

Dropped prompts (`RankStats.dropped`, reason -> task ids):
    "teacher_worse"  the best teacher's reward is below the best student's, i.e. a student reached a
                     better situation than every teacher (only with drop_if_teacher_worse, default on);
    "no_signal"      nothing to learn: all rewards tie and there is no SFT target.
A prompt with no teacher response at all (no teachers configured, or no reference answer) is kept
if its students do not all tie: plain RRHF ranking among students.

SFT target (`RankedGroup.best_teacher`): the teacher response with the highest reward (ties: higher
priority, then lower index). If it does not pass all tests it is used only when
`sft_on_failing_teacher` is set (default off): imitating a failing answer teaches wrong code, while
its rank term still pushes the student's worse answers down. The paper uses the teacher's answer;
its teachers' answers are nearly always right, and the dataset's reference answer always passes.

The judge step writes one verdict line per candidate, keyed by (round, task_id, index), and skips
candidates already judged on a rerun; identical code for the same task is run once. It judges each
problem the way evaluation does (`rrtf.strategies`: `strategy.judged(problem)`).
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tqdm.auto import tqdm

from rrtf.records import Candidate, RankedGroup
from sandbox.records import Problem, Status, Verdict


def teacher_bonus(priority: int) -> float:
    return 0.0 if priority <= 0 else 1.0 - 0.5**priority


def reward(status: Status, priority: int) -> float:
    return float(int(status)) + teacher_bonus(priority)


@dataclass
class RankerConfig:
    drop_if_teacher_worse: bool = True
    sft_on_failing_teacher: bool = False
    prompt_template: str | None = None  # must match the sampler's

    @classmethod
    def from_config(cls, config, **overrides) -> "RankerConfig":
        kwargs: dict[str, Any] = {"drop_if_teacher_worse": config.drop_if_teacher_worse}
        for name in ("sft_on_failing_teacher", "prompt_template"):
            if getattr(config, name, None) is not None:
                kwargs[name] = getattr(config, name)
        kwargs.update(overrides)
        return cls(**kwargs)


@dataclass
class RankStats:
    prompts: int = 0  # prompts with candidates
    kept: int = 0
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> status label -> count
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> task ids
    sft_targets: int = 0  # kept groups with a best_teacher

    def to_record(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "kept": self.kept,
            "sft_targets": self.sft_targets,
            "statuses": self.statuses,
            "dropped": {reason: len(ids) for reason, ids in self.dropped.items()},
            "dropped_task_ids": self.dropped,
        }

    def summary(self) -> str:
        lines = [f"ranked {self.prompts} prompts: kept {self.kept}, SFT targets {self.sft_targets}"]
        for reason, ids in sorted(self.dropped.items()):
            lines.append(f"  dropped {len(ids)} ({reason}): {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
        for source, counts in sorted(self.statuses.items()):
            total = sum(counts.values()) or 1
            parts = ", ".join(f"{s.label} {counts.get(s.label, 0)} ({counts.get(s.label, 0) / total:.0%})" for s in Status)
            lines.append(f"  {source}: {parts}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# rank: pure
# --------------------------------------------------------------------------------------------


def rank(
    problems: Sequence[Problem],
    candidates: Iterable[Candidate],
    verdicts: Iterable[Verdict],
    cfg: RankerConfig | None = None,
) -> tuple[list[RankedGroup], RankStats]:
    """One RankedGroup per prompt with candidates, in the order of `problems`; and the statistics.

    `candidates` must be of one round; `verdicts` are matched by (task_id, sample_index = index).
    """
    from rrtf.sampler import prompt_for

    cfg = cfg or RankerConfig()
    by_id = {p.task_id: p for p in problems}
    groups_in: dict[str, list[Candidate]] = defaultdict(list)
    rounds = set()
    for cand in candidates:
        if cand.task_id not in by_id:
            raise ValueError(f"ranker: candidate {cand.task_id}#{cand.index} is for a task that is not among the problems")
        groups_in[cand.task_id].append(cand)
        rounds.add(cand.round)
    if len(rounds) > 1:
        raise ValueError(f"ranker: candidates of several rounds {sorted(rounds)}; rank one round at a time")
    judged = {(v.task_id, v.sample_index): v for v in verdicts}

    stats = RankStats()
    status_counts: dict[str, Counter] = defaultdict(Counter)
    out: list[RankedGroup] = []
    for problem in problems:
        cands = sorted(groups_in.get(problem.task_id, []), key=lambda c: c.index)
        if not cands:
            continue
        stats.prompts += 1
        statuses = []
        for cand in cands:
            verdict = judged.get((cand.task_id, cand.index))
            if verdict is None:
                raise ValueError(f"ranker: no verdict for candidate {cand.task_id}#{cand.index} ({cand.source}); run judge() first")
            statuses.append(verdict.status)
            status_counts[cand.source][verdict.status.label] += 1
        rewards = [reward(s, c.teacher_priority) for s, c in zip(statuses, cands)]
        teachers = [i for i, c in enumerate(cands) if c.is_teacher]
        students = [i for i, c in enumerate(cands) if not c.is_teacher]

        best_teacher = -1
        if teachers:
            best = max(teachers, key=lambda i: (rewards[i], cands[i].teacher_priority, -i))
            if cfg.drop_if_teacher_worse and students and rewards[best] < max(rewards[i] for i in students):
                stats.dropped.setdefault("teacher_worse", []).append(problem.task_id)
                continue
            if statuses[best] == Status.PASSED or cfg.sft_on_failing_teacher:
                best_teacher = best
        if best_teacher < 0 and len(set(rewards)) < 2:
            stats.dropped.setdefault("no_signal", []).append(problem.task_id)
            continue

        out.append(
            RankedGroup(
                task_id=problem.task_id,
                prompt=prompt_for(problem, cfg.prompt_template),
                responses=[c.response for c in cands],
                rewards=rewards,
                sources=[c.source for c in cands],
                statuses=[s.label for s in statuses],
                best_teacher=best_teacher,
                round=cands[0].round,
            )
        )
        stats.kept += 1
        stats.sft_targets += best_teacher >= 0
    stats.statuses = {source: dict(counts) for source, counts in sorted(status_counts.items())}
    return out, stats


# --------------------------------------------------------------------------------------------
# judge: runs the sandbox, resumable
# --------------------------------------------------------------------------------------------


def verdict_key(rec: dict) -> tuple[int, str, int]:
    return (int(rec.get("round", 0)), str(rec["task_id"]), int(rec["sample_index"]))


def read_verdicts(paths: str | os.PathLike | Sequence[str | os.PathLike], *, round: int | None = None) -> list[Verdict]:
    """The verdicts judge() wrote to one file or several (e.g. one per rank); their lines carry a
    "round" that Verdict itself does not have."""
    from sandbox.store import iter_jsonl

    out = []
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        for where, rec in iter_jsonl(path):
            if round is None or int(rec.get("round", 0)) == round:
                out.append(Verdict.from_record({k: v for k, v in rec.items() if k != "round"}, where=where))
    return out


def judge(
    problems: Sequence[Problem],
    candidates: Sequence[Candidate],
    sandbox,
    out_path: str | os.PathLike,
    *,
    progress: bool = True,
) -> list[Verdict]:
    """Run each candidate's code against its problem's tests (`sandbox.check_many`); one verdict per
    candidate, in the order of `candidates`. Verdict lines carry the candidate's round.

    The sandbox judges `strategy.judged(problem)` of the problem's strategy (rrtf.strategies), the
    problem evaluation judges and the one Candidate.code (`strategy.completion`) was cut for. Under
    the sampler's per-problem default it is the problem itself; it differs only for a problem asked
    with the other strategy (a code prompt as an instruction)."""
    from rrtf.strategies import strategy_for
    from sandbox.store import JsonlStore

    by_id = {p.task_id: strategy_for(p).judged(p) for p in problems}
    for cand in candidates:
        if cand.task_id not in by_id:
            raise ValueError(f"judge: candidate {cand.task_id}#{cand.index} is for a task that is not among the problems")
    rounds = {c.round for c in candidates}
    if len(rounds) > 1:  # the sandbox reports (task_id, sample_index) only: one round per call
        raise ValueError(f"judge: candidates of several rounds {sorted(rounds)}; judge one round at a time")

    def key(c: Candidate) -> tuple[int, str, int]:
        return (c.round, c.task_id, c.index)

    with JsonlStore(out_path, key=verdict_key) as out:
        found: dict[tuple, Verdict] = {}
        for rec in out.records:
            k = verdict_key(rec)
            rec = {f: v for f, v in rec.items() if f != "round"}
            found[k] = Verdict.from_record(rec, where=str(out_path))
        todo = [c for c in candidates if key(c) not in found]
        # The same code for the same task (greedy teachers, a collapsed student) runs once.
        same_code: dict[tuple[int, str, str], list[Candidate]] = defaultdict(list)
        for c in todo:
            same_code[(c.round, c.task_id, c.code)].append(c)
        jobs = [(by_id[group[0].task_id], group[0].code, group[0].index) for group in same_code.values()]
        firsts = {(group[0].task_id, group[0].index): group for group in same_code.values()}

        bar = tqdm(total=len(todo), desc="judge", unit="candidate", disable=not progress or not todo)
        for verdict in sandbox.check_many(jobs) if jobs else []:
            group = firsts[(verdict.task_id, verdict.sample_index)]
            for c in group:
                v = verdict if c.index == verdict.sample_index else replace(verdict, sample_index=c.index)
                out.write({**v.to_record(), "round": c.round})
                found[key(c)] = v
            bar.update(len(group))
        bar.close()
    return [found[key(c)] for c in candidates]


__all__ = ["RankStats", "RankerConfig", "judge", "rank", "read_verdicts", "reward", "teacher_bonus", "verdict_key"]
