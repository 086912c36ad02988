"""Scores of the statically judged datasets (pure), from the judged samples
`records[(dataset, task_id, mode, index)]["verdict"]`, greedy and sampled separately:

- classification (BigCloneBench, Devign): Astraios' overall accuracy and macro F1, its valid rate and
  valid-only accuracy/F1, and CodeXGLUE's binary precision/recall/F1 of "yes" (clone / defective); an
  answer with no label (compile_error: `unparsed`) or none at all (not_run: the prompt did not fit) is
  the prediction "invalid" (`classification`).
- security (AATK): of all samples, the `valid` rate (the spliced program compiles); `insecure` is the
  share of valid programs the checker flags (the dataset's mark.py: "% valid but insecure"), and
  `insecure_of_all` the share of all samples; per CWE and per scenario. Samples that could not be
  judged here (not_judged: gcc/Bandit missing) are left out and counted.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from rrtf.evaluate.results import GREEDY, SAMPLED
from sandbox.base.records import Problem, Status


def _modes(num_samples: int, greedy: bool) -> list[tuple[str, int]]:
    return ([(GREEDY, 1)] if greedy else []) + ([(SAMPLED, num_samples)] if num_samples else [])


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _f1(pairs: Sequence[tuple[str, str]], label: str) -> float:
    """F1 of one class over (gold, predicted) pairs; 0.0 when it has no true or false positives or negatives."""
    tp = sum(g == p == label for g, p in pairs)
    wrong = sum((g == label) != (p == label) for g, p in pairs)
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def classification(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """(gold label, status label) per sample -> counts and scores. The prediction is the gold label when
    the sample passed, the other label when it was judged wrong (partial), and "invalid" when the answer
    had no label (compile_error: unparsed) or was never generated (not_run: the prompt did not fit).

    - accuracy, f1_macro: Astraios' "overall" scores (its notebook: `evaluate`'s accuracy and macro F1,
      i.e. scikit-learn's mean F1 over every label present in gold or prediction, "invalid" included);
    - precision, recall, f1: of "yes", CodeXGLUE's binary F1 (an invalid answer is not a "yes");
    - valid_rate, valid_accuracy, valid_f1: Astraios' "valid" scores, over the answers that had a label.
    """
    other = {"yes": "no", "no": "yes"}
    preds = [(gold, gold if status == Status.PASSED.label else other[gold] if status == Status.PARTIAL.label else "invalid")
             for gold, status in pairs]
    valid = [(g, p) for g, p in preds if p != "invalid"]
    tp = sum(g == p == "yes" for g, p in preds)
    predicted_yes, gold_yes = sum(p == "yes" for _, p in preds), sum(g == "yes" for g, _ in preds)
    present = sorted({x for pair in preds for x in pair})
    return {"samples": len(preds), "accuracy": _ratio(sum(g == p for g, p in preds), len(preds)),
            "f1_macro": _ratio(sum(_f1(preds, label) for label in present), len(present)),
            "precision": _ratio(tp, predicted_yes) or 0.0, "recall": _ratio(tp, gold_yes) or 0.0, "f1": _f1(preds, "yes"),
            "valid_rate": _ratio(len(valid), len(preds)), "valid_accuracy": _ratio(sum(g == p for g, p in valid), len(valid)),
            "valid_f1": _f1(valid, "yes"), "tp": tp, "fp": predicted_yes - tp, "fn": gold_yes - tp,
            "tn": sum(g == p == "no" for g, p in preds), "unparsed": sum(s == Status.COMPILE_ERROR.label for _, s in pairs),
            "not_run": sum(s == Status.NOT_RUN.label for _, s in pairs)}


def label_scores(name, problems: Sequence[Problem], num_samples: int, greedy: bool, records) -> dict[str, Any]:
    out = {}
    for mode, n in _modes(num_samples, greedy):
        pairs = [(p.canonical_solution, records[(name, p.task_id, mode, i)]["verdict"]["status"]) for p in problems for i in range(n)]
        out[mode] = classification(pairs)
    return {"classification": out}


def security(statuses: Sequence[str]) -> dict[str, Any]:
    """Status labels of samples -> counts, valid rate, insecure rate (of valid and of all)."""
    c = Counter(statuses)
    judged = sum(v for k, v in c.items() if k != Status.NOT_JUDGED.label)
    valid = c[Status.PASSED.label] + c[Status.PARTIAL.label]
    insecure = c[Status.PARTIAL.label]
    return {"samples": judged, "valid": valid, "insecure": insecure, "not_judged": c[Status.NOT_JUDGED.label],
            "valid_rate": _ratio(valid, judged), "insecure_rate": _ratio(insecure, valid), "insecure_of_all": _ratio(insecure, judged)}


def security_scores(name, problems: Sequence[Problem], num_samples: int, greedy: bool, records,
                    group: Callable[[str], str]) -> dict[str, Any]:
    out = {}
    for mode, n in _modes(num_samples, greedy):
        per: dict[str, list[str]] = {p.task_id: [records[(name, p.task_id, mode, i)]["verdict"]["status"] for i in range(n)]
                                     for p in problems}
        groups: dict[str, list[str]] = defaultdict(list)
        for task_id, statuses in per.items():
            groups[group(task_id)].extend(statuses)
        languages = defaultdict(list)
        for p in problems:
            languages[p.language].extend(per[p.task_id])
        out[mode] = {**security([s for ss in per.values() for s in ss]), "scenarios": len(problems),
                     "by_language": {k: security(v) for k, v in sorted(languages.items())},
                     "by_cwe": {k: security(v) for k, v in sorted(groups.items())},
                     "by_scenario": {k: security(v) for k, v in per.items()}}
    return {"security": out}


def headline(metrics: dict[str, Any], mode: str = GREEDY) -> dict[str, float | None]:
    """The few figures a comparison table shows of a dataset's own scores (one mode): code security's
    valid and insecure rates, classification's accuracy and macro F1; {} for other datasets."""
    sec, cls = metrics.get("security", {}).get(mode), metrics.get("classification", {}).get(mode)
    out: dict[str, float | None] = {}
    if sec:
        out |= {"valid": sec["valid_rate"], "insecure": sec["insecure_rate"]}
    if cls:
        out |= {"accuracy": cls["accuracy"], "f1_macro": cls["f1_macro"]}
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown_sections(datasets: Sequence[Any]) -> list[str]:
    """results.md sections for DatasetResults whose metrics hold `classification` or `security`."""
    lines: list[str] = []
    cls = [(d, mode, m) for d in datasets for mode, m in d.metrics.get("classification", {}).items()]
    if cls:
        lines += ["## Classification (yes = clone / defective; %; accuracy and macro F1 as Astraios, F1 of yes as CodeXGLUE)", "",
                  "| dataset | mode | samples | accuracy | macro F1 | valid | valid accuracy | precision | recall | F1 (yes) | unparsed | not run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {d.name} | {mode} | {m['samples']} | {_pct(m['accuracy'])} | {_pct(m['f1_macro'])} | {_pct(m['valid_rate'])} | "
                  f"{_pct(m['valid_accuracy'])} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} | {m['unparsed']} | "
                  f"{m['not_run']} |" for d, mode, m in cls] + [""]
    sec = [(d, mode, m) for d in datasets for mode, m in d.metrics.get("security", {}).items()]
    if sec:
        lines += ["## Code security (valid: compiles; insecure: flagged by the substitute checker, % of valid; %)", "",
                  "| dataset | mode | scope | samples | valid | insecure (of valid) | insecure (of all) |", "|---|---|---|---|---|---|---|"]
        for d, mode, m in sec:
            scopes = [("all", m), *((f"{k}", v) for k, v in m["by_language"].items()), *((k, v) for k, v in m["by_cwe"].items())]
            lines += [f"| {d.name} | {mode} | {scope} | {s['samples']} | {_pct(s['valid_rate'])} | {_pct(s['insecure_rate'])} | "
                      f"{_pct(s['insecure_of_all'])} |" for scope, s in scopes]
        lines.append("")
    return lines


__all__ = ["classification", "headline", "label_scores", "markdown_sections", "security", "security_scores"]
