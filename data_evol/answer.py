"""Stage 4: teachers answer every kept task with a solution and unit tests.

Each teacher is asked once per task (answers.jsonl keyed by (task id, teacher); a rerun asks only
for missing pairs). The reply is parsed, never trusted: the solution is the first fenced block that
defines a function; the tests are the single-line `assert` statements of the other blocks (and any
left in the solution block), deduplicated, at most max_tests. A seed that came with its own answer
and tests (a Problem record) adds them as the teacher "seed", without a call.
"""
from __future__ import annotations

import re
from pathlib import Path

from tqdm.auto import tqdm

from data_evol.calls import CallStats, run_requests
from data_evol.eliminate import is_sorry
from data_evol.models import ModelPool, model_name
from data_evol.prompts import Templates
from data_evol.records import Answer, Instruction, answer_key
from rrtf.backends import GenerationRequest, SamplingParams
from sandbox.base.store import JsonlStore

SEED_TEACHER = "seed"
_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.M)


def parse_answer(response: str, *, max_tests: int = 12, sorry_max_words: int = 80) -> tuple[str, list[str], str, str]:
    """(solution, tests, entry point, problem) of a teacher's reply; problem is "" when usable."""
    if is_sorry(response, sorry_max_words):
        return "", [], "", "refused"
    blocks = [body for lang, body in _BLOCK.findall(response) if lang.lower() in ("", "python", "py", "python3")]
    if not blocks and _DEF.search(response):
        blocks = [response]
    solution_at = next((i for i, b in enumerate(blocks) if _DEF.search(b)), None)
    if solution_at is None:
        return "", [], "", "no_code"
    solution_lines, tests = [], []
    for i, block in enumerate(blocks):
        for line in block.splitlines():
            if line.startswith("assert ") and line.strip() not in tests:
                tests.append(line.strip())
            elif i == solution_at:
                solution_lines.append(line)
    solution = "\n".join(solution_lines).strip("\n") + "\n"
    names = _DEF.findall(solution)
    called = [n for n in names if any(re.search(rf"\b{re.escape(n)}\s*\(", t) for t in tests)]
    entry = (called or names)[0]
    tests = [t for t in tests if re.search(rf"\b{re.escape(entry)}\s*\(", t)][:max_tests]
    return solution, tests, entry, "" if tests else "no_tests"


def answer_stage(pool: list[Instruction], cfg, templates: Templates, models: ModelPool, out: Path,
                 calls: dict[str, CallStats]) -> list[Answer]:
    with JsonlStore(out / "answers.jsonl", answer_key, parse=Answer.from_record) as store:
        seed_answers = [Answer(id=i.id, teacher=SEED_TEACHER, solution=i.reference_solution, tests=i.reference_tests[: cfg.max_tests],
                               entry_point=i.entry_point, problem="" if i.reference_solution.strip() else "no_code")
                        for i in pool if i.reference_solution.strip() and (i.id, SEED_TEACHER) not in store.done]
        store.write_many(a.to_record() for a in seed_answers)
        params = SamplingParams(temperature=cfg.answer_temperature, max_new_tokens=cfg.answer_max_new_tokens, seed=cfg.seed)
        for spec in cfg.teachers:
            name = model_name(spec)
            todo = [((task.id, name), GenerationRequest(messages=templates.answer_messages(task.instruction), key=f"answer/{task.id}"))
                    for task in pool if (task.id, name) not in store.done]
            if not todo:
                continue

            def store_answer(key, text: str) -> None:
                solution, tests, entry, problem = parse_answer(text, max_tests=cfg.max_tests, sorry_max_words=cfg.sorry_max_words)
                store.write(Answer(id=key[0], teacher=key[1], response=text, solution=solution, tests=tests, entry_point=entry,
                                   problem=problem).to_record())

            backend = models.get(spec)
            with tqdm(total=len(pool), initial=len(pool) - len(todo), desc=f"answer ({name})", unit="task", disable=not cfg.progress) as bar:
                run_requests(backend, todo, params, store_answer, concurrency=cfg.concurrency, batch_size=cfg.batch_size,
                             max_failed=cfg.max_failed_calls, stats=calls.setdefault(f"answer:{name}", CallStats()), bar=bar)
        ids = {task.id for task in pool}
        return [Answer.from_record(rec) for rec in store.records if rec["id"] in ids]


__all__ = ["SEED_TEACHER", "answer_stage", "parse_answer"]
