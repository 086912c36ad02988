"""Decontamination: recall on planted benchmark copies and rewordings, false positives on clean seeds.

    python benchmarks/decontam_recall.py            # prints tables, writes benchmarks/results/decontam_recall.json

The index is what `python -m data_evol` uses (`BenchmarkIndex` over `rrtf.datasets.benchmark_texts()`).
Two kinds of reworded copies (no LLM exists here to paraphrase):

- generated, per sampled problem of each benchmark (kinds below), split in two halves by task: *tune*
  (thresholds were chosen on it) and *held out*;
- hand-written: benchmarks/data/decontam_rewordings.json, ~40 rewordings of real tasks written for this
  project in a style the generator does not produce; never used to choose thresholds.

Clean sets: Code Alpaca 2K (tune), the Code Alpaca 4.5K set and its 20 seed tasks (held out), rrtf's
tiny tasks. "Flagged" clean records are an upper bound on false positives: Code Alpaca holds MBPP tasks.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from data_evol.config import DecontamSettings  # noqa: E402
from data_evol.decontam import BenchmarkIndex, contamination  # noqa: E402
from data_evol.decontam_text import statement  # noqa: E402
from rrtf.datasets import benchmark_texts, load_dataset  # noqa: E402
from sandbox.base.records import Problem  # noqa: E402

HAND = REPO / "benchmarks/data/decontam_rewordings.json"
# HumanEval+ and the HumanEvalPack languages repeat HumanEval's tasks: C++ stands for the packs (comments, not docstrings).
PLANTED = ("humaneval", "humanevalpack-cpp", "mbpp", "mbpp+", "leetcode", "aatk")
PER_BENCHMARK = 120
KINDS = ("verbatim", "synonyms", "inflection", "order", "framing", "heavy")
SYNONYMS = {
    "return": "give back", "returns": "gives back", "list": "array", "lists": "arrays", "given": "provided", "function": "routine",
    "number": "value", "numbers": "values", "string": "text", "strings": "texts", "find": "determine", "write": "create",
    "check": "verify", "integer": "whole number", "integers": "whole numbers", "element": "item", "elements": "items",
    "calculate": "compute", "count": "tally", "largest": "biggest", "smallest": "tiniest", "first": "initial", "each": "every",
    "contains": "includes", "sum": "total", "characters": "symbols", "empty": "blank", "input": "argument", "output": "result",
    "positive": "above-zero", "negative": "below-zero", "array": "list", "length": "size", "maximum": "max value",
    "minimum": "min value", "remove": "delete", "words": "terms", "word": "term", "letters": "chars",
}
FRAMES = ("Implement code that will", "Can you create a routine which will", "I need a Python method to", "Please code something to")


def _synonyms(text: str, rng: random.Random, p: float) -> str:
    return re.sub(r"[A-Za-z]+", lambda m: SYNONYMS.get(m.group(0).lower(), m.group(0)) if rng.random() < p else m.group(0), text)


def _inflect(word: str) -> str:
    """identifies -> identify, finds -> find, number -> numbers, sorted -> sorting: the forms a rewording changes."""
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ed") and len(word) > 5:
        return word[:-2] + "ing"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def _order(text: str) -> str:
    """"sorted and rotated" -> "rotated and sorted", and the last phrase moved to the front ("in a list, find ...")."""
    text = re.sub(r"\b([a-z]+) (and|or) ([a-z]+)\b", r"\3 \2 \1", text.rstrip(". "))
    m = re.search(r" (in|from|of|with|using|within|for) ", text[len(text) // 3:])
    if not m:
        return text + "."
    cut = len(text) // 3 + m.start()
    return f"{text[cut + 1:][0].upper()}{text[cut + 2:]}, {text[0].lower()}{text[1:cut]}."


def plants(p: Problem, rng: random.Random) -> dict[str, str]:
    task = statement(p.prompt) or p.prompt
    # The function renamed where that leaves the statement's words alone (an MBPP+ task whose function is `count`).
    ep = p.entry_point
    renamed = re.sub(rf"\b{re.escape(ep)}\b", "my_helper", p.prompt) if ep and not re.search(rf"\b{re.escape(ep)}\b", task) else p.prompt
    sentences = re.split(r"(?<=[.!?])\s+", task)
    rotated = " ".join(sentences[1:] + sentences[:1]) if len(sentences) > 1 else sentences[0]
    framed = re.sub(r"^\s*write an? (python )?(function|program)( to| that)?\s*", "", task, flags=re.I)
    return {
        "verbatim": f"Solve the following problem.\n{p.prompt}\nAnswer with code only.",
        "synonyms": _synonyms(renamed, rng, 0.3),
        "inflection": re.sub(r"[A-Za-z]{4,}", lambda m: _inflect(m.group(0)) if rng.random() < 0.5 else m.group(0), task),
        "order": _order(task),
        "framing": f"{rng.choice(FRAMES)} {framed[:1].lower()}{framed[1:]}",
        "heavy": "Write a Python function that does the following. " + _synonyms(rotated, rng, 0.5),
    }


def clean_texts() -> dict[str, list[str]]:
    base = REPO / "data/codealpaca"
    out = {}
    for fname in ("code_alpaca_2k.json", "new_codealpaca.json"):
        out[fname] = [r["instruction"] + ("\n" + r["input"] if r.get("input") else "") for r in json.loads((base / fname).read_text())]
    seeds = [json.loads(x) for x in (base / "codealpaca_seed_tasks.jsonl").read_text().splitlines() if x.strip()]
    out["codealpaca_seed_tasks"] = [r["instruction"] + "\n" + r["instances"][0]["input"] for r in seeds]
    out["tiny-tasks"] = [p.prompt for split in ("warmup", "train", "heldout") for p in load_dataset(f"tiny-tasks:{split}").problems]
    return out


def same_task(a: str, b: str) -> bool:
    """HumanEval/0, CPP/0 and Python/0 are one task; MBPP/2 and Mbpp/2 too."""
    return a.split("/")[-1].lower() == b.split("/")[-1].lower()


def rate(flags: list) -> float:
    return round(sum(f is not None for f in flags) / max(1, len(flags)), 4)


def main() -> None:
    t0 = time.time()
    problems = list(benchmark_texts())
    index = BenchmarkIndex(problems)
    build_s = time.time() - t0
    rng = random.Random(0)
    planted = []  # (benchmark, task_id, kind, half, text)
    for name in PLANTED:
        pool = [p for n, p in problems if n == name]
        for i, p in enumerate(rng.sample(pool, min(PER_BENCHMARK, len(pool)))):
            for kind, text in plants(p, rng).items():
                planted.append((name, p.task_id, kind, "tune" if i % 2 == 0 else "held_out", text))
    hand = json.loads(HAND.read_text())["rewordings"]
    clean = clean_texts()
    texts = [x[-1] for x in planted] + [h["text"] for h in hand] + [t for ts in clean.values() for t in ts]
    t1 = time.time()
    near = index.near_scores(texts)
    scores = [index.scores(t, near=nr) for t, nr in zip(texts, near)]
    scan_s = time.time() - t1
    n_pl, n_hand = len(planted), len(hand)
    s_pl, s_hand, s_clean = scores[:n_pl], scores[n_pl: n_pl + n_hand], scores[n_pl + n_hand:]
    clean_scores, k = {}, 0
    for cname, ts in clean.items():
        clean_scores[cname] = s_clean[k: k + len(ts)]
        k += len(ts)
    defaults = DecontamSettings()

    def at(near_threshold: float) -> DecontamSettings:
        return DecontamSettings(ngram_threshold=defaults.ngram_threshold, near_threshold=near_threshold)

    grid = []
    for th in [round(0.30 + 0.02 * i, 2) for i in range(21)]:
        s = at(th)
        row = {"near_threshold": th}
        for half in ("tune", "held_out"):
            light = [contamination(sc, s) for pl, sc in zip(planted, s_pl) if pl[3] == half and pl[2] not in ("verbatim", "heavy")]
            row[f"light_{half}"] = rate(light)
            row[f"heavy_{half}"] = rate([contamination(sc, s) for pl, sc in zip(planted, s_pl) if pl[3] == half and pl[2] == "heavy"])
        row["hand_written"] = rate([contamination(sc, s) for sc in s_hand])
        for cname, sc in clean_scores.items():
            row[f"fp_{cname}"] = rate([contamination(x, s) for x in sc])
        grid.append(row)
    # The rule the default was chosen by: the lowest threshold that flags <= 2% of Code Alpaca 2K (tune half only).
    suggested = min((r["near_threshold"] for r in grid if r["fp_code_alpaca_2k.json"] <= 0.02), default=None)

    per_bench: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    misses = []
    for half in ("tune", "held_out"):
        for name in PLANTED:
            for kind in KINDS:
                idx = [i for i, pl in enumerate(planted) if pl[0] == name and pl[2] == kind and pl[3] == half]
                flags = [contamination(s_pl[i], defaults) for i in idx]
                per_bench[half].setdefault(name, {})[kind] = rate(flags)
                misses += [{"benchmark": name, "task": planted[i][1], "kind": kind, "half": half, "text": planted[i][4][:200],
                            "best_near": next((m.score for m in s_pl[i] if m.method == "near"), 0.0)}
                           for i, f in zip(idx, flags) if f is None and kind != "heavy"]
    hand_rows = []
    for h, sc in zip(hand, s_hand):
        hit = contamination(sc, defaults)
        best = next((m for m in sc if m.method == "near"), None)
        hand_rows.append({**h, "caught": hit is not None, "right_task": hit is not None and same_task(hit.benchmark_task_id, h["task_id"]),
                          "near": best.score if best else 0.0, "near_task": best.benchmark_task_id if best else ""})
    hand_by: dict[str, dict[str, float]] = {"kind": {}, "benchmark": {}}
    for key in ("kind", "benchmark"):
        for v in sorted({r[key] for r in hand_rows}):
            rows = [r for r in hand_rows if r[key] == v]
            hand_by[key][v] = round(sum(r["caught"] for r in rows) / len(rows), 3)
    fp_examples = [{"set": cname, "text": t[:160], "benchmark": m.benchmark, "task": m.benchmark_task_id, "method": m.method, "score": m.score}
                   for cname, ts in clean.items() for t, sc in zip(ts, clean_scores[cname]) if (m := contamination(sc, defaults))]

    print(f"index: {len(index.statements)} task statements, {len(index.prompts.entries)} prompt texts ({dict(index.benchmarks)}), "
          f"built in {build_s:.1f} s; {len(texts)} texts scanned in {scan_s:.1f} s")
    cols = list(grid[0])
    print(" | ".join(cols))
    for row in grid:
        print(" | ".join(str(row[c]) for c in cols))
    print(f"suggested near threshold (Code Alpaca 2K flagged <= 2%): {suggested}; default: {defaults.near_threshold}")
    for half in ("tune", "held_out"):
        print(f"\nrecall per benchmark and kind at the defaults, {half} half:")
        print("benchmark | " + " | ".join(KINDS))
        for name, row in per_bench[half].items():
            print(f"{name} | " + " | ".join(str(row[k]) for k in KINDS))
    caught = sum(r["caught"] for r in hand_rows)
    print(f"\nhand-written rewordings: {caught}/{len(hand_rows)} caught ({sum(r['right_task'] for r in hand_rows)} as the right task); "
          f"by kind {hand_by['kind']}; by benchmark {hand_by['benchmark']}")
    for r in hand_rows:
        if not r["caught"]:
            print(f"  missed {r['task_id']} ({r['kind']}, near {r['near']} to {r['near_task']}): {r['text']}")
    print(f"light rewordings missed (generated, both halves): {len(misses)}; first 12:")
    for m in misses[:12]:
        print("  ", m)
    print(f"flagged clean texts at the defaults: {len(fp_examples)}; first 10:")
    for ex in fp_examples[:10]:
        print("  ", ex)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores", "load": load,
           "index_statements": len(index.statements), "benchmarks": dict(index.benchmarks), "planted": len(planted),
           "per_benchmark_sample": PER_BENCHMARK, "clean": {k: len(v) for k, v in clean.items()}, "grid": grid,
           "suggested_near_threshold": suggested,
           "defaults": {"ngram_threshold": defaults.ngram_threshold, "near_threshold": defaults.near_threshold},
           "per_benchmark_kind_at_defaults": per_bench, "hand_written": {"caught": caught, "total": len(hand_rows), **hand_by, "rows": hand_rows},
           "light_misses": misses, "flagged_clean": len(fp_examples), "flagged_clean_examples": fp_examples[:200],
           "index_build_s": round(build_s, 1), "scan_s": round(scan_s, 1)}
    (REPO / "benchmarks/results").mkdir(parents=True, exist_ok=True)
    (REPO / "benchmarks/results/decontam_recall.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
