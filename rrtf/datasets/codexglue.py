"""CodeXGLUE's code-comprehension classification tasks as Astraios asks them of a generative model:
clone detection on BigCloneBench (are two Java functions semantically the same?) and defect detection on
Devign (is a C function vulnerable?). A Problem per example: `prompt` the question (`CLONE_QUESTION`,
`DEFECT_QUESTION`), `canonical_solution` the gold label "yes"/"no"; the strategy parses the answer
(rrtf.prompts.strategies.classify) and it is judged by label (rrtf.evaluate.static_judge); reported:
accuracy, precision, recall and F1 of "yes" (rrtf.evaluate.static_scores.label_scores).

The data is not shipped: BigCloneBench's files (`dataset/data.jsonl`, `test.txt`, ...) are absent from the
snapshot of microsoft/CodeXGLUE this machine can fetch (its largest files are not carried), and Devign's
`function.json` is on Google Drive; neither is reachable from this machine
(docs/evaluation.md). Put them under `data/codexglue/`, or in a folder named by `RRTF_CODEXGLUE_DIR`
(data/codexglue/README.md), and the datasets load:

- `bigclonebench/data.jsonl` (`func`, `idx`) and `bigclonebench/test.txt` (`idx1<TAB>idx2<TAB>label`),
  CodeXGLUE's Clone-detection-BigCloneBench/dataset files as they are;
- `devign/test.jsonl` (`func`, `target`, `idx`), written by CodeXGLUE's Defect-detection
  `dataset/preprocess.py` from Devign's `function.json`.

Splits: "astraios" (the default), the class-stratified 2,000 test examples Astraios scores
(`astraios_pick`); "test", the whole test split in file order (`--max_problems N` takes the first N).
CodeXGLUE's train and valid splits are not registered: nothing here trains on them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rrtf.datasets import DatasetSpec, DatasetUnavailable, register
from rrtf.paths import DATA_DIR
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

T = TypeVar("T")
ENV_DIR = "RRTF_CODEXGLUE_DIR"  # where the CodeXGLUE files are when not under data/codexglue (they are not shipped)


def root() -> Path:
    """The folder holding bigclonebench/ and devign/: $RRTF_CODEXGLUE_DIR, else data/codexglue (read at load time)."""
    return Path(os.environ.get(ENV_DIR) or DATA_DIR / "codexglue")


# Astraios' questions (bigcode-project/astraios, the clone_detection / defect_detection harness tasks its
# evaluation/*.sh run; the defect wording is visible in its outputs/defect_detection generations): the
# bare question, answered after "Answer:".
CLONE_QUESTION = ("Question: Code1: {func1}.\nCode2: {func2}.\n"
                  "Is there a clone relation between the Code1 and Code2, and respond to YES or NO.\n\nAnswer:")
DEFECT_QUESTION = "Question: {func}\nIs there a defect in the Code, and respond to YES or NO.\n\nAnswer:"
# Astraios scores a class-stratified sample of each test set (its notebook's `summary_table_sampling`):
# Devign 919 defective + 1,081 clean; BigCloneBench 274 clones + 1,726 non-clones, drawn from the 1,000 +
# 1,726 pairs its harness task had drawn and shuffled first. The "astraios" split redraws them the same way.
ASTRAIOS_SAMPLE = {"devign": [(919, 1081)], "bigclonebench": [(1000, 1726), (274, 1726)]}
SPLITS = ("astraios", "test")  # Astraios' sample (the default), the whole test split


def _missing(what: str, files: list[str]) -> DatasetUnavailable:
    return DatasetUnavailable(f"{what} data not found: put {', '.join(str(root() / f) for f in files)} there, or point "
                              f"{ENV_DIR} at a folder holding them (data/codexglue/README.md says how to make them); "
                              "not shipped: not obtainable on this machine")


def astraios_pick(items: list[T], positive: Callable[[T], bool], source: str, seed: int = 0) -> list[T]:
    """The test examples Astraios scores: per stage, `random.seed(seed)`, then `random.sample` of the
    negatives' positions, then of the positives' (Python's random, as its `sampling`), negatives then
    positives shuffled as `datasets.Dataset.shuffle(seed)` does (numpy's default_rng permutation).
    `items` must be in the order of Hugging Face's test split (CodeXGLUE's file order)."""
    import random

    import numpy as np

    for n_pos, n_neg in ASTRAIOS_SAMPLE[source]:
        random.seed(seed)
        neg = [x for x in items if not positive(x)]
        pos = [x for x in items if positive(x)]
        if len(neg) < n_neg or len(pos) < n_pos:
            raise ValueError(f"{source}: Astraios' sample needs {n_pos} positives and {n_neg} negatives, the test split has {len(pos)} and {len(neg)}")
        chosen = [neg[i] for i in random.sample(range(len(neg)), n_neg)] + [pos[i] for i in random.sample(range(len(pos)), n_pos)]
        items = [chosen[i] for i in np.random.default_rng(seed).permutation(len(chosen))]
    return items


def astraios_sample(problems: list[Problem], source: str, seed: int = 0) -> list[Problem]:
    return astraios_pick(problems, lambda p: p.canonical_solution == "yes", source, seed)


def load_bigclonebench(split: str) -> list[Problem]:
    funcs_file, pairs_file = root() / "bigclonebench" / "data.jsonl", root() / "bigclonebench" / "test.txt"
    if not funcs_file.is_file() or not pairs_file.is_file():
        raise _missing("BigCloneBench", ["bigclonebench/data.jsonl", "bigclonebench/test.txt"])
    funcs = {str(rec["idx"]): rec["func"] for _, rec in iter_jsonl(funcs_file)}
    pairs = []
    for n, line in enumerate(pairs_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in {"0", "1"} or parts[0] not in funcs or parts[1] not in funcs:
            raise RecordError(f"{pairs_file}:{n}", "pair", f"expected 'idx1 idx2 0|1' of known functions, got {line!r}")
        pairs.append((parts[0], parts[1], parts[2] == "1"))
    if split == "astraios":  # picked before the prompts are built: the test split has 415,416 pairs
        pairs = astraios_pick(pairs, lambda pair: pair[2], "bigclonebench")
    return [label_problem(f"BigCloneBench/{a}-{b}", CLONE_QUESTION.format(func1=funcs[a], func2=funcs[b]), positive, "java",
                          "bigclonebench", split) for a, b, positive in pairs]


def load_devign(split: str) -> list[Problem]:
    path = root() / "devign" / "test.jsonl"
    if not path.is_file():
        raise _missing("Devign", ["devign/test.jsonl"])
    problems = []
    for n, (where, rec) in enumerate(iter_jsonl(path)):
        if not isinstance(rec.get("func"), str) or rec.get("target") not in (0, 1):
            raise RecordError(where, "func/target", "expected a function and a 0/1 target")
        problems.append(label_problem(f"Devign/{rec.get('idx', n)}", DEFECT_QUESTION.format(func=rec["func"]),
                                      rec["target"] == 1, "c", "devign", split))
    return astraios_sample(problems, "devign") if split == "astraios" else problems


def label_problem(task_id: str, question: str, positive: bool, language: str, source: str, split: str) -> Problem:
    gold = "yes" if positive else "no"
    # `test` is only a marker (judged by label, not run): it names the gold label for a reader of the record.
    return Problem(task_id=task_id, prompt=question, language=language, test=f"label: {gold}", canonical_solution=gold,
                   source=source, split=split)


def scores(name, problems, num_samples, ks, greedy, records) -> dict[str, Any]:
    from rrtf.evaluate.static_scores import label_scores

    return label_scores(name, problems, num_samples, greedy, records)


register(DatasetSpec(
    name="bigclonebench", load=load_bigclonebench, splits=SPLITS, default_split="astraios",
    tasks={"classify": "clone-detect"}, scores=scores,
    description="CodeXGLUE clone detection (BigCloneBench, Java pairs), asked yes/no as Astraios; accuracy, F1 (data not shipped: docs/evaluation.md)",
))
register(DatasetSpec(
    name="devign", load=load_devign, splits=SPLITS, default_split="astraios",
    tasks={"classify": "defect-detect"}, scores=scores,
    description="CodeXGLUE defect detection (Devign, C functions), asked yes/no as Astraios; accuracy, F1 (data not shipped: docs/evaluation.md)",
))
