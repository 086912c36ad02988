"""Evaluation: pass@k (unbiased estimator) and greedy pass@1 on any registered dataset x task, judged
in the sandbox, resumable per sample, plus each dataset's own scores (EvalPlus base/plus, pass@k by
difficulty, ReCode's RP/RD/RR@k: rrtf.evaluate.robustness). docs/evaluation.md;
`python -m rrtf.evaluate --help`; from Python:

    from rrtf.evaluate import EvalConfig, evaluate
    result = evaluate({"heldout": problems}, backend, sandbox, EvalConfig(num_samples=0))
"""
from rrtf.evaluate.cli import build_eval_backend, load_eval_datasets, main, run
from rrtf.evaluate.config import EvalConfig
from rrtf.evaluate.metrics import pass_at_k
from rrtf.evaluate.results import DatasetResult, EvalResult, ProblemRow
from rrtf.evaluate.runner import evaluate
from rrtf.evaluate.summary import write_result
from rrtf.rollout import dataset_default_strategy, resolve_strategy

__all__ = [
    "DatasetResult", "EvalConfig", "EvalResult", "ProblemRow", "build_eval_backend", "dataset_default_strategy", "evaluate",
    "load_eval_datasets", "main", "pass_at_k", "resolve_strategy", "run", "write_result",
]
