"""EvolConfig and DecontamConfig: one dataclass each for Python, CLI flags and YAML (`--config`),
parsed by TRL's TrlParser as rrtf's configs are."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from rrtf.options import SANDBOX_PREFIX, RolloutOptions, SandboxOptions, identity_fields, identity_of

# Settings that do not decide what a run produces (where it runs, how fast): they may change on a rerun.
# Every other field is part of the run's identity, the sandbox's limits included (rrtf.options.SandboxOptions).
_NOT_IDENTITY = {"output_dir", "concurrency", "timeout", "max_retries", "batch_size", "progress", "num_threads", "max_failed_calls",
                 *(f.name for f in fields(RolloutOptions))}  # where judging runs does not change a record


@dataclass
class DecontamSettings:
    """Thresholds of decontamination (docs/data_evol.md: how they were measured)."""

    ngram_size: int = field(default=8, metadata={"help": "Word n-gram length of the verbatim-overlap check."})
    ngram_threshold: float = field(default=0.5, metadata={
        "help": "Remove when this fraction of a benchmark text's word n-grams appear in the record."})
    near_threshold: float = field(default=0.48, metadata={
        "help": "Remove when the TF-IDF cosine to a benchmark task's statement (Snowball-stemmed content words and unordered "
                "word pairs; docs/data_evol.md) reaches this."})
    code_ngram_size: int = field(default=10, metadata={"help": "Token n-gram length for solutions (identifiers and numbers)."})
    code_min_tokens: int = field(default=16, metadata={"help": "Benchmark solutions shorter than this are too generic to match."})
    benchmarks: list[str] | None = field(default=None, metadata={
        "help": "Benchmarks to check against (registry names). Default: every registered benchmark (rrtf.datasets.benchmark_texts)."})


@dataclass
class EvolConfig(DecontamSettings, SandboxOptions, RolloutOptions):
    seeds: str = field(default="rrtf:tiny-tasks:train", metadata={
        "help": "Seed instructions: Code Alpaca .json/.jsonl (instruction, input, output), a .jsonl of Problem records, a "
                "datasets directory (save_to_disk), 'hf:NAME[:SPLIT]', or 'rrtf:DATASET[:SPLIT]'."})
    max_seeds: int | None = field(default=24, metadata={"help": "Use at most this many seeds (None: all)."})
    skip_bad_seeds: bool = field(default=False, metadata={"help": "Skip malformed seed records (counted) instead of stopping."})
    output_dir: str = field(default="outputs/evol-default", metadata={"help": "Where every stage writes; rerun to resume."})
    evolver: str = field(default="default", metadata={
        "help": "Model that evolves tasks: 'default' (the embedded tiny teacher), 'transformers:PATH', "
                "'openai-chat:BASE_URL#MODEL' or 'openai:BASE_URL#MODEL'."})
    teachers: list[str] = field(default_factory=lambda: ["default", "default-weak"], metadata={
        "help": "Models that answer (solution + tests), highest priority first; same forms as --evolver "
                "('default-weak' is the embedded teacher stopped early)."})
    judge: str | None = field(default=None, metadata={
        "help": "Optional LLM equality judge (WizardLM's 'no information gain' check); same forms as --evolver."})
    templates: str | None = field(default=None, metadata={"help": "Templates YAML (default: data_evol/templates/code_evol.yaml)."})
    rounds: int = field(default=2, metadata={"help": "Evolution rounds; a failed evolution's parent goes back to the pool."})
    methods: list[str] | None = field(default=None, metadata={"help": "Evolution methods to use (default: all in the templates)."})
    keep_seeds: bool = field(default=True, metadata={"help": "Seeds themselves are candidates too (answered and validated)."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of evolution."})
    answer_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature of the teachers' answers."})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "Token limit of an evolved task (default: 128 for the embedded teacher, 384 for other models)."})
    answer_max_new_tokens: int | None = field(default=None, metadata={
        "help": "Token limit of an answer, solution + tests (default: 192 for the embedded teacher, 512 for other models)."})
    min_words: int = field(default=3, metadata={"help": "Eliminate evolved tasks with fewer words."})
    max_words: int = field(default=600, metadata={"help": "Eliminate evolved tasks with more words."})
    sorry_max_words: int = field(default=80, metadata={"help": "An apology ('sorry', 'I cannot') shorter than this is a non-answer."})
    dedup_threshold: float = field(default=0.8, metadata={"help": "MinHash-LSH Jaccard threshold (word 3-gram shingles) of near duplicates."})
    dedup_num_perm: int = field(default=128, metadata={"help": "MinHash permutations."})
    min_tests: int = field(default=3, metadata={"help": "Drop a problem left with fewer validated tests."})
    max_tests: int = field(default=12, metadata={"help": "Keep at most this many tests per problem."})
    validate_runs: int = field(default=2, metadata={"help": "Runs of every solution on every test; a test whose result changes is flaky."})
    seed: int = 0
    concurrency: int = field(default=8, metadata={"help": "Requests in flight to a served model."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds per request attempt to a served model."})
    max_retries: int = field(default=3, metadata={"help": "Further attempts after a transient failure (backoff)."})
    max_failed_calls: int = field(default=8, metadata={"help": "Stop after this many failed calls in a row (finished work is kept)."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call of a local model."})
    num_threads: int | None = field(default=None, metadata={"help": "torch threads for a local model (default: all cores)."})
    progress: bool = True

    def __post_init__(self) -> None:
        embedded = ("default", "default-weak")  # the tiny teacher's answers are short; a real model's are not
        if self.max_new_tokens is None:
            self.max_new_tokens = 128 if self.evolver in embedded else 384
        if self.answer_max_new_tokens is None:
            self.answer_max_new_tokens = 192 if all(t in embedded for t in self.teachers) else 512
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.validate_runs < 2:
            raise ValueError(f"validate_runs must be >= 2 (flaky tests are found by running twice), got {self.validate_runs}")
        if not self.teachers:
            raise ValueError("teachers: give at least one")
        if not 0 < self.dedup_threshold <= 1:
            raise ValueError(f"dedup_threshold must be in (0, 1], got {self.dedup_threshold}")
        if self.min_tests < 1 or self.max_tests < self.min_tests:
            raise ValueError(f"need 1 <= min_tests <= max_tests, got {self.min_tests} and {self.max_tests}")
        if len(set(self.teachers)) != len(self.teachers):
            raise ValueError(f"teachers: each teacher once, got {self.teachers}")
        super().__post_init__()

    def identity(self, templates_tag: str) -> dict[str, Any]:
        return {**identity_of(self), "templates": templates_tag}


EvolConfig.IDENTITY_FIELDS = (frozenset(f.name for f in fields(EvolConfig) if not f.name.startswith(SANDBOX_PREFIX)) - _NOT_IDENTITY
                              | identity_fields(SandboxOptions))


@dataclass
class DecontamConfig(DecontamSettings):
    input: str = field(default="", metadata={"help": "Instruction set: .json / .jsonl / datasets directory / hf:NAME (any fields)."})
    output_dir: str = field(default="outputs/decontaminate", metadata={"help": "Writes kept.jsonl, removed.jsonl, stats.json."})
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError("decontaminate: --input is required (a .json / .jsonl file of instructions)")


def parse_args(config_class: type, argv: list[str]):
    from trl import TrlParser

    (config,) = TrlParser([config_class]).parse_args_and_config(args=argv)
    return config


__all__ = ["DecontamConfig", "DecontamSettings", "EvolConfig", "parse_args"]
