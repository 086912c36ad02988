"""One run of the comparison in its own process -- `python -m rrtf.compare_methods.unit --output_dir OUT
--condition C --seed S (--method NAME | --shared)` -- reading the comparison's config from OUT:

- `--shared`: the (condition, seed)'s shared stage in OUT/shared/C-seedS: the base model evaluated (greedy
  pass@1, held-out loss) and its samples judged and ranked once (rrtf.train's own stages and files).
- `--method NAME`: `rrtf.train` with --method NAME in OUT/runs/C/NAME-seedS. A method that trains on ranked
  candidates starts from a copy of the shared stage's files, which rrtf.train's resume then skips (the same
  data for every such method); the others sample on their own. Then the trained model's held-out loss.

Each writes result.json (atomically; its presence means "done")."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from rrtf.compare_methods.config import CompareMethodsConfig, condition_overrides

CONFIG_FILE = "compare_config.json"


def shared_dir(out: Path, condition: str, seed: int) -> Path:
    return out / "shared" / f"{condition}-seed{seed}"


def run_dir(out: Path, condition: str, method: str, seed: int) -> Path:
    return out / "runs" / condition / f"{method}-seed{seed}"


def train_config(cfg: CompareMethodsConfig, condition: str, seed: int, output_dir: Path, method: str = "rrtf"):
    from rrtf.config import RRTFConfig
    from rrtf.options import sandbox_option_names

    fields = dict(method=method, model_name_or_path=cfg.model_name_or_path, max_problems=cfg.max_problems,
                  eval_max_problems=cfg.eval_max_problems, num_samples=cfg.num_samples, max_new_tokens=cfg.max_new_tokens,
                  num_train_epochs=cfg.num_train_epochs, per_device_train_batch_size=cfg.per_device_train_batch_size,
                  learning_rate=cfg.lr_for(method), seed=seed, report_to="none", save_strategy="no", disable_tqdm=cfg.disable_tqdm,
                  output_dir=str(output_dir), **{name: getattr(cfg, name) for name in sandbox_option_names()})
    return RRTFConfig(**(fields | condition_overrides(cfg, condition)))


def heldout_loss(config, model_dir: str, evals) -> float:
    """Token-mean NLL of the held-out problems' reference answers (the held-out loss Astraios relates to pass@1)."""
    import dataclasses

    import torch

    from rrtf.compare_tuning.data import heldout_groups
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.trainer import RRTFTrainer
    from rrtf.tuning import build_tuning_method

    name, problems = next(iter(evals.items()))
    groups = heldout_groups(name, problems, config.prompt_template)
    args = dataclasses.replace(config, method="rrtf", rank_loss=True, rank_weighting="paper", per_device_eval_batch_size=8)
    tuning = build_tuning_method(config)
    model = tuning.apply(load_model(model_dir, dtype=torch.float32), config)
    trainer = RRTFTrainer(model=model, args=args, eval_dataset=[g.to_record() for g in groups], processing_class=load_tokenizer(model_dir),
                          tuning_method=tuning)
    return float(trainer.evaluate()["eval_loss_sft"])


def run_shared(cfg: CompareMethodsConfig, out: Path, condition: str, seed: int) -> dict:
    import torch

    from rrtf.backends import build_backend
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.train import Run, base_model_path, load_training_problems
    from sandbox import Sandbox

    start = time.time()
    config = train_config(cfg, condition, seed, shared_dir(out, condition, seed))
    base = base_model_path(config)
    problems, evals = load_training_problems(config)
    runner = Run(config)
    runner.check_identity()
    tokenizer = load_tokenizer(base)
    model = load_model(base, dtype=torch.float32)
    with Sandbox(config.sandbox_config()) as sandbox:
        before = runner.evaluate("eval_before", model, tokenizer, evals, sandbox)
        evaluated = time.time()
        _, stats = runner.sample_and_rank(0, lambda: build_backend("transformers", model=model, tokenizer=tokenizer), problems, sandbox)
    sampled = time.time()
    return {"condition": condition, "seed": seed, "method": "base", "pass_at_1": before["pass@1"], "pass_at_1_before": before["pass@1"],
            "heldout_loss": heldout_loss(config, base, evals), "train_problems": len(problems), "rank_stats": stats,
            "eval_s": evaluated - start, "sample_rank_s": sampled - evaluated, "wall_time_s": time.time() - start}


def seed_from_shared(shared: Path, where: Path, ranked: bool) -> None:
    """Copy the shared stage's evaluation of the base model and (for methods on ranked data) its round-0
    samples, verdicts and ranking: rrtf.train finds them done and skips them."""
    where.mkdir(parents=True, exist_ok=True)
    for f in shared.glob("eval_before*"):
        if not (where / f.name).exists():
            shutil.copy2(f, where / f.name)
    if ranked and not (where / "round0").exists():
        shutil.copytree(shared / "round0", where / "round0")


def run_method(cfg: CompareMethodsConfig, out: Path, condition: str, method: str, seed: int) -> dict:
    from rrtf.methods import build_method
    from rrtf.train import load_training_problems, run
    from sandbox.base.store import read_state

    start = time.time()
    where = run_dir(out, condition, method, seed)
    shared = read_state(shared_dir(out, condition, seed) / "result.json") or {}
    training = build_method(method)
    seed_from_shared(shared_dir(out, condition, seed), where, training.uses_ranked_data)
    config = train_config(cfg, condition, seed, where, method)
    metrics = run(config)
    trained = time.time()
    _, evals = load_training_problems(config)
    loss = heldout_loss(config, str(where / "model"), evals)
    histories = [read_state(where / f"round{r}" / "log_history.json", expect=list) or [] for r in range(config.rounds)]
    steps = sum(max((h.get("step", 0) for h in history), default=0) for history in histories)  # optimizer steps, all rounds
    # What a standalone run pays: its own time plus, when it reused the shared samples, their sampling.
    reused = shared.get("sample_rank_s", 0.0) if training.uses_ranked_data else 0.0
    return {"condition": condition, "seed": seed, "method": method, "pass_at_1": metrics["eval_after"]["pass@1"],
            "pass_at_1_before": metrics["eval_before"]["pass@1"], "heldout_loss": loss, "rounds": config.rounds,
            "samples_per_prompt": cfg.num_samples, "optimizer_steps": steps, "learning_rate": config.learning_rate,
            "run_s": trained - start, "shared_sampling_s": reused,
            "wall_time_s": trained - start + reused, "verdicts": metrics.get("verdicts", {})}


def main(argv: list[str] | None = None) -> dict:
    from sandbox.base.store import write_state

    parser = argparse.ArgumentParser(prog="python -m rrtf.compare_methods.unit")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--condition", required=True)
    parser.add_argument("--seed", type=int, required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--method")
    which.add_argument("--shared", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    cfg = CompareMethodsConfig(**json.loads((out / CONFIG_FILE).read_text()))
    import torch

    torch.set_num_threads(cfg.threads)
    if args.shared:
        record, where = run_shared(cfg, out, args.condition, args.seed), shared_dir(out, args.condition, args.seed)
    else:
        record = run_method(cfg, out, args.condition, args.method, args.seed)
        where = run_dir(out, args.condition, args.method, args.seed)
    write_state(where / "result.json", record)
    return record


if __name__ == "__main__":
    from rrtf.cli import run_cli

    sys.exit(run_cli(main, prog="python -m rrtf.compare_methods.unit"))
