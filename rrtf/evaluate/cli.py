"""`python -m rrtf.evaluate`: pass@k (unbiased estimator) and greedy pass@1 on any registered dataset.

    python -m rrtf.evaluate --datasets heldout humaneval mbpp --num_samples 10 --k 1 10
    python -m rrtf.evaluate --config eval.yaml          # same fields in YAML (trl.TrlParser)
    python -m rrtf.evaluate --list                      # the datasets and their tasks
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from rrtf.backends import GenerationBackend, backend_from_spec, build_backend
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.results import EvalResult, write_result
from rrtf.evaluate.runner import evaluate, resolve_strategy
from rrtf.prompts import get_strategy
from sandbox.records import Problem


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
            strategy = get_strategy(resolve_strategy(name, plist, cfg, strategies))
            answers.update({strategy.prompt(p, cfg.prompt_template): strategy.reference_response(p) for p in plist})
        options.setdefault("answers", answers)
    elif cfg.backend == "transformers":
        options.setdefault("model_name_or_path", cfg.model_name_or_path or default_model_path())
        if cfg.tokenizer_name_or_path:
            options.setdefault("tokenizer_name_or_path", cfg.tokenizer_name_or_path)
    elif cfg.model_name_or_path:
        options.setdefault("model", cfg.model_name_or_path)
    return build_backend(cfg.backend, **options)


def load_eval_datasets(cfg: EvalConfig) -> tuple[dict[str, list[Problem]], dict[str, str]]:
    """cfg.datasets loaded (at most cfg.max_problems each), and each one's strategy."""
    from rrtf.datasets import load_dataset

    problems, strategies = {}, {}
    for name in cfg.datasets:
        ds = load_dataset(name)
        problems[name] = ds.problems[: cfg.max_problems] if cfg.max_problems is not None else ds.problems
        strategies[name] = ds.strategy
    return problems, strategies


def run(cfg: EvalConfig, backend: GenerationBackend | None = None) -> EvalResult:
    """Load the datasets, build the backend (unless given) and a sandbox, evaluate, write outputs."""
    from sandbox import Sandbox, SandboxConfig

    if cfg.model_name_or_path and cfg.backend == "transformers":
        from rrtf.modeling import check_model_dir

        check_model_dir(cfg.model_name_or_path)
    problems, strategies = load_eval_datasets(cfg)
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


def list_datasets() -> str:
    from rrtf.datasets import ALIASES, DATASETS

    lines = [f"{'dataset':<24} {'splits':<32} {'tasks':<28} description"]
    for name, spec in DATASETS.items():
        lines.append(f"{name:<24} {','.join(spec.splits):<32} {','.join(spec.tasks):<28} {spec.description}")
    lines += [f"{alias:<24} = {target}" for alias, target in ALIASES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> EvalResult | None:
    from trl import TrlParser

    if argv is not None and "--list" in argv:
        print(list_datasets())
        return None
    (cfg,) = TrlParser([EvalConfig]).parse_args_and_config(args=argv)
    result = run(cfg)
    print(result.table())
    if cfg.output_file:
        print(f"wrote {cfg.output_file} and {cfg.resolved_samples_file()}")
    return result


__all__ = ["build_eval_backend", "default_model_path", "list_datasets", "load_eval_datasets", "main", "run"]
