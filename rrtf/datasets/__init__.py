"""The dataset registry: every benchmark and training set, by name, with the tasks it supports.

    from rrtf.datasets import load_dataset, DATASETS
    ds = load_dataset("mbpp")                 # default split and task
    ds = load_dataset("tiny-tasks:heldout")   # NAME:SPLIT
    ds = load_dataset("humaneval:synthesize") # NAME:TASK (qualifiers may come in any order)
    ds = load_dataset("data/x.jsonl")         # a JSONL file of Problem records
    ds.problems, ds.task, ds.strategy         # the strategy (rrtf.prompts) asks and judges the task

A dataset is one module in this package registering one (or a family of) `DatasetSpec`; the loader
runs only when the dataset is used, so importing the registry reads no data and imports no torch.
`benchmark_texts()` yields every registered benchmark's prompts and solutions from this one place
(data_evol's decontamination reads it).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rrtf.registry import Registry
from sandbox.base.records import Problem
from sandbox.base.store import read_records
from sandbox.registry import problem_from_record


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[[str], list[Problem]]  # split -> problems
    splits: tuple[str, ...]
    default_split: str
    tasks: dict[str, str] = field(default_factory=lambda: {"synthesize": "instruct"})  # task -> strategy; first is default
    benchmark: bool = True  # a public benchmark: training data is decontaminated against it
    description: str = ""
    train_split: str | None = None  # what a training run trains on when no split is given (None: default_split)
    eval_split: str | None = None  # what a training run evaluates on when no eval set is given (None: none)
    # (split, task) -> problems, for datasets whose problems differ by task (HumanEvalPack's fix and
    # explain continue from the declaration, not the documented prompt). None: load(split) for every task.
    load_task: Callable[[str, str], list[Problem]] | None = None
    # task_id -> the base problem it is a variant of (ReCode's perturbed copies): max_problems counts bases.
    base_task: Callable[[str], str] | None = None
    # task_id -> (perturbation, seed), or None for the nominal problem: the dataset reports ReCode's
    # robustness metrics (rrtf.evaluate.robustness) over the variants of each base problem.
    variant: Callable[[str], tuple[str, int] | None] | None = None
    # task_id -> a category (LeetCode's difficulty): pass@k is also reported per category.
    category: Callable[[str], str] | None = None
    # (name, problems, num_samples, ks, greedy, records) -> the dataset's own scores, merged into
    # DatasetResult.metrics (classification accuracy/F1, AATK's valid and insecure rates).
    scores: Callable[..., dict] | None = None

    @property
    def default_task(self) -> str:
        return next(iter(self.tasks))


@dataclass
class LoadedDataset:
    name: str  # as asked for, e.g. "mbpp:validation"
    problems: list[Problem]
    split: str
    task: str
    strategy: str  # rrtf.prompts strategy name
    spec: DatasetSpec | None = None  # None for a JSONL file


class DatasetUnavailable(ValueError):
    """The dataset exists but cannot be judged here (e.g. the sandbox lacks its language): an
    evaluation reports it and goes on with the other datasets."""


logger = logging.getLogger("rrtf.datasets")
DATASETS: Registry[DatasetSpec] = Registry("dataset", package="rrtf.datasets")
# Short names users type that stand for a qualified dataset name.
ALIASES = {"heldout": "tiny-tasks:heldout"}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.default_split not in spec.splits:
        raise ValueError(f"dataset {spec.name}: default split {spec.default_split!r} is not one of {spec.splits}")
    return DATASETS.add(spec.name, spec)


def is_file_name(name: str) -> bool:
    return name.endswith((".jsonl", ".jsonl.gz", ".json")) or Path(name).is_file()


def parse_name(name: str) -> tuple[DatasetSpec, str, str]:
    """(spec, split, task) of "NAME[:QUALIFIER]...", each qualifier a split or a task of NAME."""
    name = ALIASES.get(name, name)
    base, *qualifiers = name.split(":")
    spec = DATASETS.get(base) if base in DATASETS else None
    if spec is None:
        raise ValueError(f"unknown dataset {base!r}; known: {', '.join(DATASETS.names())} "
                         f"(or a path to a .jsonl file of Problem records; `python -m rrtf.evaluate --list` lists all)")
    split, task = spec.default_split, spec.default_task
    for q in qualifiers:
        if q in spec.splits:
            split = q
        elif q in spec.tasks:
            task = q
        else:
            raise ValueError(f"dataset {name!r}: {q!r} is neither a split ({', '.join(spec.splits)}) "
                             f"nor a task ({', '.join(spec.tasks)}) of {base}")
    return spec, split, task


def load_dataset(name: str, *, split: str | None = None, task: str | None = None) -> LoadedDataset:
    """A registered dataset by (qualified) name, or a JSONL file of Problem records."""
    if is_file_name(name) and ":" not in Path(name).name:
        problems = read_records(name, problem_from_record)
        strategy = "continue" if problems and all(p.code_prefix for p in problems) else "instruct"
        return LoadedDataset(name, problems, split or "", task or "synthesize", strategy)
    spec, parsed_split, parsed_task = parse_name(name)
    split, task = split or parsed_split, task or parsed_task
    if split not in spec.splits:
        raise ValueError(f"dataset {spec.name} has no split {split!r}; known: {', '.join(spec.splits)}")
    if task not in spec.tasks:
        raise ValueError(f"dataset {spec.name} has no task {task!r}; known: {', '.join(spec.tasks)}")
    problems = spec.load_task(split, task) if spec.load_task else spec.load(split)
    return LoadedDataset(name, problems, split, task, spec.tasks[task], spec)


def spec_of(name: str) -> DatasetSpec | None:
    """The registered spec behind a (qualified) dataset name; None for a file or an unknown name."""
    if is_file_name(name) and ":" not in Path(name).name:
        return None
    base = ALIASES.get(name, name).split(":")[0]
    return DATASETS.get(base) if base in DATASETS else None


def limit_problems(problems: list[Problem], limit: int | None, spec: DatasetSpec | None = None) -> list[Problem]:
    """The first `limit` problems -- counted in base problems when the dataset has variants, so a
    ReCode subset keeps every perturbed copy of the problems it keeps."""
    if limit is None:
        return list(problems)
    if spec is None or spec.base_task is None:
        return list(problems[:limit])
    keep: dict[str, None] = {}
    for p in problems:
        if len(keep) >= limit:
            break
        keep.setdefault(spec.base_task(p.task_id))
    return [p for p in problems if spec.base_task(p.task_id) in keep]


def task_table() -> list[tuple[str, str, str, str]]:
    """(dataset, task, strategy, description) for every registered dataset and task: `--list`."""
    return [(name, task, strategy, spec.description) for name, spec in DATASETS.items() for task, strategy in spec.tasks.items()]


def benchmark_texts() -> Iterator[tuple[str, Problem]]:
    """(dataset name, problem) for every problem of every registered benchmark, each split."""
    for name, spec in DATASETS.items():
        if spec.benchmark:
            for split in spec.splits:
                try:
                    problems = spec.load(split)
                except DatasetUnavailable as exc:  # e.g. a language this sandbox lacks: its texts are not readable as problems
                    logger.warning("benchmark texts: skipping %s: %s", name, exc)
                    continue
                for problem in problems:
                    yield name, problem


__all__ = ["ALIASES", "DATASETS", "DatasetSpec", "DatasetUnavailable", "LoadedDataset", "benchmark_texts", "is_file_name",
           "limit_problems", "load_dataset", "parse_name", "register", "spec_of", "task_table"]
