"""Sampler: for each prompt, N student samples at each temperature, plus one response per teacher.

    from rrtf.sampler import SamplerConfig, sample
    cands = sample(problems, student_backend, cfg.teachers, cfg, "out/candidates.jsonl",
                   round=0, process_index=state.process_index, num_processes=state.num_processes)

The student backend is usually the in-training model (`TransformersBackend(model=..., tokenizer=...)`).
Problems come as asked (`rrtf.rollout.AskedProblem`: the dataset's own prompt strategy for its task) and
each stage -- a teacher, the student at one temperature -- is one `rrtf.rollout.generate` stage, the loop
evaluation uses too, so training samples and judges exactly as evaluation does. Chat teachers'
responses are not cut at stop strings (their markdown would be).

Teachers are backend spec strings (`rrtf.backends.parse_spec`), highest priority first:
  "reference"                    the dataset's canonical_solution (rrtf.backends.reference)
  "dataset:NAME"                 teacher NAME's answer kept with the problem (Problem.teacher_answers)
  "transformers:PATH"            a local checkpoint, loaded for the teacher stage and freed after it
  "vllm:PATH[,dtype=...]"        the same on a vLLM engine (GPU; rrtf.backends.vllm_backend)
  "openai:BASE_URL#MODEL"        an OpenAI-compatible endpoint, completions API (base models)
  "openai-chat:BASE_URL#MODEL"   the same, chat API (instruction models; the prompt is the user turn)
With T teachers the first listed gets teacher_priority T, the last 1 (students have 0). A teacher is
named (Candidate.source) and identified by its model, not its URL.

Layout of a prompt's group (Candidate.index, also the sandbox sample index): student samples first,
temperature by temperature (index = t * num_samples + j), then one response per teacher in listed
order (index = len(temperatures) * num_samples + k). Teachers decode greedily (teacher_temperature).

Seeds and resume (rrtf.rollout.generate): sample j of a prompt at a stage draws from `sample_seed(seed,
"round|task_id|stage", j)`, so a run resumed after a kill anywhere, or sharded differently, produces the
same candidates as an uninterrupted one; a rerun skips prompts whose candidates are all there.
Teachers run before the student, so a bad teacher fails before the long part.

Data parallel (TRL PR #2824: processes must not sample the same candidates): process p takes
problems p, p + W, ... and writes its own file `STEM.process{p}.jsonl` (no two processes append to one
file); `read_candidates(out_path)` merges them after a barrier.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rrtf.backends import GenerationBackend, build_backend, parse_spec
from rrtf.options import knob
from rrtf.records import Candidate
from rrtf.rollout import AskedProblem, RolloutConfig, Stage, as_asked, candidate_key, generate
from sandbox.base.records import Problem
from sandbox.base.store import JsonlStore, read_store


@dataclass
class SamplerConfig:
    """How training samples: the student's and the teachers' knobs, defined here once (RRTFConfig is
    composed of this class, so the same fields are flags of `python -m rrtf.train`)."""

    IDENTITY_FIELDS = frozenset({"num_samples", "temperatures", "max_new_tokens", "seed", "teacher_temperature", "stop"})
    # (teachers and prompt_template count too, by model and by text: RRTFConfig.run_identity)

    num_samples: int = knob(6, "Student samples per prompt, per temperature.")
    temperatures: list[float] = knob(default_factory=lambda: [1.0], help="Sampling temperatures of the student.")
    max_new_tokens: int = knob(64, "Max tokens per response (student and teachers).")
    teachers: list[str] = knob(default_factory=lambda: ["reference"], help=(
        "Teachers, highest priority first: 'reference' (the dataset's answer), 'dataset:NAME' (teacher NAME's answer kept with "
        "the problem), 'transformers:PATH', 'vllm:PATH[,dtype=...]' (GPU), 'openai:BASE_URL#MODEL' or 'openai-chat:BASE_URL#MODEL'."))
    seed: int = knob(42, "Seed of sampling, data order and training (each use derives its own stream).")
    prompt_template: str | None = knob(None, "Prompt template name or text with '{instruction}' (rrtf.prompts.templates). "
                                             "Default: the Alpaca-style instruction template.")
    teacher_temperature: float = knob(0.0, "Temperature of the model teachers (0: greedy).")
    prompts_per_call: int = knob(8, "Prompts per generate() call when sampling (bounds memory; samples do not depend on it: "
                                    "seeds are per prompt and sample).")
    stop: list[str] | None = knob(None, "Stop strings for every problem. Default: each problem's prompt strategy's.")
    teacher_timeout: float = knob(120.0, "Seconds per request attempt to a served teacher (the whole request, headers to last byte).")
    teacher_retries: int = knob(3, "Further attempts after a transient teacher failure.")
    teacher_concurrency: int = knob(8, "Requests in flight to a served teacher.")
    progress: bool = knob(True, "Progress bars while sampling (rrtf.train: off with --disable_tqdm).")

    def __post_init__(self) -> None:
        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")
        if self.num_samples and not self.temperatures:
            raise ValueError("temperatures is empty: give at least one sampling temperature")
        if self.prompts_per_call < 1:
            raise ValueError(f"prompts_per_call must be >= 1, got {self.prompts_per_call}")
        parent = getattr(super(), "__post_init__", None)  # cooperative: RRTFConfig's other bases check theirs
        if parent is not None:
            parent()

    @property
    def num_student(self) -> int:
        return self.num_samples * len(self.temperatures)

    @classmethod
    def from_config(cls, config, **overrides) -> SamplerConfig:
        """The sampling knobs of an RRTFConfig (composed of this class: the same fields, copied by name)."""
        kwargs: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
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

    def build(self, asked: Sequence[AskedProblem], cfg: SamplerConfig, on_wait=None) -> GenerationBackend:
        if self.instance is not None:
            return self.instance
        if self.is_reference:
            # The bare canonical solution: it is the SFT target, in the form the student answers in
            # (two-step strategies: the strategy's own answers to both of its prompts).
            answers = {}
            for a in asked:
                if not self.applies_to(a.problem):
                    continue
                if a.asks.two_step:
                    answers.update(a.asks.reference_answers(a.problem, cfg.prompt_template))
                else:
                    answers[a.prompt(cfg.prompt_template)] = self.answer(a.problem)
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
    # a local checkpoint is named by its directory (a moved checkpoint is the same teacher); its other
    # options (vllm's dtype, ...) stay in the teacher's identity
    local = parsed.options.get("model_name_or_path")
    name = Path(local).name if local else parsed.arg
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


def shard(problems: Sequence[Problem], process_index: int, num_processes: int) -> list[Problem]:
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"bad data-parallel layout: process {process_index} of {num_processes}")
    return list(problems[process_index::num_processes])


def shard_path(out_path: str | os.PathLike, process_index: int, num_processes: int) -> Path:
    out_path = Path(out_path)
    return out_path if num_processes == 1 else out_path.with_name(f"{out_path.stem}.process{process_index}{out_path.suffix}")


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


def sample(problems: Sequence[AskedProblem | Problem], student_backend: GenerationBackend | None, teachers: Sequence[Teacher | str],
           cfg: SamplerConfig, out_path: str | os.PathLike, round: int = 0, process_index: int = 0,
           num_processes: int = 1, engine: Any = None) -> list[Candidate]:
    """Sample this process's share of `problems`; return its candidates of this round (resumed ones too).
    `engine`: where the batches run (rrtf.rollout.engine; default here)."""
    if not problems:
        raise ValueError("sampler: no problems to sample (the dataset is empty, or max_problems filtered everything out)")
    asked = as_asked(problems)
    ids = [a.task_id for a in asked]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"sampler: duplicate task_ids {dupes}: candidates are keyed by task_id")
    if student_backend is None and cfg.num_samples:
        raise ValueError("sampler: num_samples > 0 but no student backend was given")
    teacher_list = resolve_teachers(teachers)
    mine = shard(asked, process_index, num_processes)
    rollout = RolloutConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, prompt_template=cfg.prompt_template, stop=cfg.stop,
                            batch_size=cfg.prompts_per_call, progress=cfg.progress)
    path = shard_path(out_path, process_index, num_processes)
    where = f"(round {round}, process {process_index})"
    with JsonlStore(path, key=candidate_key, parse=Candidate.from_record) as out:
        for k, teacher in enumerate(teacher_list):  # teachers first: a bad teacher fails before the long part
            wanted = [a for a in mine if teacher.applies_to(a.problem)]
            if not wanted or not _missing(wanted, teacher.name, cfg.num_student + k, 1, out, round):
                continue
            backend = teacher.build(wanted, cfg)
            try:
                stage = Stage(teacher.name, backend, 1, cfg.teacher_temperature, first_index=cfg.num_student + k, source=teacher.name,
                              priority=len(teacher_list) - k, use_stop=teacher.use_stop, trim=teacher.use_stop and not teacher.is_reference)
                generate(wanted, stage, rollout, out, scope=str(round), round=round, desc=f"sample {teacher.name} {where}", engine=engine)
            finally:
                if teacher.instance is None:
                    backend.close()
        for t, temp in enumerate(cfg.temperatures if cfg.num_samples else []):
            stage = Stage(f"student@{temp:g}", student_backend, cfg.num_samples, float(temp), first_index=t * cfg.num_samples)
            generate(mine, stage, rollout, out, scope=str(round), round=round, desc=f"sample {stage.name} {where}", engine=engine)
        ids = set(ids) & {a.task_id for a in mine}
        records = [r for r in out.records if int(r.get("round", 0)) == round and r["task_id"] in ids]
    return sorted((Candidate.from_record(r, where=str(path)) for r in records), key=lambda c: (c.task_id, c.index))


def _missing(asked: list[AskedProblem], stage: str, first: int, n: int, out: JsonlStore, round: int) -> bool:
    return any((round, a.dataset, a.task_id, stage, first + j) not in out.done for a in asked for j in range(n))


__all__ = ["SamplerConfig", "Teacher", "as_asked", "parse_teacher_spec", "read_candidates", "resolve_teachers", "sample", "shard",
           "shard_path"]
