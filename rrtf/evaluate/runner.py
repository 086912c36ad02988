"""The evaluation core: generate, judge in the sandbox, score -- resumable per sample.

    result = evaluate({"heldout": problems}, backend, sandbox, EvalConfig(num_samples=0))

Prompts, stop strings and judged code come from each dataset's prompt strategy (rrtf.prompts,
shared with the sampler, so training judges exactly as evaluation does). Every judged sample is
appended to the samples file as soon as it is judged (sandbox.store), keyed by (dataset, task_id,
greedy|sampled, index) and guarded by the config's fingerprint, so a killed evaluation resumes
without regenerating or re-judging anything. Sample j of a problem draws from its own seed
(`sample_seed(seed, "dataset|task|mode", j)`), whatever batch it lands in.

A two-step strategy (explain) first generates n descriptions per problem, then, for description j,
one synthesis drawn from `sample_seed(seed, "dataset|task|mode|explain<j>", 0)`; the record keeps
the description. A dataset whose language has no toolchain here is probed with one judged sample
first and reported (`DatasetResult.error`, naming the package) instead of generated for; the other
datasets go on.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rrtf.backends import GenerationBackend, GenerationRequest, PromptTooLong, SamplingParams
from rrtf.evaluate.breakdown import dataset_metrics, robustness_overall
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.results import GREEDY, SAMPLED, TOOLCHAIN_MISSING, DatasetResult, EvalResult, ProblemRow, score, toolchain_error
from rrtf.prompts import default_strategy, get_strategy
from sandbox.errors import RecordError
from sandbox.records import Problem, Verdict
from sandbox.store import JsonlStore, require

PROMPT_TOO_LONG = "prompt too long"  # a sample's reason when its prompt does not fit the model's context


def _sample_key(rec: dict[str, Any]) -> tuple:
    return (rec["dataset"], rec["task_id"], rec["mode"], rec["sample_index"])


def validate_sample(rec: dict[str, Any], *, where: str = "") -> None:
    """A judged sample read back from the samples file: a bad one is an error naming file:line and field."""
    for field, kind in (("dataset", str), ("task_id", str), ("mode", str), ("sample_index", int), ("completion", str), ("verdict", dict)):
        require(rec, where, field, kind)
    if rec["mode"] not in (GREEDY, SAMPLED):
        raise RecordError(where, "mode", f"expected {GREEDY!r} or {SAMPLED!r}, got {rec['mode']!r}")
    if isinstance(rec["sample_index"], bool) or rec["sample_index"] < 0:
        raise RecordError(where, "sample_index", f"expected an index >= 0, got {rec['sample_index']!r}")
    require(rec["verdict"], f"{where} verdict", "passed", bool)


class SampleStore:
    """Judged samples: in memory, and in a resumable JSONL file when one is given."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]):
        self.fingerprint = fingerprint
        self.store = JsonlStore(path, key=_sample_key, parse=validate_sample) if path else None
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
             cfg: EvalConfig, *, strategies: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> EvalResult:
    """Generate, judge and score. `problems` maps dataset name -> problems (a plain list is grouped by
    `Problem.source`); `sandbox` is a started `sandbox.Sandbox`. Evaluating another in-memory model
    into the same samples file needs another `tag` (e.g. "before", "after"). `errors` names datasets
    that could not be loaded (reported, not evaluated). In distributed training call it on the main
    process only."""
    from rrtf.datasets import limit_problems, parse_name, spec_of

    grouped = group_problems(problems)
    store = SampleStore(cfg.resolved_samples_file(), cfg.fingerprint())
    results: dict[str, DatasetResult] = {}
    rows: list[ProblemRow] = []
    try:
        for name, plist in grouped.items():
            spec = spec_of(name)
            plist = limit_problems(plist, cfg.max_problems, spec)
            dupes = [t for t, n in Counter(p.task_id for p in plist).items() if n > 1]
            if dupes:
                raise ValueError(f"dataset {name!r} has duplicate task ids: {dupes[:5]}")
            strategy = resolve_strategy(name, plist, cfg, strategies)
            task = parse_name(name)[2] if spec else ""
            missing = probe_toolchain(plist, sandbox)
            if missing:
                results[name] = unevaluated(name, strategy, task, plist, cfg, missing)
                continue
            _generate_and_judge(name, plist, strategy, backend, sandbox, cfg, store)
            result, prows = score(name, plist, strategy, cfg.num_samples, cfg.k, cfg.greedy, cfg.temperature, store.records)
            result.task = task
            result.metrics = dataset_metrics(name, plist, spec, cfg.num_samples, cfg.k, cfg.greedy, store.records)
            result.error = toolchain_error(result.failure_reasons)
            results[name] = result
            rows.extend(prows)
    finally:
        store.close()
    for name, message in (errors or {}).items():
        results[name] = unevaluated(name, "", "", [], cfg, message)
    overall = robustness_overall({name: r.metrics for name, r in results.items()})
    return EvalResult(results, rows, config=asdict(cfg), recode_overall=overall)


def probe_toolchain(problems: Sequence[Problem], sandbox: Any) -> str | None:
    """The sandbox's missing-toolchain message for these problems' language, found by judging one
    canonical solution (Python needs no probe), else None."""
    first = next((p for p in problems if p.language != "python"), None)
    if first is None:
        return None
    (verdict,) = list(sandbox.check_many([(first, first.canonical_solution, 0)]))
    return verdict.reason if verdict.reason.startswith(TOOLCHAIN_MISSING) else None


def unevaluated(name: str, strategy: str, task: str, problems: Sequence[Problem], cfg: EvalConfig, error: str) -> DatasetResult:
    return DatasetResult(name=name, strategy=strategy, num_problems=len(problems), num_samples=cfg.num_samples,
                         temperature=cfg.temperature, pass_at_k={}, greedy_pass_at_1=None, status_counts={}, greedy_status_counts={},
                         task=task, error=error)


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


def _params(stops: set[tuple[str, ...]], n: int, temperature: float, cfg: EvalConfig) -> SamplingParams:
    # The backend may stop early only when the batch agrees on its stop sequences; completion() cuts anyway.
    return SamplingParams(n=n, temperature=temperature, max_new_tokens=cfg.max_new_tokens,
                          stop=next(iter(stops)) if len(stops) == 1 else (), seed=cfg.seed)


def _generate(backend: GenerationBackend, requests: list[GenerationRequest], params: SamplingParams) -> tuple[list[list[str]], dict[int, str]]:
    """backend.generate; when a prompt of the batch does not fit the model's context, one request at
    a time, the ones that do not fit answered "" and returned as {request index: why}."""
    try:
        return backend.generate(requests, params), {}
    except PromptTooLong:
        pass
    outputs, skipped = [], {}
    for i, request in enumerate(requests):
        try:
            outputs.append(backend.generate([request], params)[0])
        except PromptTooLong as exc:
            outputs.append([""] * params.n)
            skipped[i] = f"{PROMPT_TOO_LONG}: {exc}"
    return outputs, skipped


def _run_batch(name, mode, batch, strategy, backend, sandbox, cfg, store) -> None:
    n = 1 if mode == GREEDY else cfg.num_samples  # all of a problem's samples: seeds are per sample index
    temperature = 0.0 if mode == GREEDY else cfg.temperature
    requests = [GenerationRequest(prompt=strategy.prompt(p, cfg.prompt_template), key=f"{name}|{p.task_id}|{mode}") for p, _ in batch]
    outputs, skipped = _generate(backend, requests, _params({tuple(strategy.stop(p) or ()) for p, _ in batch}, n, temperature, cfg))
    unjudged = {(batch[i][0].task_id, j): why for i, why in skipped.items() for j in batch[i][1]}
    firsts: dict[tuple[str, int], dict[str, Any]] = {}
    if strategy.two_step:
        outputs, firsts, more = _synthesize(name, mode, batch, outputs, unjudged, strategy, backend, temperature, cfg)
        unjudged.update(more)
    pending: dict[tuple[str, int], dict[str, Any]] = {}
    jobs, done = [], []
    for (problem, indices), responses in zip(batch, outputs):
        for index in indices:
            response = responses[index]
            completion = strategy.completion(problem, response)
            rec = {"dataset": name, "task_id": problem.task_id, "mode": mode, "sample_index": index,
                   **firsts.get((problem.task_id, index), {}), "response": response, "completion": completion}
            why = unjudged.get((problem.task_id, index))
            if why:  # nothing was generated: a failed sample, not a judged one
                done.append({**rec, "verdict": {"status": "not_run", "passed": False, "passed_tests": 0, "total_tests": 0,
                                                "reason": why[:500], "duration_s": 0.0}})
                continue
            pending[(problem.task_id, index)] = rec
            judged, judged_completion = strategy.judge_input(problem, completion)
            jobs.append((judged, judged_completion, index))
    formats = {p.task_id: p.test_format for p, _ in batch}
    for verdict in sandbox.check_many(jobs) if jobs else ():
        rec = pending.pop((verdict.task_id, verdict.sample_index))
        rec["verdict"] = verdict_summary(verdict, formats[verdict.task_id])
        done.append(rec)
    store.write_many(done)
    if pending:
        raise RuntimeError(f"the sandbox returned no verdict for {sorted(pending)[:5]}")


def _synthesize(name, mode, batch, outputs, unjudged, strategy, backend, temperature, cfg):
    """Two-step strategies: description j of each problem -> one synthesis, seeded by (problem, j).
    Returns the syntheses laid out as `outputs` was, each sample's description fields, and the
    samples whose synthesis prompt did not fit the model."""
    items = [(p, i, strategy.description(p, responses[i]), responses[i]) for (p, indices), responses in zip(batch, outputs)
             for i in indices if (p.task_id, i) not in unjudged]
    requests = [GenerationRequest(prompt=strategy.synthesis_prompt(p, d, cfg.prompt_template), key=f"{name}|{p.task_id}|{mode}|explain{i}")
                for p, i, d, _ in items]
    stops = {tuple(strategy.synthesis_stop(p) or ()) for p, _, _, _ in items}
    answers, skipped = _generate(backend, requests, _params(stops, 1, temperature, cfg)) if requests else ([], {})
    by_sample = {(p.task_id, i): out[0] for (p, i, _, _), out in zip(items, answers)}
    firsts = {(p.task_id, i): {"describe_response": r, "description": d} for p, i, d, r in items}
    laid_out = [[by_sample.get((p.task_id, i), "") for i in range(len(responses))] for (p, _), responses in zip(batch, outputs)]
    return laid_out, firsts, {(items[k][0].task_id, items[k][1]): why for k, why in skipped.items()}


def verdict_summary(v: Verdict, test_format: str = "") -> dict[str, Any]:
    out = {"status": v.status.label, "passed": v.passed, "passed_tests": v.passed_tests, "total_tests": v.total_tests,
           "reason": v.reason[:500], "duration_s": round(v.duration_s, 4)}
    if test_format == "evalplus":  # passed: base and plus inputs; base_passed: the original benchmark's inputs only
        from sandbox.evalplus import base_passed

        out["base_passed"] = base_passed(v)
    return out


__all__ = ["SampleStore", "dataset_default_strategy", "evaluate", "group_problems", "probe_toolchain", "resolve_strategy", "unevaluated",
           "verdict_summary"]
