"""Sampler: for each prompt, N student samples at each temperature, plus one response per teacher.

    from rrtf.sampler import SamplerConfig, sample
    cfg = SamplerConfig.from_config(rrtf_config)            # or SamplerConfig(num_samples=4, ...)
    cands = sample(problems, student_backend, cfg.teachers, cfg, "out/candidates.jsonl",
                   round=0, rank=state.process_index, world_size=state.num_processes)

The student backend is usually the in-training model, not reloaded:
`TransformersBackend(model=accelerator.unwrap_model(model), tokenizer=tokenizer)` (its mode and the
global RNG are restored after each call).

Prompts, stop strings and the code the sandbox runs come from the problem's strategy
(`rrtf.strategies.strategy_for`, shared with evaluation, so training samples and judges exactly as
evaluation does): code prompts (code_prefix set) are continued and cut where the function ends,
instruction prompts stop at the template's end markers and the program is extracted from the answer.
Chat teachers' responses are not cut at stop strings (their markdown would be). Candidate.code is
`strategy.completion(problem, response)` for every candidate, the reference's canonical_solution
included; `rrtf.ranker.judge` runs it against `strategy.judged(problem)`.

Teachers are spec strings (or `Teacher` objects), highest priority first:
  "reference"                    the dataset's canonical_solution (rrtf.backends.reference)
  "transformers:PATH"            a local checkpoint, loaded for the teacher stage and freed after it
  "openai:BASE_URL#MODEL"        an OpenAI-compatible endpoint, completions API (base models)
  "openai-chat:BASE_URL#MODEL"   the same, chat API (instruction models; the prompt is the user turn)
With T teachers the first listed gets teacher_priority T, the last 1 (students have 0).

Layout of a prompt's group (Candidate.index, also the sandbox sample index): student samples first,
temperature by temperature (index = t * num_samples + j), then one response per teacher in listed
order (index = len(temperatures) * num_samples + k). Teachers decode greedily (teacher_temperature).

Resume: every candidate is one line of `out_path`, keyed by (round, task_id, index), written as soon
as its prompt's batch is generated. A rerun skips prompts whose candidates are all there, and a line
cut short by a kill is dropped (`sandbox.store.JsonlStore`). Teachers run before the student, so a
bad teacher (unreachable endpoint, ...) fails before the expensive part. The index layout depends on
num_samples, temperatures and teachers: resume a file only with the config that started it.

Data parallel (TRL PR #2824: ranks must not sample the same candidates): rank r takes problems
r, r + W, r + 2W, ... (W = world_size), writes its own file `STEM.rank{r}.jsonl` (no two processes
append to one file), and seeds each batch with `batch_seed(seed, round, rank, stage, batch)`, so
ranks, rounds, temperatures and batches all draw different random streams. `read_candidates(out_path)`
merges the rank files after a barrier. A batch is `prompts_per_call` consecutive prompts of the
rank's shard with fixed boundaries: a rerun regenerates an unfinished batch from the same seed.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from rrtf.backends.base import GenerationBackend, build_backend, trim_at_stop
from rrtf.records import Candidate
from rrtf.strategies import strategy_for
from sandbox.records import Problem


@dataclass
class SamplerConfig:
    num_samples: int = 6  # student samples per prompt, per temperature
    temperatures: list[float] = field(default_factory=lambda: [1.0])
    max_new_tokens: int = 96
    teachers: list[str] = field(default_factory=lambda: ["reference"])  # highest priority first
    seed: int = 42
    prompt_template: str | None = None  # None: rrtf.prompting's default
    teacher_temperature: float = 0.0
    prompts_per_call: int = 8  # prompts per backend.generate call (the backend bounds its own memory)
    stop: list[str] | None = None  # None: the problem's strategy's (rrtf.strategies); [] : no stop strings
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
    def from_config(cls, config, **overrides) -> "SamplerConfig":
        """From an RRTFConfig (or any object with the same field names)."""
        kwargs = dict(
            num_samples=config.num_samples,
            temperatures=list(config.temperatures),
            max_new_tokens=config.max_new_tokens,
            teachers=list(config.teachers),
            seed=config.seed,
        )
        for name in ("prompt_template", "teacher_temperature", "prompts_per_call", "stop"):
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

    `instance` is an already-built backend to use as is (the sampler does not close it).
    """

    name: str  # Candidate.source
    backend: str  # registered backend name
    options: dict = field(default_factory=dict)
    instance: GenerationBackend | None = None
    use_stop: bool = True  # False for chat models: their markdown answers must not be cut at "\n#"

    @property
    def is_reference(self) -> bool:
        return self.backend == "reference"

    def applies_to(self, problem: Problem) -> bool:
        # A problem without a reference answer gets no reference candidate (rather than an empty one).
        return not self.is_reference or bool(problem.canonical_solution.strip())

    def build(self, problems: Sequence[Problem], prompts: dict[str, str]) -> GenerationBackend:
        if self.instance is not None:
            return self.instance
        if self.is_reference:
            # The bare canonical solution (not strategy.reference_response's fenced form): it is the SFT
            # target, in the form the student answers in (the tiny model is warmed up on it).
            answers = {prompts[p.task_id]: p.canonical_solution for p in problems if self.applies_to(p)}
            return build_backend("reference", answers=answers)
        return build_backend(self.backend, **self.options)


TEACHER_SPEC_FORMS = "'reference', 'transformers:PATH', 'openai:BASE_URL#MODEL' or 'openai-chat:BASE_URL#MODEL'"


def parse_teacher_spec(spec: str) -> Teacher:
    """'reference' | 'transformers:PATH' | 'openai:BASE_URL#MODEL' | 'openai-chat:BASE_URL#MODEL'."""
    import rrtf.backends  # noqa: F401  (registers the built-in backends)

    spec = spec.strip()
    if spec == "reference":
        return Teacher("reference", "reference")
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise ValueError(f"teacher {spec!r}: unknown teacher spec; expected {TEACHER_SPEC_FORMS}")
    if kind == "transformers":
        if not Path(arg).exists():
            raise FileNotFoundError(f"teacher {spec!r}: model path {arg} does not exist (no hub access: give a local checkpoint)")
        return Teacher(f"transformers:{Path(arg).name}", "transformers", {"model_name_or_path": arg})
    if kind in ("openai", "openai-chat"):
        base_url, hash_, model = arg.rpartition("#")
        if not hash_ or not base_url or not model:
            raise ValueError(f"teacher {spec!r}: expected {kind}:BASE_URL#MODEL, e.g. {kind}:http://127.0.0.1:8000/v1#my-model")
        chat = kind == "openai-chat"
        return Teacher(f"{kind}:{model}", "openai", {"base_url": base_url, "model": model, "chat": chat}, use_stop=not chat)
    raise ValueError(f"teacher {spec!r}: unknown teacher kind {kind!r}; expected {TEACHER_SPEC_FORMS}")


def resolve_teachers(teachers: Sequence[Teacher | str]) -> list[Teacher]:
    resolved = [t if isinstance(t, Teacher) else parse_teacher_spec(t) for t in teachers]
    names = [t.name for t in resolved]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"teachers: duplicate teacher names {sorted(dupes)}; each teacher must be a distinct source")
    return resolved


# --------------------------------------------------------------------------------------------
# Prompts, stops, seeds, files
# --------------------------------------------------------------------------------------------


def prompt_for(problem: Problem, template: str | None = None) -> str:
    """The exact text the model is conditioned on (the ranker fills RankedGroup.prompt with it)."""
    return strategy_for(problem).prompt(problem, template)


def stop_for(problem: Problem, cfg: SamplerConfig) -> list[str] | None:
    if cfg.stop is not None:
        return list(cfg.stop) or None
    return strategy_for(problem).stop(problem)


def code_of(problem: Problem, response: str) -> str:
    """The completion the sandbox runs, appended to `strategy_for(problem).judged(problem).code_prefix`.

    The reference teacher's canonical_solution goes through it too: it is judged as the same text
    from the student would be (for the shipped datasets that leaves it as it is, but for whitespace)."""
    return strategy_for(problem).completion(problem, response)


def batch_seed(seed: int, round: int, rank: int, stage: str, batch: int) -> int:
    """A reproducible seed that differs across ranks, rounds, stages (temperature/teacher) and batches."""
    digest = hashlib.sha256(f"{seed}|{round}|{rank}|{stage}|{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def shard(problems: Sequence[Problem], rank: int, world_size: int) -> list[Problem]:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad data-parallel layout: rank {rank} of world_size {world_size}")
    return list(problems[rank::world_size])


def shard_path(out_path: str | os.PathLike, rank: int, world_size: int) -> Path:
    out_path = Path(out_path)
    return out_path if world_size == 1 else out_path.with_name(f"{out_path.stem}.rank{rank}{out_path.suffix}")


def candidate_key(rec: dict) -> tuple[int, str, int]:
    return (int(rec.get("round", 0)), str(rec["task_id"]), int(rec["index"]))


def read_candidates(out_path: str | os.PathLike, *, round: int | None = None) -> list[Candidate]:
    """All candidates in `out_path` and its rank files (`STEM.rank*.jsonl`), without duplicates.

    Safe while other ranks are still writing: a torn last line is ignored (not truncated).
    """
    out_path = Path(out_path)
    paths = sorted(out_path.parent.glob(f"{out_path.stem}.rank*{out_path.suffix}"))
    if out_path.exists():
        paths.insert(0, out_path)
    seen: dict[tuple, Candidate] = {}
    for path in paths:
        with path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.endswith("\n"):
                    break
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break
                cand = Candidate.from_record(rec, where=f"{path}:{lineno}")
                if round is None or cand.round == round:
                    seen.setdefault(candidate_key(rec), cand)
    return sorted(seen.values(), key=lambda c: (c.round, c.task_id, c.index))


# --------------------------------------------------------------------------------------------
# The sampling loop
# --------------------------------------------------------------------------------------------


@dataclass
class _Stage:
    name: str  # "student@T" or the teacher's name; part of the batch seed
    backend: GenerationBackend | None
    teacher: Teacher | None
    priority: int
    temperature: float
    first_index: int
    n: int


def sample(
    problems: Sequence[Problem],
    student_backend: GenerationBackend | None,
    teachers: Sequence[Teacher | str],
    cfg: SamplerConfig,
    out_path: str | os.PathLike,
    round: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> list[Candidate]:
    """Sample this rank's share of `problems`; return its candidates of this round (resumed ones too)."""
    import rrtf.backends  # noqa: F401  (registers the built-in backends)

    if not problems:
        raise ValueError("sampler: no problems to sample (the dataset is empty, or max_problems filtered everything out)")
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"sampler: duplicate task_ids {dupes}: candidates are keyed by task_id")
    if student_backend is None and cfg.num_samples:
        raise ValueError("sampler: num_samples > 0 but no student backend was given")
    teacher_list = resolve_teachers(teachers)
    mine = shard(problems, rank, world_size)
    prompts = {p.task_id: prompt_for(p, cfg.prompt_template) for p in mine}

    stages: list[_Stage] = []
    for k, teacher in enumerate(teacher_list):  # teachers first: a bad teacher fails before the long part
        stages.append(_Stage(teacher.name, None, teacher, len(teacher_list) - k, cfg.teacher_temperature, cfg.num_student + k, 1))
    for t, temp in enumerate(cfg.temperatures if cfg.num_samples else []):
        stages.append(_Stage(f"student@{temp:g}", student_backend, None, 0, float(temp), t * cfg.num_samples, cfg.num_samples))

    path = shard_path(out_path, rank, world_size)
    from sandbox.store import JsonlStore

    with JsonlStore(path, key=candidate_key) as out:
        for stage in stages:
            _run_stage(stage, mine, prompts, cfg, out, round=round, rank=rank)
        mine_ids = set(prompts)
        records = [r for r in out.records if int(r.get("round", 0)) == round and r["task_id"] in mine_ids]
    return sorted((Candidate.from_record(r, where=str(path)) for r in records), key=lambda c: (c.task_id, c.index))


def _run_stage(stage: _Stage, problems: list[Problem], prompts: dict[str, str], cfg: SamplerConfig, out, *, round: int, rank: int) -> None:
    teacher = stage.teacher
    wanted = [p for p in problems if teacher is None or teacher.applies_to(p)]

    def missing(p: Problem) -> bool:
        return any((round, p.task_id, stage.first_index + j) not in out.done for j in range(stage.n))

    todo_total = sum(missing(p) for p in wanted)
    if not todo_total:
        return
    backend = stage.backend
    owned = False
    if teacher is not None:
        backend = teacher.build(wanted, prompts)
        owned = teacher.instance is None
    try:
        bar = tqdm(total=todo_total, desc=f"sample {stage.name} (round {round}, rank {rank})", unit="prompt", disable=not cfg.progress)
        for b in range(0, len(wanted), cfg.prompts_per_call):
            batch = [p for p in wanted[b : b + cfg.prompts_per_call] if missing(p)]
            if not batch:
                continue
            use_stop = teacher is None or teacher.use_stop
            stops = {tuple(stop_for(p, cfg) or ()) for p in batch} if use_stop else {()}
            common_stop = list(next(iter(stops))) or None if len(stops) == 1 else None
            outputs = backend.generate(
                [prompts[p.task_id] for p in batch],
                n=stage.n,
                temperature=stage.temperature,
                max_new_tokens=cfg.max_new_tokens,
                stop=common_stop,
                seed=batch_seed(cfg.seed, round, rank, stage.name, b // cfg.prompts_per_call),
            )
            if len(outputs) != len(batch) or any(len(o) != stage.n for o in outputs):
                raise RuntimeError(
                    f"backend {type(backend).__name__} returned {[len(o) for o in outputs]} completions; "
                    f"expected {stage.n} for each of {len(batch)} prompts"
                )
            for problem, texts in zip(batch, outputs):
                stop = stop_for(problem, cfg) if use_stop else None
                for j, text in enumerate(texts):
                    index = stage.first_index + j
                    if (round, problem.task_id, index) in out.done:
                        continue
                    reference = teacher is not None and teacher.is_reference
                    response = text if reference else trim_at_stop(text, stop)  # canonical_solution is whole
                    out.write(
                        Candidate(
                            task_id=problem.task_id,
                            index=index,
                            source=teacher.name if teacher else "student",
                            response=response,
                            code=code_of(problem, response),
                            teacher_priority=stage.priority,
                            temperature=stage.temperature,
                            round=round,
                        ).to_record()
                    )
            bar.update(len(batch))
        bar.close()
    finally:
        if owned:
            backend.close()


__all__ = [
    "SamplerConfig",
    "Teacher",
    "batch_seed",
    "code_of",
    "parse_teacher_spec",
    "prompt_for",
    "read_candidates",
    "resolve_teachers",
    "sample",
    "shard",
    "shard_path",
    "stop_for",
]
