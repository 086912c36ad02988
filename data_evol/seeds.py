"""Seed instructions: Code Alpaca JSON / JSONL (`instruction, input, output`), JSONL of Problem
records, a `datasets` dataset (a `save_to_disk` directory, `hf:NAME[:SPLIT]`, or a Dataset object
from Python), or a registered rrtf dataset (`rrtf:tiny-tasks:train`).

A bad record is an error naming the file, the line (the element's line for a JSON array) and the
field; with `skip_bad=True` it is a logged skip, counted in stats.json instead.
"""
from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from data_evol.records import Instruction, text_id
from sandbox.base.errors import RecordError
from sandbox.registry import problem_from_record

logger = logging.getLogger("data_evol.seeds")
FORMATS = ("Code Alpaca records (`instruction`, optional `input` and `output`) or Problem records (`task_id`, `prompt` and tests)")


def _json_array(path: Path) -> Iterator[tuple[str, Any]]:
    """Elements of a JSON array with the line each starts on (json.load alone would lose them)."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "[":
        raise RecordError(f"{path}:{text.count(chr(10), 0, i) + 1}", "", "expected a JSON array of records ([...]); "
                          "for one record per line use a .jsonl file")
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] != "]":
        line = text.count("\n", 0, i) + 1
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{exc.lineno}", "", f"malformed JSON ({exc.msg} at column {exc.colno})") from None
        yield f"{path}:{line}", value
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
        elif i < len(text) and text[i] != "]":
            raise RecordError(f"{path}:{text.count(chr(10), 0, i) + 1}", "", "malformed JSON (expected ',' or ']' between records)")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, RecordError(where, "", f"not valid UTF-8 (byte {exc.start})")
                continue
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                msg = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield where, RecordError(where, "", f"malformed JSON ({msg})")


def _rows(source: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(source, (str, Path)):  # a datasets.Dataset or any iterable of dicts
        name = getattr(source, "info", None) and getattr(source.info, "dataset_name", None) or "dataset"
        for i, row in enumerate(source):
            yield f"{name}[{i}]", row
        return
    text = str(source)
    if text.startswith("rrtf:"):
        from rrtf.datasets import load_dataset

        ds = load_dataset(text[5:])
        for i, problem in enumerate(ds.problems):
            yield f"{ds.name}[{i}]", problem.to_record()
        return
    if text.startswith("hf:"):
        import datasets

        name, _, split = text[3:].partition(":")
        for i, row in enumerate(datasets.load_dataset(name, split=split or "train")):
            yield f"{name}[{i}]", row
        return
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"seeds {text}: no such file or directory (give a .json / .jsonl file, a datasets directory, "
                                "'hf:NAME[:SPLIT]' or 'rrtf:DATASET[:SPLIT]')")
    if path.is_dir():
        import datasets

        for i, row in enumerate(datasets.load_from_disk(str(path))):
            yield f"{path}[{i}]", row
    else:
        rows = 0
        for row in _jsonl(path) if path.name.endswith((".jsonl", ".jsonl.gz")) else _json_array(path):
            rows += 1
            yield row
        if not rows:  # the rule of every command's input files (sandbox.base.store.iter_jsonl)
            raise RecordError(str(path), "", "no records: the input file is empty")


def _string(rec: dict, where: str, field: str, required: bool = False) -> str:
    value = rec.get(field)
    if value is None and not required:
        return ""
    if field not in rec:
        raise RecordError(where, field, "missing field")
    if not isinstance(value, str):
        raise RecordError(where, field, f"expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(where, field, "empty")
    return value


def parse_seed(rec: Any, where: str) -> Instruction:
    """One seed record (Code Alpaca or Problem) as an Instruction, or a RecordError naming the field."""
    if not isinstance(rec, dict):
        raise RecordError(where, "", f"expected a JSON object, got {type(rec).__name__}")
    if "task_id" in rec:
        problem = problem_from_record(rec, where=where)
        if not problem.prompt.strip():
            raise RecordError(where, "prompt", "empty")
        solution = problem.code_prefix + problem.canonical_solution if problem.canonical_solution else ""
        return _checked(Instruction(id=problem.task_id, seed_id=problem.task_id, instruction=problem.prompt.strip(), origin=where,
                                    reference_solution=solution, reference_tests=list(problem.test_list),
                                    entry_point=problem.entry_point), where)
    if "instruction" not in rec:
        raise RecordError(where, "instruction", f"missing field (expected {FORMATS})")
    instruction = _string(rec, where, "instruction", required=True).strip()
    extra = _string(rec, where, "input").strip()
    _string(rec, where, "output")  # type-checked: a seed's answer is not used (teachers answer), but a wrong type is a bad file
    text = f"{instruction}\n{extra}" if extra else instruction
    sid = text_id(text)
    return _checked(Instruction(id=sid, seed_id=sid, instruction=text, origin=where), where)


def _checked(seed: Instruction, where: str) -> Instruction:
    """The seed as every later stage will read it back (text limits included), checked here: an error names the
    input's file and line -- not the output dir's copy -- and --skip_bad_seeds can skip it."""
    return Instruction.from_record(seed.to_record(), where=where)


def load_seeds(source: Any, *, max_seeds: int | None = None, skip_bad: bool = False) -> tuple[list[Instruction], dict[str, int]]:
    """Seeds in source order without duplicate ids; counts of what was read, skipped and why."""
    seeds: list[Instruction] = []
    seen: set[str] = set()
    counts = {"read": 0, "bad": 0, "duplicate": 0}
    for where, rec in _rows(source):
        if max_seeds is not None and len(seeds) >= max_seeds:
            break
        counts["read"] += 1
        try:
            if isinstance(rec, RecordError):
                raise rec
            seed = parse_seed(rec, where)
        except RecordError as exc:
            if not skip_bad:
                raise RecordError(exc.where, exc.field, exc.message + " (--skip_bad_seeds skips bad records, counted)") from None
            counts["bad"] += 1
            logger.warning("skipped a bad seed: %s", exc)
            continue
        if seed.id in seen:
            counts["duplicate"] += 1
            continue
        seen.add(seed.id)
        seeds.append(seed)
    if not seeds:
        raise ValueError(f"seeds {source}: no usable seed records (expected {FORMATS})")
    return seeds, counts


def iter_instruction_texts(source: Any) -> Iterable[tuple[str, dict]]:
    """(where, record) of any instruction file, for `python -m data_evol decontaminate`."""
    for where, rec in _rows(source):
        if isinstance(rec, RecordError):
            raise rec
        if not isinstance(rec, dict):
            raise RecordError(where, "", f"expected a JSON object, got {type(rec).__name__}")
        yield where, rec


__all__ = ["FORMATS", "iter_instruction_texts", "load_seeds", "parse_seed"]
