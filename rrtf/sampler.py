"""Sampler: for each prompt, N student samples at each temperature, plus one response per teacher.

    from rrtf.sampler import SamplerConfig, sample
    cands = sample(problems, student_backend, cfg.teachers, cfg, "out/candidates.jsonl",
                   round=0, process_index=state.process_index, num_processes=state.num_processes)

The student backend is usually the in-training model (`TransformersBackend(model=..., tokenizer=...)`).
Prompts, stop strings and the code the sandbox runs come from the problem's prompt strategy
(`rrtf.prompts`, shared with evaluation, so training samples and judges exactly as evaluation does).
Chat teachers' responses are not cut at stop strings (their markdown would be).

Teachers are backend spec strings (`rrtf.backends.parse_spec`), highest priority first:
  "reference"                    the dataset's canonical_solution (rrtf.backends.reference)
  "dataset:NAME"                 teacher NAME's answer kept with the problem (Problem.teacher_answers)
  "transformers:PATH"            a local checkpoint, loaded for the teacher stage and freed after it
  "openai:BASE_URL#MODEL"        an OpenAI-compatible endpoint, completions API (base models)
  "openai-chat:BASE_URL#MODEL"   the same, chat API (instruction models; the prompt is the user turn)
With T teachers the first listed gets teacher_priority T, the last 1 (students have 0). A teacher is
named (Candidate.source) and identified by its model, not its URL.

Layout of a prompt's group (Candidate.index, also the sandbox sample index): student samples first,
temperature by temperature (index = t * num_samples + j), then one response per teacher in listed
order (index = len(temperatures) * num_samples + k). Teachers decode greedily (teacher_temperature).

Seeds and resume: sample j of a prompt at a stage draws from `sample_seed(seed, key, j)` with
key = "round|task_id|stage" -- per prompt and sample, never per batch or process -- so a run resumed
after a kill anywhere, or sharded differently, produces the same candidates as an uninterrupted one.
Each batch's candidates are appended in one write (sandbox.store); a rerun skips prompts whose
candidates are all there. Teachers run before the student, so a bad teacher fails before the long part.

Data parallel (TRL PR #2824: processes must not sample the same candidates): process p takes
problems p, p + W, ... and writes its own file `STEM.process{p}.jsonl` (no two processes append to one
file); `read_candidates(out_path)` merges them after a barrier.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rrtf.backends import GenerationBackend, GenerationRequest, SamplingParams, build_backend, parse_spec
from rrtf.prompts import strategy_for, trim_at_stop
from rrtf.records import Candidate
from sandbox.records import Problem
from sandbox.store import JsonlStore, read_store


@dataclass
class SamplerConfig:
    num_samples: int = 6  # student samples per prompt, per temperature
    temperatures: list[float] = field(default_factory=lambda: [1.0])
    max_new_tokens: int = 96
    teachers: list[str] = field(default_factory=lambda: ["reference"])  # highest priority first
    seed: int = 42
    prompt_template: str | None = None  # None: rrtf.prompts' default
    teacher_temperature: float = 0.0
    prompts_per_call: int = 8  # prompts per backend.generate call (the backend bounds its own memory)
    stop: list[str] | None = None  # None: the problem's strategy's; [] : no stop strings
    teacher_timeout: float = 120.0  # seconds per request attempt to a served teacher
    teacher_retries: int = 3  # further attempts after a transient failure
    teacher_concurrency: int = 8  # requests in flight to a served teacher
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")
        if self.num_samples and not self.temperatures:
            raise ValueError("temperatures is empty: give at least one sampling temperature")
        if self.prompts_per_call < 1:
            raise ValueError(f"prompts_per_call must be >= 1, got {self.prompts_per_call}")

    @property
    def num_student(self) -> int:
        return self.num_samples * len(self.temperatures)

    @classmethod
    def from_config(cls, config, **overrides) -> SamplerConfig:
        """From an RRTFConfig (or any object with the same field names)."""
        kwargs: dict[str, Any] = dict(num_samples=config.num_samples, temperatures=list(config.temperatures),
                                      max_new_tokens=config.max_new_tokens, teachers=list(config.teachers), seed=config.seed)
        for name in ("prompt_template", "teacher_temperature", "prompts_per_call", "stop", "teacher_timeout",
                     "teacher_retries", "teacher_concurrency"):
            if getattr(config, name, None) is not None:
                kwargs[name] = getattr(config, name)
        if getattr(config, "disable_tqdm", None):
            kwargs["progress"] = False
        kwargs.update(overrides)
        return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Teachers
# --------------------------------------------------------------------------------------------


@dataclass
class Teacher:
    """A source of teacher responses: a registered backend and its options, built when needed.

    `instance` is an already-built backend to use as is (the sampler does not close it)."""

    name: str  # Candidate.source
    backend: str  # registered backend name
    options: dict = field(default_factory=dict)
    instance: GenerationBackend | None = None
    use_stop: bool = True  # False for chat models: their markdown answers must not be cut at "\n#"

    @property
    def is_reference(self) -> bool:
        """Answers that are data (the canonical solution, or a named teacher's kept answer), not model output."""
        return self.backend == "reference"

    def answer(self, problem: Problem) -> str:
        """A data teacher's answer to `problem` ("" when it has none)."""
        name = self.options.get("teacher")
        if name is None:
            return problem.canonical_solution
        return next((a.solution for a in problem.teacher_answers if a.teacher == name), "")

    def identity(self) -> dict[str, Any]:
        """What the teacher's answers depend on: the model and how it is asked, not where it runs."""
        return {"name": self.name, **{k: v for k, v in self.options.items() if k not in ("base_url", "api_key", "model_name_or_path")}}

    def applies_to(self, problem: Problem) -> bool:
        # A problem without a reference answer gets no reference candidate (rather than an empty one).
        return not self.is_reference or bool(self.answer(problem).strip())

    def build(self, problems: Sequence[Problem], prompts: dict[str, str], cfg: SamplerConfig,
              on_wait=None) -> GenerationBackend:
        if self.instance is not None:
            return self.instance
        if self.is_reference:
            # The bare canonical solution: it is the SFT target, in the form the student answers in.
            answers = {prompts[p.task_id]: self.answer(p) for p in problems if self.applies_to(p)}
            return build_backend("reference", answers=answers)
        options = dict(self.options)
        if self.backend == "openai":
            options.update(timeout=cfg.teacher_timeout, max_retries=cfg.teacher_retries,
                           concurrency=cfg.teacher_concurrency, on_wait=on_wait)
        return build_backend(self.backend, **options)


def parse_teacher_spec(spec: str) -> Teacher:
    """A backend spec string as a teacher: 'reference', 'transformers:PATH', 'openai[-chat]:URL#MODEL'."""
    try:
        parsed = parse_spec(spec)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"teacher {spec!r}: {exc}") from None
    if parsed.backend == "reference":
        if parsed.kind == "dataset":
            return Teacher(f"dataset:{parsed.arg}", "reference", parsed.options)
        return Teacher("reference", "reference")
    if parsed.backend == "openai":
        return Teacher(f"{parsed.kind}:{parsed.options['model']}", "openai", parsed.options, use_stop=not parsed.options["chat"])
    name = Path(parsed.arg).name if parsed.kind == "transformers" else parsed.arg
    return Teacher(f"{parsed.kind}:{name}", parsed.backend, parsed.options)


def resolve_teachers(teachers: Sequence[Teacher | str]) -> list[Teacher]:
    resolved = [t if isinstance(t, Teacher) else parse_teacher_spec(t) for t in teachers]
    names = [t.name for t in resolved]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"teachers: duplicate teacher names {sorted(dupes)}; each teacher must be a distinct source")
    return resolved


# --------------------------------------------------------------------------------------------
# Prompts, files
# --------------------------------------------------------------------------------------------


def prompt_for(problem: Problem, template: str | None = None) -> str:
    """The exact text the model is conditioned on (Candidate.prompt)."""
    return strategy_for(problem).prompt(problem, template)


def stop_for(problem: Problem, cfg: SamplerConfig) -> list[str] | None:
    if cfg.stop is not None:
        return list(cfg.stop) or None
    return strategy_for(problem).stop(problem)


def code_of(problem: Problem, response: str) -> str:
    """The completion the sandbox runs (the reference's canonical_solution goes through it too)."""
    return strategy_for(problem).completion(problem, response)


def shard(problems: Sequence[Problem], process_index: int, num_processes: int) -> list[Problem]:
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"bad data-parallel layout: process {process_index} of {num_processes}")
    return list(problems[process_index::num_processes])


def shard_path(out_path: str | os.PathLike, process_index: int, num_processes: int) -> Path:
    out_path = Path(out_path)
    return out_path if num_processes == 1 else out_path.with_name(f"{out_path.stem}.process{process_index}{out_path.suffix}")


def candidate_key(rec: dict) -> tuple[int, str, int]:
    return (int(rec.get("round", 0)), str(rec["task_id"]), int(rec["index"]))


def read_candidates(out_path: str | os.PathLike, *, round: int | None = None) -> list[Candidate]:
    """All candidates in `out_path` and its per-process files, without duplicates (safe while other
    processes still write: their torn last lines are ignored, not truncated)."""
    out_path = Path(out_path)
    paths = [out_path, *sorted(out_path.parent.glob(f"{out_path.stem}.process*{out_path.suffix}"))]
    records = read_store(paths, candidate_key, parse=Candidate.from_record)
    cands = [Candidate.from_record(r, where=str(out_path)) for r in records]
    return sorted((c for c in cands if round is None or c.round == round), key=lambda c: (c.round, c.task_id, c.index))


# --------------------------------------------------------------------------------------------
# The sampling loop
# --------------------------------------------------------------------------------------------


@dataclass
class _Stage:
    name: str  # "student@T" or the teacher's name; part of every sample's seed key
    backend: GenerationBackend | None
    teacher: Teacher | None
    priority: int
    temperature: float
    first_index: int
    n: int


def sample(problems: Sequence[Problem], student_backend: GenerationBackend | None, teachers: Sequence[Teacher | str],
           cfg: SamplerConfig, out_path: str | os.PathLike, round: int = 0, process_index: int = 0,
           num_processes: int = 1) -> list[Candidate]:
    """Sample this process's share of `problems`; return its candidates of this round (resumed ones too)."""
    if not problems:
        raise ValueError("sampler: no problems to sample (the dataset is empty, or max_problems filtered everything out)")
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"sampler: duplicate task_ids {dupes}: candidates are keyed by task_id")
    if student_backend is None and cfg.num_samples:
        raise ValueError("sampler: num_samples > 0 but no student backend was given")
    teacher_list = resolve_teachers(teachers)
    mine = shard(problems, process_index, num_processes)
    prompts = {p.task_id: prompt_for(p, cfg.prompt_template) for p in mine}

    stages: list[_Stage] = []
    for k, teacher in enumerate(teacher_list):  # teachers first: a bad teacher fails before the long part
        stages.append(_Stage(teacher.name, None, teacher, len(teacher_list) - k, cfg.teacher_temperature, cfg.num_student + k, 1))
    for t, temp in enumerate(cfg.temperatures if cfg.num_samples else []):
        stages.append(_Stage(f"student@{temp:g}", student_backend, None, 0, float(temp), t * cfg.num_samples, cfg.num_samples))

    path = shard_path(out_path, process_index, num_processes)
    with JsonlStore(path, key=candidate_key, parse=Candidate.from_record) as out:
        for stage in stages:
            _run_stage(stage, mine, prompts, cfg, out, round=round, process_index=process_index)
        records = [r for r in out.records if int(r.get("round", 0)) == round and r["task_id"] in prompts]
    return sorted((Candidate.from_record(r, where=str(path)) for r in records), key=lambda c: (c.task_id, c.index))


def _run_stage(stage: _Stage, problems: list[Problem], prompts: dict[str, str], cfg: SamplerConfig, out: JsonlStore, *,
               round: int, process_index: int) -> None:
    teacher = stage.teacher
    wanted = [p for p in problems if teacher is None or teacher.applies_to(p)]

    def missing(p: Problem) -> bool:
        return any((round, p.task_id, stage.first_index + j) not in out.done for j in range(stage.n))

    todo = [p for p in wanted if missing(p)]
    if not todo:
        return
    bar = tqdm(total=len(todo), desc=f"sample {stage.name} (round {round}, process {process_index})", unit="prompt",
               disable=not cfg.progress)
    backend, owned = stage.backend, False
    if teacher is not None:
        backend = teacher.build(wanted, prompts, cfg, on_wait=lambda msg: bar.set_postfix_str(msg[-80:]))
        owned = teacher.instance is None
    use_stop = teacher is None or teacher.use_stop
    try:
        for b in range(0, len(todo), cfg.prompts_per_call):
            batch = todo[b: b + cfg.prompts_per_call]
            stops = {tuple(stop_for(p, cfg) or ()) for p in batch} if use_stop else {()}
            # The backend may stop early only where the batch agrees; each response is cut below anyway.
            common = next(iter(stops)) if len(stops) == 1 else ()
            params = SamplingParams(n=stage.n, temperature=stage.temperature, max_new_tokens=cfg.max_new_tokens,
                                    stop=common, seed=cfg.seed)
            requests = [GenerationRequest(prompt=prompts[p.task_id], key=f"{round}|{p.task_id}|{stage.name}") for p in batch]
            outputs = backend.generate(requests, params)
            records = []
            for problem, texts in zip(batch, outputs):
                stop = stop_for(problem, cfg) if use_stop and not (teacher and teacher.is_reference) else None
                for j, text in enumerate(texts):
                    index = stage.first_index + j
                    if (round, problem.task_id, index) in out.done:
                        continue
                    response = text if stop is None else trim_at_stop(text, stop)
                    records.append(Candidate(
                        task_id=problem.task_id, index=index, source=teacher.name if teacher else "student",
                        prompt=prompts[problem.task_id], response=response, code=code_of(problem, response),
                        teacher_priority=stage.priority, temperature=stage.temperature, round=round,
                    ).to_record())
            out.write_many(records)  # one write per batch: a kill leaves whole prompts or a torn last line
            bar.update(len(batch))
    finally:
        bar.close()
        if owned:
            backend.close()


__all__ = [
    "SamplerConfig", "Teacher", "candidate_key", "code_of", "parse_teacher_spec", "prompt_for", "read_candidates",
    "resolve_teachers", "sample", "shard", "shard_path", "stop_for",
]
