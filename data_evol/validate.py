"""Stage 5: run every teacher's solution against every proposed test in the sandbox, twice.

Per task, the tests are the union of the teachers' tests (priority order, deduplicated, at most
max_tests) that call the entry point of the highest-priority answer with tests; an answer naming a
different function contributes no tests (counted) but its solution is still judged. Each solution
runs `validate_runs` times on all tests; the per-test results go to validated.jsonl, one record per
task (keyed by task id: a rerun judges only tasks not there yet, or whose plan changed because an answer that
had failed was asked again; the newest record of a task wins). Deciding what to keep is the
select stage's pure function (data_evol/select.py), so thresholds can change without rerunning code.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from data_evol.records import Answer, Instruction
from sandbox.base.records import Problem
from sandbox.base.store import JsonlStore

CHUNK = 16  # tasks judged per sandbox batch: one store write per task as its chunk finishes


def plan(task: Instruction, answers: list[Answer], max_tests: int) -> dict:
    """Which solutions run against which tests (answers in teacher priority order)."""
    with_code = [a for a in answers if a.solution.strip()]
    primary = next((a for a in with_code if a.tests), None)
    tests, authors, mismatched = [], [], []
    for a in with_code:
        if primary is None or a.entry_point != primary.entry_point:
            if a.tests:
                mismatched.append(a.teacher)
            continue
        for t in a.tests:
            if t not in tests and len(tests) < max_tests:
                tests.append(t)
                authors.append(a.teacher)
    return {"id": task.id, "entry_point": primary.entry_point if primary else "", "tests": tests, "authors": authors,
            "solvers": [a.teacher for a in with_code], "entry_point_mismatch": mismatched}


def validate_stage(pool: list[Instruction], answers: list[Answer], cfg, out: Path, teacher_order: list[str]) -> dict[str, dict]:
    rank = {t: i for i, t in enumerate(teacher_order)}
    by_task: dict[str, list[Answer]] = {}
    for a in sorted(answers, key=lambda a: rank.get(a.teacher, len(rank))):
        by_task.setdefault(a.id, []).append(a)
    with JsonlStore(out / "validated.jsonl", lambda r: r["id"]) as store:
        todo = []
        stored = {rec["id"]: rec for rec in store.records}
        for task in pool:
            p = plan(task, by_task.get(task.id, []), cfg.max_tests)
            if task.id in stored and all(stored[task.id].get(k) == v for k, v in p.items()):
                continue
            if not p["tests"]:
                store.write({**p, "results": {}, "statuses": {}})  # nothing to run: the select stage drops it
            else:
                todo.append((task, p, by_task[task.id]))
        if todo:
            from rrtf.rollout.engine import engine_from

            with engine_from(cfg) as engine, engine.sandbox(cfg.sandbox_config()) as sandbox, \
                    tqdm(total=len(pool), initial=len(pool) - len(todo), desc="validate", unit="task", disable=not cfg.progress) as bar:
                for start in range(0, len(todo), CHUNK):
                    chunk = todo[start: start + CHUNK]
                    store.write_many(_judge(sandbox, chunk, cfg.validate_runs))
                    bar.update(len(chunk))
        return {rec["id"]: rec for rec in store.records}


def _judge(sandbox, chunk: list[tuple[Instruction, dict, list[Answer]]], runs: int) -> list[dict]:
    items, where = [], {}
    for t, (task, p, answers) in enumerate(chunk):
        problem = Problem(task_id=task.id, prompt=task.instruction, entry_point=p["entry_point"], test_list=p["tests"], source="data_evol")
        for a in answers:
            if a.teacher not in p["solvers"]:
                continue
            for run in range(runs):
                index = len(items)
                where[(task.id, index)] = (t, a.teacher, run)
                items.append((problem, a.solution, index))
    results = [{**p, "results": {}, "statuses": {}} for _, p, _ in chunk]
    for rec in results:
        for teacher in rec["solvers"]:
            rec["results"][teacher] = [[] for _ in range(runs)]
            rec["statuses"][teacher] = [""] * runs
    for verdict in sandbox.check_many(items):
        t, teacher, run = where[(verdict.task_id, verdict.sample_index)]
        rec = results[t]
        if len(verdict.tests) == len(rec["tests"]):  # one result per test, in test_list order
            rec["results"][teacher][run] = [bool(r.passed) for r in verdict.tests]
        else:  # e.g. a compile error reported once: look tests up by name (absent = failed)
            passed = {r.name: r.passed for r in verdict.tests}
            rec["results"][teacher][run] = [bool(passed.get(test, False)) for test in rec["tests"]]
        rec["statuses"][teacher][run] = verdict.status.label
    return results


__all__ = ["plan", "validate_stage"]
