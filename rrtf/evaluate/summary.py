"""The markdown summary of an evaluation (results.md beside results.json): one table of every dataset,
then the tables only some datasets have -- EvalPlus base vs plus, pass@k by category, ReCode
robustness -- and the datasets that could not be evaluated, with the reason (e.g. the package to install)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rrtf.evaluate.results import EvalResult, unjudged_note
from sandbox.base.records import Status
from sandbox.base.store import write_atomic


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]


def _score_keys(scores: list[dict[str, Any]]) -> list[str]:
    keys = {k for s in scores for k in s if k.startswith("pass@")}
    return sorted(keys, key=lambda k: int(k.split("@")[1])) + (["greedy@1"] if any("greedy@1" in s for s in scores) else [])


def markdown(result: EvalResult) -> str:
    cfg = result.config
    lines = ["# Evaluation", "",
             f"model `{cfg.get('model_name_or_path') or 'embedded tiny StarCoder'}`, backend `{cfg.get('backend')}`, "
             f"{cfg.get('num_samples')} samples/problem at T={cfg.get('temperature')}, greedy {cfg.get('greedy')}, "
             f"seed {cfg.get('seed')}, max_new_tokens {cfg.get('max_new_tokens')} (all settings: results.json `config`).", ""]
    datasets = list(result.datasets.values())
    ks = sorted({k for d in datasets for k in d.pass_at_k}, key=lambda s: int(s.split("@")[1]))
    rows = []
    for d in datasets:
        sc = d.status_counts or d.greedy_status_counts
        counts = "/".join(str(sc.get(s.label, 0)) for s in Status.ranked()) + unjudged_note(sc)
        rows.append([d.name, d.task or "-", d.strategy or "-", str(d.num_problems), *[_pct(d.pass_at_k.get(k)) for k in ks],
                     _pct(d.greedy_pass_at_1), counts if not d.error else "-", d.error or ""])
    lines += _table(["dataset", "task", "strategy", "problems", *ks, "greedy@1", "pass/partial/runtime/compile", "note"], rows)

    plus = [d for d in datasets if "base" in d.metrics]
    if plus:
        keys = _score_keys([d.metrics["base"] for d in plus])
        lines += ["## EvalPlus: base (original inputs) vs plus (all inputs)", ""]
        lines += _table(["dataset", *[f"base {k}" for k in keys], *[f"plus {k}" for k in keys]],
                        [[d.name, *[_pct(d.metrics["base"].get(k)) for k in keys], *[_pct(d.metrics["plus"].get(k)) for k in keys]]
                         for d in plus])
    cats = [d for d in datasets if "by_category" in d.metrics]
    if cats:
        keys = _score_keys([s for d in cats for s in d.metrics["by_category"].values()])
        lines += ["## By category", ""]
        lines += _table(["dataset", "category", "problems", *keys],
                        [[d.name, c, str(s["problems"]), *[_pct(s.get(k)) for k in keys]] for d in cats
                         for c, s in d.metrics["by_category"].items()])
    robust = [d for d in datasets if d.metrics.get("robustness")]
    if robust:
        lines += ["## ReCode robustness (RP: robust pass, RD: robust drop, RR: robust relative; %)", ""]
        rows = []
        for d in robust:
            for mode, rep in d.metrics["robustness"].items():
                scopes = [("family", rep["family"])] + list(rep["types"].items())
                for scope, m in scopes:
                    for k in sorted({key.split("@")[1] for key in m if key.startswith("RP@")}, key=int):
                        rows.append([d.name, mode, scope, str(m.get("seeds", m.get("copies", ""))), k, _pct(m[f"nominal pass@{k}"]),
                                     _pct(m[f"RP@{k}"]), _pct(m[f"RD@{k}"]), _pct(m[f"RR@{k}"])])
        overall = result.recode_overall
        for mode in ("greedy", "sampled"):
            for k in sorted({key.split("@")[1] for key in overall.get(mode, {}) if key.startswith("RP@")}, key=int):
                m = overall[mode]
                rows.append([f"mean of {len(overall['families'])} families", mode, "family", "", k, _pct(m[f"nominal pass@{k}"]),
                             _pct(m[f"RP@{k}"]), _pct(m[f"RD@{k}"]), _pct(m[f"RR@{k}"])])
        lines += _table(["dataset", "mode", "perturbation", "copies", "k", "nominal pass@k", "RP@k", "RD@k", "RR@k"], rows)
    from rrtf.evaluate.static_scores import markdown_sections

    lines += markdown_sections(datasets)  # classification (clone/defect detection) and code security (AATK)
    failed = [d for d in datasets if d.error]
    if failed:
        lines += ["## Not evaluated", "", *(f"- `{d.name}`: {d.error}" for d in failed), ""]
    return "\n".join(lines)


def write_result(result: EvalResult, path: str | os.PathLike) -> None:
    """results.json at `path` (every metric and the config), and the markdown summary beside it (.md)."""
    write_atomic(path, (json.dumps(result.to_record(), indent=2) + "\n").encode())
    write_atomic(Path(path).with_suffix(".md"), (markdown(result) + "\n").encode())


__all__ = ["markdown", "write_result"]
