"""The job: seeds -> evolve (R rounds, eliminating) -> dedupe -> decontaminate -> answer -> validate
-> select, each stage's records in the output dir, each stage resumable on its own.

Stages that call models (evolve, judge, answer) and the sandbox stage (validate) append one record
per finished unit of work and skip what is there on a rerun; the cheap, deterministic stages
(dedupe, decontaminate, select) are recomputed from their inputs and written atomically. A stage
that finished is recorded in state.json, so rerunning a finished output dir builds no model and
makes no call: it only rewrites stats.json and report.md from the records.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from data_evol.answer import SEED_TEACHER, answer_stage
from data_evol.calls import CallStats
from data_evol.config import EvolConfig
from data_evol.decontam import BenchmarkIndex, contamination
from data_evol.dedupe import dedupe
from data_evol.evolve import evolve_stage
from data_evol.models import ModelPool, model_name
from data_evol.prompts import load_templates
from data_evol.records import Answer, Instruction
from data_evol.seeds import load_seeds
from data_evol.select import select
from data_evol.state import STAGES, finished_stages, read_pipeline_state
from data_evol.validate import validate_stage
from sandbox.base.store import read_records, read_state, write_jsonl, write_state

logger = logging.getLogger("data_evol")


MODEL_FIELDS = ("evolver", "teachers", "judge")


def _by_model(identity: dict[str, Any]) -> dict[str, Any]:
    """Models are identified by model, not by where they are served (as rrtf.train identifies teachers): the same
    server moved to another port resumes the run. Identities saved with URLs (older runs) read the same way."""
    out = dict(identity)
    for key in MODEL_FIELDS:
        value = out.get(key)
        try:
            if isinstance(value, str) and value:
                out[key] = model_name(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[key] = [model_name(v) for v in value]
        except (ValueError, OSError):  # OSError: a local model dir that is named, not checked, here
            pass  # not a spec this version parses: compared as it is
    return out


def _check_identity(out: Path, identity: dict[str, Any]) -> None:
    identity = _by_model(identity)
    saved = read_state(out / "run_identity.json")
    if saved is None:
        write_state(out / "run_identity.json", identity)
        return
    saved = _by_model(saved)
    changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
    if changed:
        diffs = "; ".join(f"{k}: {saved.get(k)!r} -> {identity.get(k)!r}" for k in changed[:5])
        raise ValueError(f"{out} holds a run made with other settings ({diffs}); resume it with the same settings or use another --output_dir")


def _instructions(path: Path) -> list[Instruction]:
    return read_records(path, Instruction.from_record, allow_empty=True)  # a stage's output: every task may have been removed


def run(cfg: EvolConfig, seeds: Any = None) -> dict[str, Any]:
    """Run (or resume) the job; returns stats.json's content. `seeds` overrides cfg.seeds (e.g. a datasets.Dataset)."""
    from data_evol.report import collect_stats, write_report

    templates = load_templates(cfg.templates)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = cfg.identity(templates.tag)
    if seeds is not None:
        identity["seeds"] = f"<{type(seeds).__name__}>"
    _check_identity(out, identity)
    state = read_pipeline_state(out / "state.json")
    done = set(finished_stages(out, state))
    calls: dict[str, CallStats] = {}
    models = ModelPool(cfg, templates)
    models.check([cfg.evolver, *cfg.teachers, *([cfg.judge] if cfg.judge else [])])

    def finish(stage: str, **info: Any) -> None:
        done.add(stage)
        state["done"] = [s for s in STAGES if s in done]
        state.setdefault("info", {})[stage] = info
        write_state(out / "state.json", state)

    index: BenchmarkIndex | None = None

    def bench_index() -> BenchmarkIndex:
        nonlocal index
        if index is None:
            index = BenchmarkIndex.from_registry(cfg.benchmarks, ngram_size=cfg.ngram_size, code_ngram_size=cfg.code_ngram_size,
                                                 code_min_tokens=cfg.code_min_tokens)
        return index

    try:
        if "seeds" not in done:
            seed_list, counts = load_seeds(seeds if seeds is not None else cfg.seeds, max_seeds=cfg.max_seeds, skip_bad=cfg.skip_bad_seeds)
            write_jsonl(out / "seeds.jsonl", (s.to_record() for s in seed_list))
            finish("seeds", **counts)
        if "evolve" not in done:
            pool = evolve_stage(_instructions(out / "seeds.jsonl"), cfg, templates, models, out, calls)
            write_jsonl(out / "instructions.jsonl", (i.to_record() for i in pool))
            finish("evolve", calls=_calls(calls, "evolve", "judge"))
        if "dedupe" not in done:
            pool = _instructions(out / "instructions.jsonl")
            kept, removed = dedupe([(i.id, i.instruction) for i in pool], threshold=cfg.dedup_threshold, num_perm=cfg.dedup_num_perm,
                                   progress=cfg.progress)
            keep = set(kept)
            write_jsonl(out / "dedup_removed.jsonl", removed)
            write_jsonl(out / "deduped.jsonl", (i.to_record() for i in pool if i.id in keep))
            finish("dedupe")
        if "decontaminate" not in done:
            pool = _instructions(out / "deduped.jsonl")
            near = bench_index().near_scores([i.instruction for i in pool])
            kept_recs, removed = [], []
            from tqdm.auto import tqdm

            for task, nr in tqdm(list(zip(pool, near)), desc="decontaminate", unit="task", disable=not cfg.progress):
                hit = contamination(index.scores(task.instruction, task.reference_solution, near=nr), cfg)
                if hit is None:
                    kept_recs.append(task.to_record())
                else:
                    removed.append({**task.to_record(), "benchmark": hit.benchmark, "benchmark_task_id": hit.benchmark_task_id,
                                    "method": hit.method, "score": hit.score})
            write_jsonl(out / "decontam_removed.jsonl", removed)
            write_jsonl(out / "decontaminated.jsonl", kept_recs)
            finish("decontaminate", benchmarks=dict(index.benchmarks))
        pool = _instructions(out / "decontaminated.jsonl")
        if "answer" not in done:
            answer_stage(pool, cfg, templates, models, out, calls)
            finish("answer", calls=_calls(calls, "answer:"))
        answers = read_records(out / "answers.jsonl", Answer.from_record, allow_empty=True)
        order = [SEED_TEACHER, *(model_name(t) for t in cfg.teachers)]
        if "validate" not in done:
            models.close()  # free a local teacher's memory before the sandbox runs
            validate_stage(pool, answers, cfg, out, order)
            finish("validate")
        if "select" not in done:
            _select_stage(pool, answers, cfg, out, bench_index())
            finish("select")
    finally:
        models.close()
        if calls:
            state.setdefault("calls", {})
            for k, v in calls.items():
                prev = state["calls"].get(k, {"calls": 0, "failed": 0})
                state["calls"][k] = {"calls": prev["calls"] + v.calls, "failed": prev["failed"] + v.failed,
                                     "errors": (prev.get("errors", []) + v.errors)[:5]}
            write_state(out / "state.json", state)
    stats = collect_stats(out, cfg, templates)
    write_report(out, stats)
    return stats


def _calls(calls: dict[str, CallStats], *stats: str) -> dict[str, dict]:
    """The call counts of one stage (its stats' names, or their prefix): a stage with failures is reopened on the next run."""
    return {k: {"calls": v.calls, "failed": v.failed} for k, v in calls.items() if k in stats or k.startswith(stats[-1]) and stats[-1].endswith(":")}


def _select_stage(pool: list[Instruction], answers: list[Answer], cfg, out: Path, index: BenchmarkIndex) -> None:
    validations = {rec["id"]: rec for rec in read_records(out / "validated.jsonl", lambda r, where="": r, allow_empty=True)}
    by_task: dict[str, dict[str, Answer]] = {}
    for a in answers:
        by_task.setdefault(a.id, {})[a.teacher] = a

    def contaminated(solution: str):
        return contamination([m for m in index.scores("", solution) if m.method == "code_ngram"], cfg)

    problems, rejected, kept_details = [], [], []
    for task in pool:
        validation = validations.get(task.id)
        if validation is None:
            rejected.append({"id": task.id, "reason": "not_validated"})
            continue
        record, reason, details = select(task, validation, by_task.get(task.id, {}), min_tests=cfg.min_tests, contaminated=contaminated)
        if record is None:
            rejected.append({"id": task.id, "reason": reason, **details})
        else:
            problems.append(record)
            rejected_or_kept = {"id": task.id, "reason": "", **details}
            kept_details.append(rejected_or_kept)
    write_jsonl(out / "rejected.jsonl", rejected)
    write_jsonl(out / "selected.jsonl", kept_details)
    write_jsonl(out / "problems.jsonl", problems)


__all__ = ["STAGES", "run"]
