"""Decontamination: recall on planted benchmark copies and rewordings, false positives on clean seeds.

    python benchmarks/decontam_recall.py            # prints a table, writes benchmarks/results/decontam_recall.json

The index is what `python -m data_evol` uses (`BenchmarkIndex` over `rrtf.datasets.benchmark_texts()`),
plus, for measurement only, HumanEval+, MBPP+ and LeetCode read from data/ (or the shared data
folder, $RRTF_SHARED_DATA) when they are not registered yet. Plants, per benchmark problem (programmatic:
no LLM exists here to paraphrase):
  verbatim  the prompt inside an instruction wrapper;
  light     synonyms for ~30% of the common words, the function renamed;
  heavy     the docstring's prose only (code and examples dropped), synonyms for ~50%, sentences
            rotated, "Write a Python function that ..." framing (Magicoder issue #40's kind of copy).
Clean: Code Alpaca 2K and the later 4.5K set (instructions + inputs), and rrtf's tiny tasks.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from data_evol.config import DecontamSettings  # noqa: E402
from data_evol.decontam import BenchmarkIndex, contamination, prose  # noqa: E402
from rrtf.datasets import benchmark_texts, load_dataset  # noqa: E402
from sandbox.base.records import Problem  # noqa: E402

SHARED = Path(os.environ.get("RRTF_SHARED_DATA", "/work/shared/data"))
SYNONYMS = {
    "return": "give back", "returns": "gives back", "list": "array", "lists": "arrays", "given": "provided", "function": "routine",
    "number": "value", "numbers": "values", "string": "text", "strings": "texts", "find": "determine", "write": "create",
    "check": "verify", "integer": "whole number", "integers": "whole numbers", "element": "item", "elements": "items",
    "calculate": "compute", "count": "tally", "largest": "biggest", "smallest": "tiniest", "first": "initial", "each": "every",
    "contains": "includes", "sum": "total", "characters": "symbols", "empty": "blank", "input": "argument", "output": "result",
    "positive": "above-zero", "negative": "below-zero", "array": "list", "length": "size", "maximum": "max value",
    "minimum": "min value", "remove": "delete", "words": "terms", "word": "term", "letters": "chars",
}


def extra_benchmarks() -> list[tuple[str, Problem]]:
    """HumanEval+, MBPP+, LeetCode texts (prompt and solution), for benchmarks not registered yet."""
    out = []
    files = {"humaneval+": "evalplus/HumanEvalPlus.jsonl.gz", "mbpp+": "evalplus/MbppPlus.jsonl.gz",
             "leetcode": "leetcode/LeetCodeDataset-v0.3.1-test.jsonl.gz"}
    for name, rel in files.items():
        path = next((d / rel for d in (REPO / "data", SHARED) if (d / rel).exists()), None)
        if path is None:
            continue
        with gzip.open(path, "rt") as fh:
            for line in fh:
                r = json.loads(line)
                prompt = r.get("problem_description") or r.get("prompt") or ""
                solution = r.get("completion") or r.get("canonical_solution") or ""
                out.append((name, Problem(task_id=str(r["task_id"]), prompt=prompt, canonical_solution=solution, test_list=["assert True"])))
    return out


def _synonyms(text: str, rng: random.Random, p: float) -> str:
    return re.sub(r"[A-Za-z]+", lambda m: SYNONYMS.get(m.group(0).lower(), m.group(0)) if rng.random() < p else m.group(0), text)


def _prose(prompt: str) -> str:
    return prose(prompt) or prompt


def plants(name: str, p: Problem, rng: random.Random) -> dict[str, str]:
    renamed = p.prompt.replace(p.entry_point, "my_helper") if p.entry_point else p.prompt
    sentences = re.split(r"(?<=[.!?])\s+", _prose(p.prompt))
    rotated = " ".join(sentences[1:] + sentences[:1]) if len(sentences) > 1 else sentences[0]
    return {
        "verbatim": f"Solve the following problem.\n{p.prompt}\nAnswer with code only.",
        "light": _synonyms(renamed, rng, 0.3),
        "heavy": "Write a Python function that does the following. " + _synonyms(rotated, rng, 0.5),
    }


def clean_texts() -> dict[str, list[str]]:
    out = {}
    for fname in ("code_alpaca_2k.json", "new_codealpaca.json"):
        path = REPO / "data/codealpaca" / fname
        if not path.exists():
            path = SHARED / "codealpaca" / fname
        rows = json.loads(path.read_text())
        out[fname] = [r["instruction"] + ("\n" + r["input"] if r.get("input") else "") for r in rows]
    out["tiny-tasks"] = [p.prompt for split in ("warmup", "train", "heldout") for p in load_dataset(f"tiny-tasks:{split}").problems]
    return out


def main() -> None:
    t0 = time.time()
    registered = list(benchmark_texts())
    names = {n for n, _ in registered}
    extras = [(n, p) for n, p in extra_benchmarks() if n not in names]
    index = BenchmarkIndex(registered + extras)
    build_s = time.time() - t0
    rng = random.Random(0)
    planted: list[tuple[str, str, str, str]] = []  # (benchmark, task_id, level, text)
    by_bench: dict[str, list[Problem]] = {}
    for n, p in registered + extras:
        if not n.startswith("humanevalpack-") or n == "humanevalpack-python":
            by_bench.setdefault(n, []).append(p)
    for n, problems in by_bench.items():
        for p in rng.sample(problems, min(150, len(problems))):
            for level, text in plants(n, p, rng).items():
                planted.append((n, p.task_id, level, text))
    clean = clean_texts()
    all_texts = [t for *_, t in planted] + [t for ts in clean.values() for t in ts]
    combine = sys.argv[1] if len(sys.argv) > 1 else "cosine"
    t1 = time.time()
    near = index.near_scores(all_texts, combine=combine)
    scores = [index.scores(t, near=nr) for t, nr in zip(all_texts, near)]
    scan_s = time.time() - t1

    class S:  # thresholds under test
        def __init__(self, g, n):
            self.ngram_threshold, self.near_threshold = g, n

    grid = [(g, n) for g in (0.3, 0.4, 0.5, 0.6) for n in (0.4, 0.5, 0.6, 0.7, 0.8)]
    results = []
    for g, n in grid:
        row = {"ngram_threshold": g, "near_threshold": n}
        flags = [contamination(s, S(g, n)) for s in scores]
        k = 0
        for level in ("verbatim", "light", "heavy"):
            idx = [i for i, pl in enumerate(planted) if pl[2] == level]
            row[f"recall_{level}"] = round(sum(flags[i] is not None for i in idx) / len(idx), 4)
        k = len(planted)
        for cname, texts in clean.items():
            row[f"fp_{cname}"] = round(sum(f is not None for f in flags[k: k + len(texts)]) / len(texts), 4)
            k += len(texts)
        results.append(row)
    per_bench = {}
    defaults = DecontamSettings()
    chosen = S(defaults.ngram_threshold, defaults.near_threshold)
    for n in by_bench:
        idx = [i for i, pl in enumerate(planted) if pl[0] == n]
        per_bench[n] = {lv: round(sum(contamination(scores[i], chosen) is not None for i in idx if planted[i][2] == lv)
                                  / max(1, sum(planted[i][2] == lv for i in idx)), 3) for lv in ("verbatim", "light", "heavy")}
    fp_examples = []
    k = len(planted)
    for cname, texts in clean.items():
        for t, s in zip(texts, scores[k: k + len(texts)]):
            m = contamination(s, chosen)
            if m is not None:
                fp_examples.append({"set": cname, "text": t[:160], "benchmark": m.benchmark, "task": m.benchmark_task_id,
                                    "method": m.method, "score": m.score})
        k += len(texts)
    print(f"near score: {combine}")
    print(f"index: {len(index.prompts.entries)} benchmark prompts ({dict(index.benchmarks)}), built in {build_s:.1f} s; "
          f"{len(all_texts)} texts scanned in {scan_s:.1f} s")
    cols = list(results[0])
    print(" | ".join(cols))
    for row in results:
        print(" | ".join(str(row[c]) for c in cols))
    print(f"per benchmark at ngram {chosen.ngram_threshold} / near {chosen.near_threshold}:", json.dumps(per_bench))
    print(f"flagged clean texts at the defaults: {len(fp_examples)}")
    for ex in fp_examples[:15]:
        print("  ", ex)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores", "load": load,
           "near_combine": combine, "index_prompts": len(index.prompts.entries), "benchmarks": dict(index.benchmarks), "planted": len(planted),
           "clean": {k: len(v) for k, v in clean.items()}, "grid": results,
           "chosen": {"ngram_threshold": chosen.ngram_threshold, "near_threshold": chosen.near_threshold}, "per_benchmark_at_chosen": per_bench,
           "flagged_clean": len(fp_examples), "flagged_clean_examples": fp_examples[:150], "index_build_s": round(build_s, 1), "scan_s": round(scan_s, 1)}
    (REPO / "benchmarks/results").mkdir(parents=True, exist_ok=True)
    name = "decontam_recall" if combine == "cosine" else f"decontam_recall_{combine}"
    (REPO / f"benchmarks/results/{name}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
