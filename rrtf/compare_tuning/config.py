"""CompareConfig: one dataclass for flags and YAML (`--config`) of `python -m rrtf.compare_tuning`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from rrtf.options import SandboxOptions, identity_of, learning_rate_overrides

BASE = "base"  # the untrained model, measured once (no training): what every method starts from
ALL_METHODS = ["full", "lora", "ia3", "p_tuning", "prompt_tuning", "adapter_h", "adapter_p", "parallel_adapter", "bitune"]


@dataclass
class CompareConfig(SandboxOptions):
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "Checkpoint every method starts from. Default: the embedded warm tiny StarCoder."})
    methods: list[str] = field(default_factory=lambda: [BASE, *ALL_METHODS], metadata={
        "help": "Tuning methods to compare ('base': the untrained model, measured once)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds per method (pass@1: mean and spread)."})
    dataset: str = field(default="tiny-tasks", metadata={"help": "Training problems (rrtf.datasets); held-out: its eval split."})
    max_problems: int | None = field(default=128, metadata={"help": "Training problems (sampled once from the base model)."})
    eval_dataset: str | None = field(default=None, metadata={"help": "Default: the held-out split of `dataset`."})
    eval_max_problems: int | None = field(default=64, metadata={"help": "Held-out problems for loss and pass@1."})
    eval_datasets: list[str] = field(default_factory=list, metadata={
        "help": "Further benchmarks every trained model is evaluated on (greedy, eval_max_problems each; e.g. aatk "
                "humanevalpack-python:fix-tests): greedy@1 and their own scores per method in the report."})
    rank_loss: bool = field(default=True, metadata={"help": "RRTF (ranked candidates); false: SFT on teacher answers."})
    num_samples: int = field(default=4, metadata={"help": "Base-model samples per training prompt (ranked once, shared by all)."})
    max_new_tokens: int = 64
    max_steps: int = field(default=30, metadata={"help": "Optimizer steps per method and seed (the same budget for all)."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Ranked groups per step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "One learning rate for every method (Astraios' protocol)."})
    learning_rates: list[str] = field(default_factory=list, metadata={
        "help": "Per-method overrides, METHOD=LR (e.g. prompt_tuning=3e-2)."})
    lr_scheduler_type: str = "cosine"  # Astraios: cosine, warm-up, weight decay 0.05, one learning rate for all
    warmup_steps: int = 3
    weight_decay: float = 0.05
    max_length: int = field(default=256, metadata={"help": "Max tokens of prompt + one response."})
    bf16: bool | None = field(default=None, metadata={"help": "Default: on where the GPU supports it."})
    threads: int = field(default=1, metadata={"help": "torch threads per run (the same for every method)."})
    output_dir: str = field(default="outputs/compare-tuning", metadata={"help": "Results, per-run records, table and plots."})
    results_json: str | None = field(default=None, metadata={"help": "Also write the summary here (e.g. benchmarks/results/compare_tuning.json)."})
    seed: int = field(default=0, metadata={"help": "Seed of the shared data (sampling the base model)."})
    disable_tqdm: bool = False

    # Fields whose change makes finished runs incomparable (the rest only decide what to run or show); the
    # sandbox's limits count too (SandboxOptions).
    IDENTITY_FIELDS = frozenset({"model_name_or_path", "dataset", "max_problems", "eval_dataset", "eval_max_problems", "eval_datasets", "rank_loss",
                "num_samples",
                "max_new_tokens", "max_steps", "per_device_train_batch_size", "learning_rate", "learning_rates",
                "lr_scheduler_type", "warmup_steps", "weight_decay", "max_length", "bf16", "threads", "seed"})

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in ALL_METHODS and m != BASE]
        if unknown:
            from rrtf.tuning import TUNING_METHODS

            for name in unknown:
                TUNING_METHODS.get(name)  # a clear error naming the known methods
        self.lr_for(self.methods[0] if self.methods else "full")

    def lr_for(self, method: str) -> float:
        return learning_rate_overrides(self.learning_rates).get(method, self.learning_rate)

    def identity(self) -> dict:
        return identity_of(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]
