"""Judge: run every candidate's code against its problem's tests in the sandbox, resumably.

    verdicts = judge(problems, candidates, sandbox, "round0/verdicts.process0.jsonl")   # verdicts[i] judges candidates[i]

Each verdict line carries the candidate's round and the hash of what was judged (task id + code):
a stored verdict is reused only for the very same code, so after resampling a candidate is rejudged,
never paired with a verdict of other code. The same code for the same task (greedy teachers, a
collapsed student) runs once. A problem is judged the way evaluation judges it: its strategy's
`judged(problem)` (rrtf.prompts), the problem Candidate.code was cut for.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from tqdm.auto import tqdm

from rrtf.records import Candidate, code_hash
from sandbox.records import Problem, Verdict
from sandbox.store import JsonlStore, read_store


def verdict_key(rec: dict) -> tuple[str, str]:
    return (str(rec["task_id"]), str(rec["code_hash"]))


def _verdict(rec: dict, where: str) -> Verdict:
    return Verdict.from_record({k: v for k, v in rec.items() if k not in ("round", "code_hash")}, where=where)


def read_verdicts(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> dict[tuple[str, str], Verdict]:
    """Verdicts judge() wrote to one file or several (e.g. one per process), by (task_id, code hash)."""
    records = read_store(paths, verdict_key)
    return {verdict_key(r): _verdict(r, str(paths)) for r in records}


def align(candidates: Sequence[Candidate], verdicts: dict[tuple[str, str], Verdict]) -> list[Verdict]:
    """verdicts[i] for candidates[i] (its sample_index set to the candidate's index)."""
    out = []
    for c in candidates:
        v = verdicts.get((c.task_id, c.code_hash))
        if v is None:
            raise ValueError(f"no verdict for candidate {c.task_id}#{c.index} ({c.source}) of its current code; run judge() first")
        out.append(v if v.sample_index == c.index else replace(v, sample_index=c.index))
    return out


def judge(problems: Sequence[Problem], candidates: Sequence[Candidate], sandbox, out_path: str | os.PathLike, *,
          progress: bool = True) -> list[Verdict]:
    """One verdict per candidate (in the order of `candidates`); `sandbox` is a started sandbox.Sandbox."""
    from rrtf.prompts import strategy_for

    by_id = {p.task_id: strategy_for(p).judged(p) for p in problems}
    for cand in candidates:
        if cand.task_id not in by_id:
            raise ValueError(f"judge: candidate {cand.task_id}#{cand.index} is for a task that is not among the problems")
    with JsonlStore(out_path, key=verdict_key) as out:
        found = {verdict_key(r): _verdict(r, str(out_path)) for r in out.records}
        todo: dict[tuple[str, str], Candidate] = {}
        for c in candidates:
            key = (c.task_id, c.code_hash)
            if key not in found:
                todo.setdefault(key, c)
        jobs = [(by_id[c.task_id], c.code, c.index) for c in todo.values()]
        first = {(c.task_id, c.index): (key, c) for key, c in todo.items()}
        bar = tqdm(total=len(todo), desc="judge", unit="program", disable=not progress or not todo)
        for verdict in sandbox.check_many(jobs) if jobs else []:
            key, c = first[(verdict.task_id, verdict.sample_index)]
            out.write({**verdict.to_record(), "round": c.round, "code_hash": code_hash(c.task_id, c.code)})
            found[key] = verdict
            bar.update(1)
        bar.close()
    return align(candidates, found)


__all__ = ["align", "judge", "read_verdicts", "verdict_key"]
