"""One training run of the comparison -- a method and a seed -- in its own process, so that its peak
memory is its own: `python -m rrtf.compare_tuning.unit --output_dir OUT --method NAME --seed N` reads the
comparison's config and shared data from OUT and writes OUT/runs/NAME-seedN/result.json (atomically;
its presence means "done")."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rrtf.compare_tuning.config import BASE, CompareConfig
from rrtf.compare_tuning.data import as_records, load, train_config

CONFIG_FILE = "compare_config.json"


def run_dir(out: Path, method: str, seed: int) -> Path:
    return out / "runs" / f"{method}-seed{seed}"


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time of every optimizer step (forward, backward, update)."""

        def __init__(self):
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._sync()
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._sync()
            self.times.append(time.perf_counter() - self._start)

        @staticmethod
        def _sync():
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    return StepTimer()


def peak_memory_mb() -> tuple[float, str]:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def run_unit(cfg: CompareConfig, out: Path, method: str, seed: int) -> dict:
    import torch

    from rrtf.backends import build_backend
    from rrtf.evaluate import EvalConfig, evaluate
    from rrtf.evaluate.static_scores import headline
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.trainer import build_trainer
    from rrtf.tuning.base import count_parameters
    from sandbox import Sandbox

    torch.set_num_threads(cfg.threads)
    start = time.time()
    data = load(cfg, out)
    where = run_dir(out, method, seed)
    tcfg = train_config(cfg, data.base, where, tuning_method=method, seed=seed, max_steps=cfg.max_steps,
                        per_device_train_batch_size=cfg.per_device_train_batch_size, per_device_eval_batch_size=8,
                        learning_rate=cfg.lr_for(method), lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_steps,
                        weight_decay=cfg.weight_decay,
                        logging_steps=1, save_strategy="no", eval_strategy="no")
    tokenizer = load_tokenizer(data.base)
    timer = step_timer()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if method == BASE:  # the untrained model: measured, not trained
        tcfg = train_config(cfg, data.base, where, tuning_method="full", per_device_eval_batch_size=8)
    trainer = build_trainer(load_model(data.base, dtype=torch.float32), tokenizer, tcfg, as_records(data.train),
                            as_records(data.heldout_groups), callbacks=[timer])
    trainable, total = count_parameters(trainer.model)
    if method == BASE:
        trainable = 0
    else:
        trainer.train()
    memory, memory_kind = peak_memory_mb()
    curve = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    held = trainer.evaluate()
    model = trainer.tuning_method.generation_model(trainer.model)
    eval_cfg = EvalConfig(num_samples=0, greedy=True, max_new_tokens=cfg.max_new_tokens, prompt_template=tcfg.prompt_template,
                          output_file=None, samples_file=str(where / "heldout.samples.jsonl"), seed=seed, tag=f"{method}-seed{seed}")
    with Sandbox(cfg.sandbox_config()) as sandbox:
        result = evaluate(data.heldout, build_backend("transformers", model=model, tokenizer=tokenizer), sandbox, eval_cfg)
    last = [loss for _, loss in curve[-5:]] or [float("nan")]
    steps = timer.times[1:] or timer.times or [float("nan")]  # the first step also warms up allocators and kernels
    return {
        "method": method, "seed": seed, "trainable": trainable, "all": total, "trainable_percent": 100.0 * trainable / total,
        "learning_rate": tcfg.learning_rate, "steps": trainer.state.global_step,
        "final_train_loss": sum(last) / len(last), "heldout_loss": held["eval_loss_sft"], "heldout_rrtf_loss": held["eval_loss"],
        "pass_at_1": next(iter(result.datasets.values())).greedy_pass_at_1, "step_time_s": statistics.median(steps),
        # --eval_datasets: every dataset after the held-out one, its greedy@1 and its own headline scores
        "benchmarks": {name: {"greedy@1": d.greedy_pass_at_1, **headline(d.metrics), **({"error": d.error} if d.error else {})}
                       for name, d in list(result.datasets.items())[1:]},
        "peak_memory_mb": memory, "memory_kind": memory_kind, "loss_curve": curve, "wall_time_s": time.time() - start,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def main(argv: list[str] | None = None) -> dict:
    from sandbox.base.store import write_state

    parser = argparse.ArgumentParser(prog="python -m rrtf.compare_tuning.unit")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    cfg = CompareConfig(**json.loads((out / CONFIG_FILE).read_text()))
    record = run_unit(cfg, out, args.method, args.seed)
    write_state(run_dir(out, args.method, args.seed) / "result.json", record)
    return record


if __name__ == "__main__":
    from rrtf.cli import run_cli

    sys.exit(run_cli(main, prog="python -m rrtf.compare_tuning.unit"))
