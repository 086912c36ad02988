"""`python -m rrtf.evaluate`: pass@k (unbiased estimator) and greedy pass@1 on any registered dataset.

    python -m rrtf.evaluate --datasets heldout humaneval mbpp --num_samples 10 --k 1 10
    python -m rrtf.evaluate --config eval.yaml          # same fields in YAML (trl.TrlParser)
    python -m rrtf.evaluate --list                      # the datasets and their tasks
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rrtf.backends import GenerationBackend, backend_from_spec, build_backend
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.results import EvalResult
from rrtf.evaluate.runner import evaluate
from rrtf.evaluate.summary import write_result
from rrtf.rollout import ask
from sandbox.base.records import Problem


def default_model_path() -> str:
    """The embedded tiny StarCoder (warmed up on tiny-tasks; built and cached on first use)."""
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("warm"))


def build_eval_backend(cfg: EvalConfig, problems: Mapping[str, Sequence[Problem]] | None = None,
                       strategies: Mapping[str, str] | None = None) -> GenerationBackend:
    """The backend named by cfg. `reference` answers every prompt with the problem's canonical
    solution, in the form its strategy expects: a sanity check of datasets, prompts and sandbox."""
    options = json.loads(cfg.backend_options) if cfg.backend_options else {}
    if ":" in cfg.backend:
        return backend_from_spec(cfg.backend, **options)
    if cfg.backend == "reference":
        answers = {}
        for name, plist in (problems or {}).items():
            for asked in ask(name, plist, cfg.strategy, strategies):
                answers.update(asked.asks.reference_answers(asked.problem, cfg.prompt_template))
        options.setdefault("answers", answers)
    elif cfg.backend == "transformers":
        options.setdefault("model_name_or_path", cfg.model_name_or_path or default_model_path())
        if cfg.tokenizer_name_or_path:
            options.setdefault("tokenizer_name_or_path", cfg.tokenizer_name_or_path)
    elif cfg.model_name_or_path:
        options.setdefault("model", cfg.model_name_or_path)
    return build_backend(cfg.backend, **options)


def load_eval_datasets(cfg: EvalConfig) -> tuple[dict[str, list[Problem]], dict[str, str], dict[str, str]]:
    """cfg.datasets loaded (at most cfg.max_problems each), each one's strategy, and the datasets that
    cannot be judged here ({name: why}, e.g. a language the sandbox lacks). Every name is checked
    before anything is loaded, so a typo fails at once."""
    from rrtf.datasets import DatasetUnavailable, is_file_name, limit_problems, load_dataset, parse_name

    for name in cfg.datasets:
        if not is_file_name(name):
            parse_name(name)
    problems, strategies, unavailable = {}, {}, {}
    for name in cfg.datasets:
        try:
            ds = load_dataset(name)
        except DatasetUnavailable as exc:
            unavailable[name] = str(exc)
            continue
        problems[name] = limit_problems(ds.problems, cfg.max_problems, ds.spec)
        strategies[name] = ds.strategy
    return problems, strategies, unavailable


def run(cfg: EvalConfig, backend: GenerationBackend | None = None) -> EvalResult:
    """Load the datasets, build the backend (unless given) and a sandbox, evaluate, write outputs."""
    from rrtf.rollout.engine import engine_from

    if cfg.model_name_or_path and cfg.backend == "transformers":
        from rrtf.modeling import check_model_dir

        check_model_dir(cfg.model_name_or_path)
    problems, strategies, unavailable = load_eval_datasets(cfg)
    own_backend = backend is None
    backend = backend or build_eval_backend(cfg, problems, strategies)
    try:
        with engine_from(cfg) as engine, engine.sandbox(cfg.sandbox_config()) as sandbox:  # local, or --rollout ray
            result = evaluate(problems, backend, sandbox, cfg, strategies=strategies, errors=unavailable)
    finally:
        if own_backend:
            backend.close()
    if cfg.output_file:
        write_result(result, cfg.output_file)
    return result


def list_datasets() -> str:
    """Every dataset x task (`NAME:TASK`; the first task of a dataset is its default) and the aliases."""
    from rrtf.datasets import ALIASES, DATASETS, task_table

    lines = [f"{'dataset:task':<36} {'strategy':<18} {'splits':<30} description"]
    for name, task, strategy, description in task_table():
        splits = ",".join(DATASETS.get(name).splits)
        lines.append(f"{name + ':' + task:<36} {strategy:<18} {splits:<30} {description}")
    lines += [f"{alias:<36} = {target}" for alias, target in ALIASES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> EvalResult | None:
    from trl import TrlParser

    if argv is not None and "--list" in argv:
        print(list_datasets())
        return None
    (cfg,) = TrlParser([EvalConfig]).parse_args_and_config(args=argv)
    from rrtf.cli import check_output_path

    for flag, path in (("--output_file", cfg.output_file), ("--samples_file", cfg.resolved_samples_file())):
        if path:
            check_output_path(path, flag, directory=False)  # before any work: one line naming it
    if cfg.k_note:
        print(f"python -m rrtf.evaluate: {cfg.k_note}", file=sys.stderr)
    result = run(cfg)
    print(result.table())
    for d in result.datasets.values():
        if d.error:
            print(f"python -m rrtf.evaluate: {d.name} not evaluated: {d.error}", file=sys.stderr)
    if cfg.output_file:
        print(f"wrote {cfg.output_file}, {Path(cfg.output_file).with_suffix('.md')} and {cfg.resolved_samples_file()}")
    return result


def exit_status(result: EvalResult | None) -> int:
    """0, or 1 when some dataset could not be evaluated (everything else was, and is written)."""
    return 1 if result is not None and any(d.error for d in result.datasets.values()) else 0


__all__ = ["build_eval_backend", "default_model_path", "exit_status", "list_datasets", "load_eval_datasets", "main", "run"]
