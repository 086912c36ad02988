"""The evaluation core: generate, judge in the sandbox, score -- resumable per sample.

    result = evaluate({"heldout": problems}, backend, sandbox, EvalConfig(num_samples=0))

Prompts, stop strings and judged code come from each dataset's prompt strategy (rrtf.prompts,
shared with the sampler, so training judges exactly as evaluation does). Every judged sample is
appended to the samples file as soon as it is judged (sandbox.store), keyed by (dataset, task_id,
greedy|sampled, index) and guarded by the config's fingerprint, so a killed evaluation resumes
without regenerating or re-judging anything. Sample j of a problem draws from its own seed
(`sample_seed(seed, "dataset|task|mode", j)`), whatever batch it lands in.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rrtf.backends import GenerationBackend, GenerationRequest, SamplingParams
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.results import GREEDY, SAMPLED, DatasetResult, EvalResult, ProblemRow, score
from rrtf.prompts import default_strategy, get_strategy
from sandbox.errors import RecordError
from sandbox.records import Problem, Verdict
from sandbox.store import JsonlStore


def _sample_key(rec: dict[str, Any]) -> tuple:
    return (rec["dataset"], rec["task_id"], rec["mode"], rec["sample_index"])


class SampleStore:
    """Judged samples: in memory, and in a resumable JSONL file when one is given."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]):
        self.fingerprint = fingerprint
        self.store = JsonlStore(path, key=_sample_key) if path else None
        self.records: dict[tuple, dict[str, Any]] = {}
        if self.store:
            for line, rec in enumerate(self.store.records, 1):
                if rec.get("fingerprint") != fingerprint:
                    self.store.close()
                    raise RecordError(f"{path}:{line}", "fingerprint",
                                      f"written by a different evaluation setup ({rec.get('fingerprint')} != {fingerprint}); "
                                      "use another output_file/samples_file or delete this file")
                self.records[_sample_key(rec)] = rec

    def write_many(self, recs: list[dict[str, Any]]) -> None:
        for rec in recs:
            rec["fingerprint"] = self.fingerprint
            self.records[_sample_key(rec)] = rec
        if self.store:
            self.store.write_many(recs)

    def close(self) -> None:
        if self.store:
            self.store.close()


def group_problems(problems: Mapping[str, Sequence[Problem]] | Sequence[Problem]) -> dict[str, list[Problem]]:
    if isinstance(problems, Mapping):
        return {name: list(ps) for name, ps in problems.items()}
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        grouped[p.source or "problems"].append(p)
    return dict(grouped)


def resolve_strategy(name: str, problems: Sequence[Problem], cfg: EvalConfig, strategies: Mapping[str, str] | None = None) -> str:
    """cfg.strategy, else the caller's choice for this dataset, else the dataset registry's, else
    continue for code prompts and instruct for instructions."""
    from rrtf.datasets import ALIASES, DATASETS, is_file_name, parse_name

    if cfg.strategy:
        return cfg.strategy
    if strategies and name in strategies:
        return strategies[name]
    if not is_file_name(name) and ALIASES.get(name, name).split(":")[0] in DATASETS:
        spec, _, task = parse_name(name)
        return spec.tasks[task]
    return dataset_default_strategy(problems)


def dataset_default_strategy(problems: Sequence[Problem]) -> str:
    """Continue when every problem's default is to continue, else instruct."""
    return "continue" if problems and all(default_strategy(p) == "continue" for p in problems) else "instruct"


def evaluate(problems: Mapping[str, Sequence[Problem]] | Sequence[Problem], backend: GenerationBackend, sandbox: Any,
             cfg: EvalConfig, *, strategies: Mapping[str, str] | None = None) -> EvalResult:
    """Generate, judge and score. `problems` maps dataset name -> problems (a plain list is grouped by
    `Problem.source`); `sandbox` is a started `sandbox.Sandbox`. Evaluating another in-memory model
    into the same samples file needs another `tag` (e.g. "before", "after"). In distributed
    training call it on the main process only."""
    grouped = group_problems(problems)
    store = SampleStore(cfg.resolved_samples_file(), cfg.fingerprint())
    results: dict[str, DatasetResult] = {}
    rows: list[ProblemRow] = []
    try:
        for name, plist in grouped.items():
            plist = plist[: cfg.max_problems] if cfg.max_problems is not None else plist
            dupes = [t for t, n in Counter(p.task_id for p in plist).items() if n > 1]
            if dupes:
                raise ValueError(f"dataset {name!r} has duplicate task ids: {dupes[:5]}")
            strategy = resolve_strategy(name, plist, cfg, strategies)
            _generate_and_judge(name, plist, strategy, backend, sandbox, cfg, store)
            result, prows = score(name, plist, strategy, cfg.num_samples, cfg.k, cfg.greedy, cfg.temperature, store.records)
            results[name] = result
            rows.extend(prows)
    finally:
        store.close()
    return EvalResult(results, rows, config=asdict(cfg))


def _work(name: str, problems: Sequence[Problem], cfg: EvalConfig, store: SampleStore) -> list[tuple[str, Problem, list[int]]]:
    """(mode, problem, missing sample indices) for everything not yet in the store."""
    modes = ([(GREEDY, 1)] if cfg.greedy else []) + ([(SAMPLED, cfg.num_samples)] if cfg.num_samples else [])
    work = []
    for mode, count in modes:
        for p in problems:
            missing = [i for i in range(count) if (name, p.task_id, mode, i) not in store.records]
            if missing:
                work.append((mode, p, missing))
    return work


def _generate_and_judge(name, problems, strategy_name, backend, sandbox, cfg, store) -> None:
    work = _work(name, problems, cfg, store)
    if not work:
        return
    strategy = get_strategy(strategy_name)
    total = sum(len(m) for _, _, m in work)
    with tqdm(total=total, desc=f"eval {name}", unit="sample", disable=None) as bar:
        for mode in (GREEDY, SAMPLED):
            items = [(p, missing) for m, p, missing in work if m == mode]
            for start in range(0, len(items), cfg.batch_size):
                batch = items[start: start + cfg.batch_size]
                _run_batch(name, mode, batch, strategy, backend, sandbox, cfg, store)
                bar.update(sum(len(m) for _, m in batch))


def _run_batch(name, mode, batch, strategy, backend, sandbox, cfg, store) -> None:
    n = 1 if mode == GREEDY else cfg.num_samples  # all of a problem's samples: seeds are per sample index
    stops = {tuple(strategy.stop(p) or ()) for p, _ in batch}
    # The backend may stop early only when the batch agrees on its stop sequences; completion() cuts anyway.
    params = SamplingParams(n=n, temperature=0.0 if mode == GREEDY else cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                            stop=next(iter(stops)) if len(stops) == 1 else (), seed=cfg.seed)
    requests = [GenerationRequest(prompt=strategy.prompt(p, cfg.prompt_template), key=f"{name}|{p.task_id}|{mode}") for p, _ in batch]
    outputs = backend.generate(requests, params)
    pending: dict[tuple[str, int], dict[str, Any]] = {}
    jobs = []
    for (problem, indices), responses in zip(batch, outputs):
        judged = strategy.judged(problem)
        for index in indices:
            response = responses[index]
            completion = strategy.completion(problem, response)
            pending[(problem.task_id, index)] = {"dataset": name, "task_id": problem.task_id, "mode": mode, "sample_index": index,
                                                 "response": response, "completion": completion}
            jobs.append((judged, completion, index))
    done = []
    for verdict in sandbox.check_many(jobs):
        rec = pending.pop((verdict.task_id, verdict.sample_index))
        rec["verdict"] = verdict_summary(verdict)
        done.append(rec)
    store.write_many(done)
    if pending:
        raise RuntimeError(f"the sandbox returned no verdict for {sorted(pending)[:5]}")


def verdict_summary(v: Verdict) -> dict[str, Any]:
    return {"status": v.status.label, "passed": v.passed, "passed_tests": v.passed_tests, "total_tests": v.total_tests,
            "reason": v.reason[:500], "duration_s": round(v.duration_s, 4)}


__all__ = ["SampleStore", "dataset_default_strategy", "evaluate", "group_problems", "resolve_strategy", "verdict_summary"]
