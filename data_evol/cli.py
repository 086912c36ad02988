"""`python -m data_evol`: the Evol-Instruct data job, and `decontaminate` for any instruction set.

    python -m data_evol                                  # the embedded default, offline -> outputs/evol-default
    python -m data_evol --config evol.yaml               # EvolConfig fields in YAML; flags override
    python -m data_evol --seeds code_alpaca_20k.json --evolver openai-chat:http://host:8000/v1#model \\
        --teachers openai-chat:http://host:8000/v1#model --rounds 3 --output_dir outputs/evol
    python -m data_evol decontaminate --input seeds.jsonl --output_dir DIR   # DIR/kept.jsonl, DIR/removed.jsonl
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from data_evol.config import DecontamConfig, EvolConfig, parse_args
from rrtf.cli import run_cli


def decontaminate_file(cfg: DecontamConfig) -> dict:
    """Split cfg.input into kept.jsonl and removed.jsonl (each removed line: the input record plus
    benchmark, benchmark_task_id, method and score)."""
    from tqdm.auto import tqdm

    from data_evol.decontam import BenchmarkIndex, contamination, record_texts
    from data_evol.seeds import iter_instruction_texts
    from sandbox.base.errors import RecordError
    from sandbox.base.store import write_jsonl, write_state

    rows = list(iter_instruction_texts(cfg.input))
    texts = []
    for where, rec in rows:
        prompt, solution = record_texts(rec)
        if not prompt and not solution:
            from data_evol.decontam import PROMPT_FIELDS

            raise RecordError(where, "instruction", f"no text to check: expected one of the string fields {', '.join(PROMPT_FIELDS)}")
        texts.append((prompt, solution))
    index = BenchmarkIndex.from_registry(cfg.benchmarks, ngram_size=cfg.ngram_size, code_ngram_size=cfg.code_ngram_size,
                                         code_min_tokens=cfg.code_min_tokens)
    near = index.near_scores([p for p, _ in texts])
    kept, removed = [], []
    for (_, rec), (prompt, solution), nr in tqdm(list(zip(rows, texts, near)), desc="decontaminate", unit="record",
                                                 disable=not cfg.progress):
        hit = contamination(index.scores(prompt, solution, near=nr), cfg)
        if hit is None:
            kept.append(rec)
        else:
            removed.append({**rec, "benchmark": hit.benchmark, "benchmark_task_id": hit.benchmark_task_id, "method": hit.method,
                            "score": hit.score})
    out = Path(cfg.output_dir)
    write_jsonl(out / "kept.jsonl", kept)
    write_jsonl(out / "removed.jsonl", removed)
    stats = {"input": cfg.input, "records": len(rows), "kept": len(kept), "removed": len(removed),
             "by_benchmark": _count(r["benchmark"] for r in removed), "by_method": _count(r["method"] for r in removed),
             "benchmarks_checked": dict(index.benchmarks),
             "thresholds": {"ngram_size": cfg.ngram_size, "ngram_threshold": cfg.ngram_threshold, "near_threshold": cfg.near_threshold,
                            "code_ngram_size": cfg.code_ngram_size, "code_min_tokens": cfg.code_min_tokens}}
    write_state(out / "stats.json", stats)
    return stats


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "decontaminate":
        cfg = parse_args(DecontamConfig, argv[1:])
        stats = decontaminate_file(cfg)
        print(f"decontaminate: {stats['records']} records, kept {stats['kept']}, removed {stats['removed']} {stats['by_benchmark']} "
              f"-> {cfg.output_dir}/kept.jsonl, removed.jsonl", file=sys.stderr)
        return 0
    from data_evol.pipeline import run

    cfg = parse_args(EvolConfig, argv)
    stats = run(cfg)
    sel = stats["select"]
    print(f"data_evol: {sel['kept']} problems ({sel['evolved_kept']} evolved, {sel['seeds_kept']} seeds) -> "
          f"{cfg.output_dir}/problems.jsonl; report: {cfg.output_dir}/report.md", file=sys.stderr)
    return 0


def entry() -> int:
    return run_cli(main, prog="python -m data_evol")


__all__ = ["decontaminate_file", "entry", "main"]
