"""Generation, the first half of every rollout: asked problems -> n completions per stage -> Candidate
records, appended to a resumable store. The sampler (training: teachers, students at each temperature)
and evaluation (greedy, sampled) are each a list of stages over this one loop.

    with JsonlStore(path, key=candidate_key, parse=Candidate.from_record) as out:
        generate(asked, Stage("sampled", backend, n=10, temperature=0.8), RolloutConfig(...), out, scope="humaneval")

- Seeds: sample j of a problem at a stage draws from `sample_seed(seed, f"{scope}|{task_id}|{stage}", j)` --
  per problem and sample, never per batch or process --, so a resumed, re-batched or re-sharded run
  writes the same candidates. A two-step strategy (explain) draws sample j's synthesis from the key
  `...|{stage}|explain{j}`.
- Resume: a problem whose candidates of the stage are all in the store is skipped; each batch's
  candidates are appended in one write.
- A prompt that does not fit the model's context costs only itself: its candidates are written with
  `error` set and no code (the judge records them as not run).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from tqdm.auto import tqdm

from rrtf.backends import GenerationBackend, GenerationRequest, PromptTooLong, SamplingParams
from rrtf.prompts import trim_at_stop
from rrtf.records import Candidate
from rrtf.rollout.asked import AskedProblem
from rrtf.rollout.engine import LOCAL
from sandbox.base.store import JsonlStore

PROMPT_TOO_LONG = "prompt too long"  # a candidate's error when its prompt does not fit the model's context


@dataclass
class RolloutConfig:
    """How every stage asks: the knobs a sampler, an evaluation and a data job share."""

    max_new_tokens: int = 256
    seed: int = 0
    prompt_template: str | None = None  # None: rrtf.prompts' default
    stop: list[str] | None = None  # None: each problem's strategy's; []: no stop strings
    batch_size: int = 8  # prompts per backend.generate call (samples do not depend on it)
    progress: bool = True


@dataclass
class Stage:
    """One backend asked n times per problem at one temperature; its candidates take indices
    first_index .. first_index + n - 1 of their problem's group."""

    name: str  # part of every sample's seed key and of its candidate key: "student@1", "reference", "greedy"
    backend: GenerationBackend
    n: int
    temperature: float
    first_index: int = 0
    source: str = "student"  # Candidate.source: "student" or the teacher's name
    priority: int = 0  # Candidate.teacher_priority
    use_stop: bool = True  # False: the backend gets no stop strings (chat models: markdown must not be cut)
    trim: bool = True  # cut the stored response at the stop strings (False: data answers are kept whole)


def candidate_key(rec: dict) -> tuple:
    return (int(rec.get("round", 0)), str(rec.get("dataset", "")), str(rec["task_id"]), str(rec.get("stage", "")), int(rec["index"]))


def stop_for(asked: AskedProblem, cfg: RolloutConfig) -> list[str] | None:
    if cfg.stop is not None:
        return list(cfg.stop) or None
    return asked.stop()


def generate(asked: Sequence[AskedProblem], stage: Stage, cfg: RolloutConfig, out: JsonlStore, *, scope: str,
             round: int = 0, desc: str = "", engine: Any = None) -> int:
    """Generate what `out` lacks of this stage for `asked`; returns the number of problems generated for.
    `engine` (rrtf.rollout.engine) runs the batches: here by default, on Ray actors with --rollout ray."""
    def missing(a: AskedProblem) -> bool:
        return any((round, a.dataset, a.task_id, stage.name, stage.first_index + j) not in out.done for j in range(stage.n))

    todo = [a for a in asked if missing(a)]
    if not todo:
        return 0
    engine = engine or LOCAL
    by_strategy: dict[str, list[AskedProblem]] = {}
    for a in todo:  # a batch is asked one way (samples do not depend on how problems are batched)
        by_strategy.setdefault(a.strategy, []).append(a)
    batches = [group[start: start + cfg.batch_size] for group in by_strategy.values() for start in range(0, len(group), cfg.batch_size)]
    # What a batch runs anywhere: the stage without its backend (the engine hands each worker its copy).
    run = partial(run_batch, stage=replace(stage, backend=None), cfg=cfg, scope=scope, round=round)
    with tqdm(total=len(todo), desc=desc or f"generate {stage.name}", unit="prompt", disable=not cfg.progress) as bar:
        for batch, records in engine.map_batches(stage.backend, batches, run):
            records = [r for r in records if candidate_key(r) not in out.done]  # a resumed problem keeps its stored samples
            out.write_many(records)  # one write: whole prompts survive a kill
            engine.judge_ahead(batch, records)
            bar.update(len(batch))
    return len(todo)


def run_batch(backend: GenerationBackend, batch: list[AskedProblem], *, stage: Stage, cfg: RolloutConfig, scope: str, round: int
              ) -> list[dict]:
    """One batch of problems asked of `backend` at `stage`: every sample's Candidate record."""
    stage = replace(stage, backend=backend)
    prompts = [a.prompt(cfg.prompt_template) for a in batch]
    stops = [stop_for(a, cfg) if stage.use_stop else None for a in batch]
    requests = [GenerationRequest(prompt=p, key=f"{scope}|{a.task_id}|{stage.name}") for a, p in zip(batch, prompts)]
    outputs, errors = _ask(stage.backend, requests, _params(stops, stage.n, stage.temperature, cfg))
    firsts: dict[tuple[str, int], str] = {}
    strategy = batch[0].asks if batch else None
    if strategy is not None and strategy.two_step:
        prompts, outputs, firsts, more = _synthesize(batch, outputs, errors, stage, cfg, scope)
        errors.update(more)
        stops = [strategy.synthesis_stop(a.problem) if stage.use_stop else None for a in batch]
    records = []
    for i, (a, texts) in enumerate(zip(batch, outputs)):
        prompt = prompts[i] if isinstance(prompts[i], str) else None
        for j, text in enumerate(texts):
            index = stage.first_index + j
            error = errors.get((i, j), "")
            response = trim_at_stop(text, stops[i]) if stage.trim and stops[i] and not error else text
            records.append(Candidate(
                task_id=a.task_id, index=index, source=stage.source, prompt=prompt if prompt is not None else prompts[i][j],
                response=response, code="" if error else a.completion(response), teacher_priority=stage.priority,
                temperature=stage.temperature, round=round, dataset=a.dataset, stage=stage.name,
                first_response=firsts.get((i, j), ""), error=error[:500],
            ).to_record())
    return records


def _params(stops: Sequence[list[str] | None], n: int, temperature: float, cfg: RolloutConfig) -> SamplingParams:
    # The backend may stop early only where the batch agrees on its stop strings; each response is cut anyway.
    distinct = {tuple(s or ()) for s in stops}
    return SamplingParams(n=n, temperature=temperature, max_new_tokens=cfg.max_new_tokens,
                          stop=next(iter(distinct)) if len(distinct) == 1 else (), seed=cfg.seed)


def _ask(backend: GenerationBackend, requests: list[GenerationRequest], params: SamplingParams
         ) -> tuple[list[list[str]], dict[tuple[int, int], str]]:
    """backend.generate; when a prompt of the batch does not fit the model's context, one request at a
    time, the ones that do not fit answered "" with {(request, sample): why}."""
    try:
        return backend.generate(requests, params), {}
    except PromptTooLong:
        pass
    outputs, errors = [], {}
    for i, request in enumerate(requests):
        try:
            outputs.append(backend.generate([request], params)[0])
        except PromptTooLong as exc:
            outputs.append([""] * params.n)
            errors.update({(i, j): f"{PROMPT_TOO_LONG}: {exc}" for j in range(params.n)})
    return outputs, errors


def _synthesize(batch, outputs, errors, stage: Stage, cfg: RolloutConfig, scope: str):
    """Two-step strategies: description j of each problem -> one synthesis, seeded by (problem, j).
    Returns per problem the list of synthesis prompts, the syntheses, the first responses and the
    samples whose synthesis prompt did not fit the model."""
    strategy = batch[0].asks
    items = [(i, j, a, strategy.synthesis_prompt(a.problem, strategy.description(a.problem, text), cfg.prompt_template))
             for i, (a, texts) in enumerate(zip(batch, outputs)) for j, text in enumerate(texts) if (i, j) not in errors]
    requests = [GenerationRequest(prompt=p, key=f"{scope}|{a.task_id}|{stage.name}|explain{j}") for i, j, a, p in items]
    stops = [strategy.synthesis_stop(a.problem) if stage.use_stop else None for _, _, a, _ in items]
    answers, failed = _ask(stage.backend, requests, _params(stops, 1, stage.temperature, cfg)) if requests else ([], {})
    prompts = [[""] * len(texts) for texts in outputs]
    second = [[""] * len(texts) for texts in outputs]
    for k, (i, j, _, p) in enumerate(items):
        prompts[i][j], second[i][j] = p, answers[k][0]
    firsts = {(i, j): text for i, texts in enumerate(outputs) for j, text in enumerate(texts)}
    more = {(items[k][0], items[k][1]): why for (k, _), why in failed.items()}
    return prompts, second, firsts, more


__all__ = ["PROMPT_TOO_LONG", "RolloutConfig", "Stage", "candidate_key", "generate", "run_batch", "stop_for"]
