"""The data every method trains and is measured on, made once: the base model's samples on the training
problems, judged and ranked with the teacher answers (rrtf.train's own stages, in OUT/data), and the
held-out problems with their reference answers as one-answer groups (the held-out loss)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rrtf.compare_tuning.config import CompareConfig
from rrtf.options import sandbox_option_names
from rrtf.records import RankedGroup
from sandbox.base.records import Problem


@dataclass
class SharedData:
    base: str
    train: list[RankedGroup]
    heldout: dict[str, list[Problem]]
    heldout_groups: list[RankedGroup]
    rank_stats: dict


def train_config(cfg: CompareConfig, base: str, output_dir: Path, **overrides):
    """The RRTFConfig of the comparison's data stage and of every training run."""
    from rrtf.config import RRTFConfig

    fields = dict(model_name_or_path=base, dataset=cfg.dataset, max_problems=cfg.max_problems, eval_dataset=cfg.eval_dataset, eval_datasets=cfg.eval_datasets,
                  eval_max_problems=cfg.eval_max_problems, rank_loss=cfg.rank_loss, num_samples=cfg.num_samples,
                  max_new_tokens=cfg.max_new_tokens, max_length=cfg.max_length, seed=cfg.seed, report_to="none",
                  disable_tqdm=cfg.disable_tqdm, output_dir=str(output_dir),
                  **{name: getattr(cfg, name) for name in sandbox_option_names()})
    if cfg.bf16 is not None:
        fields["bf16"] = cfg.bf16
    return RRTFConfig(**(fields | overrides))


def base_model(cfg: CompareConfig) -> str:
    if cfg.model_name_or_path:
        from rrtf.modeling import check_model_dir

        return check_model_dir(cfg.model_name_or_path)
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("warm"))


def heldout_groups(name: str, problems: list[Problem], template: str | None) -> list[RankedGroup]:
    """Each held-out problem, asked as its dataset asks it, with its reference answer (as the training
    teacher gives it): the SFT loss on these."""
    from rrtf.rollout import ask

    return [RankedGroup(task_id=a.task_id, prompt=a.prompt(template), responses=[a.problem.canonical_solution], rewards=[1.0],
                        best_teacher=0) for a in ask(name, problems) if a.problem.canonical_solution.strip()]


def prepare(cfg: CompareConfig, out: Path) -> SharedData:
    """Sample, judge and rank once (resumable: rrtf.train's stages skip finished work)."""
    import torch

    from rrtf.backends import build_backend
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.train import Run, load_training_problems
    from sandbox import Sandbox

    base = base_model(cfg)
    config = train_config(cfg, base, out / "data")
    problems, evals = load_training_problems(config)
    if not evals:
        raise ValueError(f"dataset {cfg.dataset!r} has no held-out split: name one with --eval_dataset")
    runner = Run(config)
    runner.check_identity()

    def student():
        tokenizer = load_tokenizer(base)
        return build_backend("transformers", model=load_model(base, dtype=torch.float32), tokenizer=tokenizer)

    with Sandbox(cfg.sandbox_config()) as sandbox:
        groups, stats = runner.sample_and_rank(0, student, problems, sandbox)
    if not groups:
        raise ValueError(f"ranking the base model's samples kept no prompt to train on ({stats.get('dropped')})")
    heldout = dict(evals)
    return SharedData(base=base, train=groups, heldout=heldout,
                      heldout_groups=heldout_groups(*next(iter(heldout.items())), config.prompt_template), rank_stats=stats)


def load(cfg: CompareConfig, out: Path) -> SharedData:
    """The data `prepare` made (a training run reads it without starting a sandbox)."""
    from rrtf.train import load_training_problems
    from sandbox.base.store import read_records, read_state

    base = base_model(cfg)
    config = train_config(cfg, base, out / "data")
    ranked, stats = out / "data" / "round0" / "ranked.jsonl", read_state(out / "data" / "round0" / "rank_stats.json")
    if stats is None or not ranked.exists():
        raise FileNotFoundError(f"{out / 'data'}: the shared data is not ready (run python -m rrtf.compare_tuning first)")
    _, evals = load_training_problems(config)
    return SharedData(base=base, train=read_records(ranked, RankedGroup.from_record, allow_empty=True), heldout=dict(evals),
                      heldout_groups=heldout_groups(*next(iter(evals.items())), config.prompt_template), rank_stats=stats)


def as_records(groups: list[RankedGroup]) -> list[dict]:
    return [g.to_record() for g in groups]


__all__ = ["SharedData", "as_records", "base_model", "heldout_groups", "load", "prepare", "train_config"]
