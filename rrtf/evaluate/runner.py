"""The evaluation core: a rollout (rrtf.rollout: generate, judge in the sandbox) and scoring -- resumable
per sample.

    result = evaluate({"heldout": problems}, backend, sandbox, EvalConfig(num_samples=0))

Each dataset's problems are asked as the dataset asks them (`rrtf.rollout.ask`, the registry's strategy
for its task: the same records training samples), and evaluated in two rollout stages, "greedy" (one
sample at temperature 0) and "sampled" (num_samples at `temperature`): sample j of a problem draws from
`sample_seed(seed, "dataset|task|mode", j)`, whatever batch it lands in; a two-step strategy (explain)
draws sample j's synthesis from `...|explain<j>`. What was generated is appended as Candidate records to
the samples file (`EvalConfig.resolved_samples_file()`) and its verdicts as Verdict records beside it
(`*.verdicts.jsonl`, keyed by the judged code), so a killed evaluation resumes without regenerating or
re-judging anything; `*.identity.json` guards both against mixing in another setup's samples.

A dataset whose language cannot be judged here (Status.NOT_JUDGED: a toolchain missing) is probed with
one judged canonical solution first and reported (`DatasetResult.error`, naming the package) instead of
generated for; the other datasets go on. A prompt that does not fit the model is a failed sample
(status not_run), not a lost batch.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rrtf.backends import GenerationBackend
from rrtf.evaluate.breakdown import dataset_metrics, robustness_overall
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.results import GREEDY, SAMPLED, DatasetResult, EvalResult, ProblemRow, score
from rrtf.records import Candidate, check_verdict_files
from rrtf.rollout import AskedProblem, RolloutConfig, Stage, ask, candidate_key, generate
from rrtf.rollout.asked import dataset_default_strategy, resolve_strategy
from rrtf.rollout.engine import engine_of
from rrtf.rollout.judge import judge
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem, Status, Verdict
from sandbox.base.store import JsonlStore, read_state, write_state


def verdicts_path(samples: Path) -> Path:
    name = samples.name
    stem = name[: -len(".samples.jsonl")] if name.endswith(".samples.jsonl") else samples.stem
    return samples.with_name(f"{stem}.verdicts.jsonl")


def identity_path(samples: Path) -> Path:
    return verdicts_path(samples).with_name(verdicts_path(samples).name.replace(".verdicts.jsonl", ".identity.json"))


class Rollouts:
    """An evaluation's candidates and verdicts: resumable files when a samples file is given, else memory."""

    def __init__(self, samples: Path | None, fingerprint: dict[str, Any]):
        if samples is not None:
            ident = identity_path(samples)
            old = read_state(ident)
            if old is not None and old != fingerprint:
                raise RecordError(str(ident), "fingerprint", f"written by a different evaluation setup ({old} != {fingerprint}); "
                                                             "use another output_file/samples_file or delete the samples files")
            if old is None and samples.exists() and samples.stat().st_size:
                raise RecordError(str(samples), "fingerprint", f"samples without {ident.name}: from another version or setup; "
                                                               "use another output_file/samples_file or delete it")
            write_state(ident, fingerprint)
        self.candidates = JsonlStore(samples, key=candidate_key, parse=Candidate.from_record)
        self.verdict_file = None if samples is None else verdicts_path(samples)
        if self.verdict_file is not None:
            check_verdict_files(self.verdict_file)  # a bad stored verdict names FILE:LINE and field

    def of(self, asked: Sequence[AskedProblem]) -> list[Candidate]:
        wanted = {(a.dataset, a.task_id) for a in asked}
        return [Candidate.from_record(r) for r in self.candidates.records if (r.get("dataset", ""), r["task_id"]) in wanted]

    def close(self) -> None:
        self.candidates.close()


def group_problems(problems: Mapping[str, Sequence[Problem]] | Sequence[Problem]) -> dict[str, list[Problem]]:
    if isinstance(problems, Mapping):
        return {name: list(ps) for name, ps in problems.items()}
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        grouped[p.source or "problems"].append(p)
    return dict(grouped)


def evaluate(problems: Mapping[str, Sequence[Problem]] | Sequence[Problem], backend: GenerationBackend, sandbox: Any,
             cfg: EvalConfig, *, strategies: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> EvalResult:
    """Generate, judge and score. `problems` maps dataset name -> problems (a plain list is grouped by
    `Problem.source`); `sandbox` is a started `sandbox.Sandbox`. Evaluating another in-memory model
    into the same samples file needs another `tag` (e.g. "before", "after"). `errors` names datasets
    that could not be loaded (reported, not evaluated). In distributed training call it on the main
    process only."""
    from rrtf.datasets import limit_problems, spec_of
    from rrtf.evaluate.static_judge import with_static_judges

    engine = engine_of(sandbox)  # where the rollout runs: the engine the sandbox was opened on
    sandbox = with_static_judges(sandbox)  # datasets judged without running code (labels, AATK) are judged there
    grouped = group_problems(problems)
    store = Rollouts(cfg.resolved_samples_file(), cfg.fingerprint())
    results: dict[str, DatasetResult] = {}
    rows: list[ProblemRow] = []
    try:
        for name, plist in grouped.items():
            spec = spec_of(name)
            plist = limit_problems(plist, cfg.max_problems, spec)
            dupes = [t for t, n in Counter(p.task_id for p in plist).items() if n > 1]
            if dupes:
                raise ValueError(f"dataset {name!r} has duplicate task ids: {dupes[:5]}")
            asked = ask(name, plist, cfg.strategy, strategies)
            strategy, task = (asked[0].strategy, asked[0].task) if asked else resolve_strategy(name, plist, cfg.strategy, strategies)
            missing = probe_toolchain(plist, sandbox)
            if missing:
                results[name] = unevaluated(name, strategy, task, plist, cfg, missing)
                continue
            records = rollout(asked, backend, sandbox, cfg, store, engine)
            result, prows = score(name, plist, strategy, cfg.num_samples, cfg.k, cfg.greedy, cfg.temperature, records)
            result.task = task
            result.metrics = dataset_metrics(name, plist, spec, cfg.num_samples, cfg.k, cfg.greedy, records)
            result.error = not_judged_error(records)
            results[name] = result
            rows.extend(prows)
    finally:
        store.close()
    for name, message in (errors or {}).items():
        results[name] = unevaluated(name, "", "", [], cfg, message)
    overall = robustness_overall({name: r.metrics for name, r in results.items()})
    # The backend's identity names what answered, at which precision (rrtf.backends.base).
    return EvalResult(results, rows, config={**asdict(cfg), "backend_identity": backend.identity()}, recode_overall=overall)


def probe_toolchain(problems: Sequence[Problem], sandbox: Any) -> str | None:
    """Why these problems cannot be judged here (Status.NOT_JUDGED, e.g. a missing toolchain naming its
    package), found by judging one canonical solution; None when they can (Python needs no probe)."""
    first = next((p for p in problems if p.language != "python"), None)
    if first is None:
        return None
    (verdict,) = list(sandbox.check_many([(first, first.canonical_solution, 0)]))
    return verdict.reason if verdict.status == Status.NOT_JUDGED else None


def not_judged_error(records: Mapping[tuple, dict[str, Any]]) -> str | None:
    """A dataset some of whose samples could not be judged here: the first reason (it names the package)."""
    return next((r["verdict"]["reason"] for r in records.values() if r["verdict"]["status"] == Status.NOT_JUDGED.label), None)


def unevaluated(name: str, strategy: str, task: str, problems: Sequence[Problem], cfg: EvalConfig, error: str) -> DatasetResult:
    return DatasetResult(name=name, strategy=strategy, num_problems=len(problems), num_samples=cfg.num_samples,
                         temperature=cfg.temperature, pass_at_k={}, greedy_pass_at_1=None, status_counts={}, greedy_status_counts={},
                         task=task, error=error)


def rollout(asked: Sequence[AskedProblem], backend: GenerationBackend, sandbox: Any, cfg: EvalConfig,
            store: Rollouts, engine: Any = None) -> dict[tuple, dict[str, Any]]:
    """Generate and judge what the store lacks; the judged samples as scoring reads them:
    {(dataset, task_id, mode, index): {"verdict": summary, "completion": ..., ...}}."""
    if not asked:
        return {}
    name = asked[0].dataset
    rcfg = RolloutConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, prompt_template=cfg.prompt_template, stop=cfg.stop,
                         batch_size=cfg.batch_size, progress=True)
    stages = ([Stage(GREEDY, backend, 1, 0.0)] if cfg.greedy else []) + \
             ([Stage(SAMPLED, backend, cfg.num_samples, cfg.temperature)] if cfg.num_samples else [])
    for stage in stages:
        generate(asked, stage, rcfg, store.candidates, scope=name, desc=f"eval {name} ({stage.name})", engine=engine)
    candidates = [c for c in store.of(asked) if c.stage in {s.name for s in stages}]
    verdicts = judge(asked, candidates, sandbox, store.verdict_file, progress=True)
    formats = {a.task_id: a.problem.test_format for a in asked}
    return {(name, c.task_id, c.stage, c.index): sample_record(c, v, formats[c.task_id]) for c, v in zip(candidates, verdicts)}


def sample_record(c: Candidate, v: Verdict, test_format: str = "") -> dict[str, Any]:
    rec = {"dataset": c.dataset, "task_id": c.task_id, "mode": c.stage, "sample_index": c.index, "response": c.response,
           "completion": c.code, "verdict": verdict_summary(v, test_format)}
    if c.first_response:
        rec["describe_response"] = c.first_response
    return rec


def verdict_summary(v: Verdict, test_format: str = "") -> dict[str, Any]:
    out = {"status": v.status.label, "passed": v.passed, "passed_tests": v.passed_tests, "total_tests": v.total_tests,
           "reason": v.reason[:500], "duration_s": round(v.duration_s, 4)}
    if test_format == "evalplus":  # passed: base and plus inputs; base_passed: the original benchmark's inputs only
        from sandbox.evalplus import base_passed

        out["base_passed"] = base_passed(v)
    return out


__all__ = ["Rollouts", "dataset_default_strategy", "evaluate", "group_problems", "probe_toolchain", "resolve_strategy", "rollout",
           "sample_record", "unevaluated", "verdict_summary", "verdicts_path"]
