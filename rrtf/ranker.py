"""Ranker: turn each prompt's judged candidates (their verdicts come from rrtf.rollout.judge) into a RankedGroup.

    from rrtf.ranker import RankerConfig, rank_groups
    verdicts = rrtf.rollout.judge.judge(asked, candidates, sandbox, "out/verdicts.jsonl")   # verdicts[i] judges candidates[i]
    groups, stats = rank_groups(problems, candidates, verdicts, RankerConfig.from_config(rrtf_config))

Rewards (PanGu-Coder2's four situations, RRHF's ranking loss on top):

    r = status + teacher_bonus(priority)
    status:  compile error 0 < runtime error (incl. timeout, memory limit) 1 < partial 2 < all tests pass 3
             (`sandbox.base.records.Status`; "partial" means the program ran, k of n tests passed, k may be 0)
    teacher_bonus(p) = 0 for the student (p = 0), 1 - 0.5**p for a teacher of priority p >= 1:
             0.5, 0.75, 0.875, ... -- always < 1, so a teacher outranks a student *in the same situation*
             and never crosses into the next situation; with T teachers the first listed has p = T.

Students in the same situation tie (equal rewards): the loss gives ties zero weight. The fraction of
tests passed is deliberately not used -- the paper ranks by the four situations only.

Dropped prompts (`RankStats.dropped`, reason -> task ids):
    "teacher_worse"  the best teacher's reward is below the best student's, i.e. a student reached a
                     better situation than every teacher (only with drop_if_teacher_worse, default on);
    "no_signal"      nothing to learn: all rewards tie and there is no SFT target;
    "not_judged"     no candidate could be judged (Status.NOT_JUDGED / NOT_RUN: a toolchain missing here,
                     nothing generated). Such candidates are left out of every group, never ranked.
A prompt with no teacher response at all (no teachers configured, or no reference answer) is kept
if its students do not all tie: plain RRHF ranking among students.

SFT target (`RankedGroup.best_teacher`): the teacher response with the highest reward (ties: higher
priority, then lower index). If it does not pass all tests it is used only when
`sft_on_failing_teacher` is set (default off): imitating a failing answer teaches wrong code, while
its rank term still pushes the student's worse answers down. The paper uses the teacher's answer;
its teachers' answers are nearly always right, and the dataset's reference answer always passes.

Verdicts come from `rrtf.rollout.judge` (the sandbox, resumable); ranking itself is pure.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from rrtf.options import knob
from rrtf.records import Candidate, RankedGroup
from sandbox.base.records import Problem, Status, Verdict


def teacher_bonus(priority: int) -> float:
    return 0.0 if priority <= 0 else 1.0 - 0.5**priority


def reward(status: Status, priority: int) -> float:
    return float(int(status)) + teacher_bonus(priority)


@dataclass
class RankerConfig:
    """How candidates are ranked, defined here once (RRTFConfig is composed of this class)."""

    IDENTITY_FIELDS = frozenset({"drop_if_teacher_worse", "sft_on_failing_teacher"})

    drop_if_teacher_worse: bool = knob(True, "Drop prompts whose best teacher scores below a student.")
    sft_on_failing_teacher: bool = knob(False, "Use the best teacher answer as the SFT target even when it fails tests.")

    @classmethod
    def from_config(cls, config, **overrides) -> RankerConfig:
        """The ranking knobs of an RRTFConfig (composed of this class: the same fields, copied by name)."""
        kwargs: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
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
            parts = ", ".join(f"{s.label} {counts.get(s.label, 0)} ({counts.get(s.label, 0) / total:.0%})" for s in Status if counts.get(s.label) or s.judged)
            lines.append(f"  {source}: {parts}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# rank: pure
# --------------------------------------------------------------------------------------------


def rank_groups(
    problems: Sequence[Problem],
    candidates: Sequence[Candidate],
    verdicts: Sequence[Verdict],
    cfg: RankerConfig | None = None,
) -> tuple[list[RankedGroup], RankStats]:
    """One RankedGroup per prompt with candidates, in the order of `problems`; and the statistics.

    `candidates` must be of one round; `verdicts[i]` judges `candidates[i]` (rrtf.rollout.judge gives them so).
    """
    cfg = cfg or RankerConfig()
    if len(verdicts) != len(candidates):
        raise ValueError(f"ranker: {len(verdicts)} verdicts for {len(candidates)} candidates; verdicts[i] must judge candidates[i]")
    judged = {}
    for cand, verdict in zip(candidates, verdicts):
        if verdict.task_id != cand.task_id:
            raise ValueError(f"ranker: verdict for {verdict.task_id} given for candidate {cand.task_id}#{cand.index}")
        judged[(cand.task_id, cand.index)] = verdict
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

    stats = RankStats()
    status_counts: dict[str, Counter] = defaultdict(Counter)
    out: list[RankedGroup] = []
    for problem in problems:
        cands = sorted(groups_in.get(problem.task_id, []), key=lambda c: c.index)
        if not cands:
            continue
        stats.prompts += 1
        for cand in cands:
            status_counts[cand.source][judged[(cand.task_id, cand.index)].status.label] += 1
        # A candidate that was not judged (no toolchain here, nothing generated) says nothing of its code:
        # it is left out of the group, never ranked as the candidate's fault.
        cands = [c for c in cands if judged[(c.task_id, c.index)].status.judged]
        statuses = [judged[(c.task_id, c.index)].status for c in cands]
        if not cands:
            stats.dropped.setdefault("not_judged", []).append(problem.task_id)
            continue
        prompts = {c.prompt for c in cands}
        if len(prompts) > 1:
            raise ValueError(f"ranker: candidates of {problem.task_id} were sampled from {len(prompts)} different prompts")
        prompt = prompts.pop()
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
                prompt=prompt,
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


__all__ = ["RankStats", "RankerConfig", "rank_groups", "reward", "teacher_bonus"]
