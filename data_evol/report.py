"""stats.json and report.md (with plots) of an output dir, computed from the records alone: a report
can be regenerated at any time, and a rerun of a finished run rewrites it without any call."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from data_evol.eliminate import words
from data_evol.state import read_pipeline_state
from sandbox.base.store import iter_jsonl, write_atomic, write_state


def _records(path: Path) -> list[dict]:
    return [rec for _, rec in iter_jsonl(path, allow_empty=True)] if path.exists() else []  # a stage output may be empty


def collect_stats(out: Path, cfg, templates) -> dict[str, Any]:
    state = read_pipeline_state(out / "state.json")
    evolved, elim = _records(out / "evolved.jsonl"), {r["id"]: r for r in _records(out / "eliminated.jsonl")}
    problems, rejected, selected = _records(out / "problems.jsonl"), _records(out / "rejected.jsonl"), _records(out / "selected.jsonl")
    answers = _records(out / "answers.jsonl")
    final_ids = {p["evol"]["id"] for p in problems}
    per_method: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: Counter()))
    for rec in evolved:
        cell = per_method[f"round {rec['round']}"][rec["method"]]
        cell["evolved"] += 1
        cell["survived_elimination"] += bool(elim.get(rec["id"], {}).get("kept"))
        cell["in_problems"] += rec["id"] in final_ids
    seeds_final = sum(p["evol"]["method"] == "seed" for p in problems)
    teacher = defaultdict(lambda: Counter())
    for a in answers:
        teacher[a["teacher"]]["answered"] += 1
        teacher[a["teacher"]][a["problem"] or "usable"] += 1
    for rec in selected + rejected:
        for name, ok in (rec.get("teacher_passed") or {}).items():
            teacher[name]["judged"] += 1
            teacher[name]["passed"] += bool(ok)
    tests = Counter()
    for rec in selected + rejected:
        for k in ("tests_proposed", "tests_kept", "author_failed", "flaky", "contradicts_anchor", "entry_point_mismatch",
                  "contaminated_answers"):
            tests[k] += rec.get(k, 0)
    decontam = _records(out / "decontam_removed.jsonl")
    lengths = defaultdict(list)
    for rec in _records(out / "instructions.jsonl"):
        lengths[f"round {rec['round']}"].append(len(words(rec["instruction"])))
    return {
        "output_dir": str(out), "templates": templates.tag, "evolver": cfg.evolver, "teachers": cfg.teachers, "judge": cfg.judge,
        "rounds": cfg.rounds, "stages_done": state.get("done", []),
        "seeds": (state.get("info") or {}).get("seeds", {}),
        "evolution": {r: {m: dict(c) for m, c in ms.items()} for r, ms in sorted(per_method.items())},
        "elimination_reasons": dict(Counter(r["reason"] or "kept" for r in elim.values())),
        "judge_unclear": sum(bool(r.get("judge_unclear")) for r in elim.values()),
        "instructions": len(_records(out / "instructions.jsonl")),
        "dedupe": dict(Counter(r["reason"] for r in _records(out / "dedup_removed.jsonl"))),
        "decontamination": {"removed": len(decontam), "by_benchmark": dict(Counter(r["benchmark"] for r in decontam)),
                            "by_method": dict(Counter(r["method"] for r in decontam)),
                            "benchmarks_checked": (state.get("info") or {}).get("decontaminate", {}).get("benchmarks", {})},
        "answers": {t: dict(c) for t, c in teacher.items()},
        "teacher_pass_rate": {t: round(c["passed"] / c["judged"], 4) for t, c in teacher.items() if c["judged"]},
        "tests": dict(tests),
        "select": {"kept": len(problems), "seeds_kept": seeds_final, "evolved_kept": len(problems) - seeds_final,
                   "rejected": dict(Counter(r["reason"] for r in rejected)),
                   "multi_teacher": sum(len(p.get("teacher_answers", [])) > 1 for p in problems)},
        "lengths": {k: {"mean_words": round(sum(v) / len(v), 1), "n": len(v)} for k, v in sorted(lengths.items())},
        "final_lengths": {"mean_prompt_words": round(sum(len(words(p["prompt"])) for p in problems) / max(1, len(problems)), 1),
                          "mean_tests": round(sum(len(p["test_list"]) for p in problems) / max(1, len(problems)), 2)},
        "calls": state.get("calls", {}),
        "_lengths_raw": {k: v for k, v in lengths.items()},
    }


def _bar(ax, labels, values, title, color="#2b7bba"):
    bars = ax.bar(range(len(labels)), values, color=color)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.bar_label(bars, fontsize=8)
    ax.set_title(title, fontsize=10)


def write_plots(out: Path, stats: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(8, 3.8))
    cells = [(r, m, c) for r, ms in stats["evolution"].items() for m, c in sorted(ms.items())]
    labels = [f"{r.replace('round ', 'r')} {m}" for r, m, _ in cells]
    x = range(len(cells))
    for k, (key, color) in enumerate((("evolved", "#bbbbbb"), ("survived_elimination", "#2b7bba"), ("in_problems", "#4dac26"))):
        ax.bar([i + (k - 1) * 0.27 for i in x], [c.get(key, 0) for _, _, c in cells], width=0.27, color=color, label=key)
    ax.set_xticks(list(x), labels, rotation=35, ha="right", fontsize=8)
    ax.set_title("Evolutions per round and method: made, survived elimination, in problems.jsonl", fontsize=10)
    ax.legend(fontsize=8)
    made.append(_save(fig, out / "survivors.png", plt))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    elim = stats["elimination_reasons"]
    _bar(axes[0], list(elim), list(elim.values()), "Elimination (per evolution)")
    filt = {"dedup exact": stats["dedupe"].get("exact", 0), "dedup near": stats["dedupe"].get("near", 0),
            "decontaminated": stats["decontamination"]["removed"],
            **{f"  {k}": v for k, v in stats["decontamination"]["by_benchmark"].items()}}
    _bar(axes[1], list(filt), list(filt.values()), "Dedup and decontamination removals", "#ef8a62")
    rej = stats["select"]["rejected"]
    _bar(axes[2], ["kept", *rej], [stats["select"]["kept"], *rej.values()], "Validation and selection", "#4dac26")
    made.append(_save(fig, out / "filters.png", plt))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rates = stats["teacher_pass_rate"]
    _bar(axes[0], list(rates) or ["none"], [round(v, 3) for v in rates.values()] or [0], "Teacher solutions passing the kept tests")
    axes[0].set_ylim(0, 1.1)
    for name, values in stats["_lengths_raw"].items():
        axes[1].hist(values, bins=20, alpha=0.5, label=name)
    axes[1].set_title("Task length (words) by round", fontsize=10)
    axes[1].legend(fontsize=8)
    made.append(_save(fig, out / "teachers_lengths.png", plt))
    return made


def _save(fig, path: Path, plt) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


DEFAULT_NOTE = """## What the embedded default can and cannot show

The default run uses no pretrained model (none exists on this machine). Its evolver and teachers are
one tiny model trained here for a few minutes (`data_evol/tiny_teacher.py`) on a procedural family of
tasks (`data_evol/procedural.py`: pipelines of rrtf's tiny-tasks operations, each method a rewrite
of that family). What it **shows**: every stage runs for real -- evolution through rrtf's generation
layer with chat messages, the elimination rules, MinHash dedup, decontamination against every
registered benchmark, answers with unit tests from two teachers of different quality, the sandbox
dropping tests the teacher's own solution fails, that flip between runs or that contradict the
better teacher, and selection -- and the result trains with `python -m rrtf.train --dataset
problems.jsonl`. What it **cannot show**: the quality of LLM-evolved data. The tiny teacher only
knows its own task family; many of its evolutions are garbled and most of its tests are wrong, so
few evolved tasks survive, and a survivor's tests prove only that its solution agrees with them, not
that both match the wording of the task (that needs teachers that understand it). Its seeds
are rrtf's tiny tasks, so no real benchmark leak is expected: what decontamination removes here is a
lexical coincidence, listed in decontam_removed.jsonl.
"""


def write_report(out: Path, stats: dict) -> None:
    clean = {k: v for k, v in stats.items() if not k.startswith("_")}
    write_state(out / "stats.json", clean)
    plots = write_plots(out, stats)
    sel, tests = stats["select"], stats["tests"]
    lines = [
        "# data_evol run", "",
        f"Evolver `{stats['evolver']}`, teachers {', '.join(f'`{t}`' for t in stats['teachers'])}, {stats['rounds']} rounds, "
        f"templates `{stats['templates']}`. Stages done: {', '.join(stats['stages_done'])}.", "",
        "| stage | result |", "|---|---|",
        f"| seeds | {stats['seeds']} |",
        f"| evolution + elimination | {stats['elimination_reasons']} (judge unclear: {stats['judge_unclear']}) |",
        f"| pool (seeds + survivors) | {stats['instructions']} |",
        f"| dedupe | {stats['dedupe'] or 'nothing removed'} |",
        f"| decontamination | removed {stats['decontamination']['removed']}: {stats['decontamination']['by_benchmark']} "
        f"by {stats['decontamination']['by_method']}; checked against {stats['decontamination']['benchmarks_checked']} |",
        f"| answers | {stats['answers']} |",
        f"| tests | proposed {tests.get('tests_proposed', 0)}, kept {tests.get('tests_kept', 0)}, dropped because the author's solution "
        f"failed {tests.get('author_failed', 0)}, flaky {tests.get('flaky', 0)}, contradicting the best teacher "
        f"{tests.get('contradicts_anchor', 0)}; answers naming another function "
        f"{tests.get('entry_point_mismatch', 0)} |",
        f"| teacher pass rate (kept tests) | {stats['teacher_pass_rate']} |",
        f"| **problems.jsonl** | **{sel['kept']}** ({sel['evolved_kept']} evolved, {sel['seeds_kept']} seeds; "
        f"{sel['multi_teacher']} with several teachers' answers); rejected {sel['rejected']} |",
        f"| lengths | {stats['lengths']}; final {stats['final_lengths']} |",
        f"| calls | {stats['calls']} |", "",
        *[f"![{p}]({p})" for p in plots], "",
    ]
    if stats["evolver"] == "default":
        lines.append(DEFAULT_NOTE)
    write_atomic(out / "report.md", "\n".join(lines).encode())


__all__ = ["collect_stats", "write_plots", "write_report"]
