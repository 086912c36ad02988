"""Judging, the second half of every rollout: each Candidate's code run against its problem's tests in
the sandbox, exactly as the problem's dataset asks it (`AskedProblem.judge_input`), resumably.

    verdicts = judge(asked, candidates, sandbox, "round0/verdicts.process0.jsonl")   # verdicts[i] judges candidates[i]

Each verdict line carries the candidate's dataset, round and the hash of what was judged (task id +
code): a stored verdict is reused only for the very same code of the same dataset, so after resampling
a candidate is rejudged, never paired with a verdict of other code. The same code for the same task
(greedy teachers, a collapsed student) runs once. A candidate with nothing generated (`error`) is
recorded as NOT_RUN without running anything.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from tqdm.auto import tqdm

from rrtf.records import Candidate
from rrtf.rollout.asked import AskedProblem, as_asked
from sandbox.base.records import Problem, Status, Verdict
from sandbox.base.store import JsonlStore, read_store

EXTRA = ("round", "code_hash", "dataset")  # what a verdict line holds besides the Verdict


def verdict_key(rec: dict) -> tuple[str, str, str]:
    return (str(rec.get("dataset", "")), str(rec["task_id"]), str(rec["code_hash"]))


def candidate_verdict_key(c: Candidate) -> tuple[str, str, str]:
    return (c.dataset, c.task_id, c.code_hash)


def _verdict(rec: dict, where: str) -> Verdict:
    return Verdict.from_record({k: v for k, v in rec.items() if k not in EXTRA}, where=where)


def read_verdicts(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> dict[tuple[str, str, str], Verdict]:
    """Verdicts judge() wrote to one file or several (e.g. one per process), by (dataset, task_id, code hash)."""
    records = read_store(paths, verdict_key)
    return {verdict_key(r): _verdict(r, str(paths)) for r in records}


def align(candidates: Sequence[Candidate], verdicts: dict[tuple[str, str, str], Verdict]) -> list[Verdict]:
    """verdicts[i] for candidates[i] (its sample_index set to the candidate's index)."""
    out = []
    for c in candidates:
        v = verdicts.get(candidate_verdict_key(c))
        if v is None:
            raise ValueError(f"no verdict for candidate {c.task_id}#{c.index} ({c.source}) of its current code; run judge() first")
        out.append(v if v.sample_index == c.index else replace(v, sample_index=c.index))
    return out


def not_run(c: Candidate) -> Verdict:
    return Verdict(task_id=c.task_id, sample_index=c.index, status=Status.NOT_RUN, passed_tests=0, total_tests=0, reason=c.error[:500])


def judge(asked: Sequence[AskedProblem | Problem], candidates: Sequence[Candidate], sandbox, out_path: str | os.PathLike | None, *,
          progress: bool = True) -> list[Verdict]:
    """One verdict per candidate (in the order of `candidates`); `sandbox` is a started sandbox.Sandbox.
    `out_path` None keeps the verdicts in memory only."""
    by_key = {(a.dataset, a.task_id): a for a in as_asked(asked)}
    for c in candidates:
        if (c.dataset, c.task_id) not in by_key:
            raise ValueError(f"judge: candidate {c.task_id}#{c.index} of dataset {c.dataset!r} is not among the asked problems")
    with JsonlStore(out_path, key=verdict_key) as out:
        found = {verdict_key(r): _verdict(r, str(out_path)) for r in out.records}
        todo: dict[tuple[str, str, str], Candidate] = {}
        for c in candidates:
            if candidate_verdict_key(c) not in found:
                todo.setdefault(candidate_verdict_key(c), c)
        bar = tqdm(total=len(todo), desc="judge", unit="program", disable=not progress or not todo)
        jobs, first = [], {}
        for key, c in todo.items():
            if c.error:  # nothing was generated: recorded, never run
                _store(out, found, key, c, not_run(c))
                bar.update(1)
                continue
            problem, completion = by_key[(c.dataset, c.task_id)].judge_input(c.code)
            jobs.append((problem, completion, len(first)))  # the sample index only routes the verdict back
            first[len(first)] = (key, c)
        for verdict in sandbox.check_many(jobs) if jobs else ():
            key, c = first[verdict.sample_index]
            _store(out, found, key, c, replace(verdict, sample_index=c.index))
            bar.update(1)
        bar.close()
    return align(candidates, found)


def _store(out: JsonlStore, found: dict, key: tuple, c: Candidate, verdict: Verdict) -> None:
    out.write({**verdict.to_record(), "round": c.round, "code_hash": c.code_hash, "dataset": c.dataset})
    found[key] = verdict


__all__ = ["align", "candidate_verdict_key", "judge", "not_run", "read_verdicts", "verdict_key"]
