"""CompareMethodsConfig: flags and YAML (`--config`) of `python -m rrtf.compare_methods`; the conditions."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rrtf.options import SandboxOptions, identity_of, learning_rate_overrides

ALL_METHODS = ["rrtf", "rrtf_gap", "sft", "rft", "dpo", "grpo", "multi_round"]
BASELINE = "rrtf"  # every method is compared, seed by seed, against RRTF as published
PAPER_TEACHERS = ["dataset:default", "dataset:default-weak"]  # data_evol's embedded teachers, strong then weak


@dataclass
class CompareMethodsConfig(SandboxOptions):
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS), metadata={"help": "Training methods (rrtf.methods)."})
    conditions: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "default (the embedded tiny default, the dataset's reference as the one teacher), paper (data_evol problems "
                "with its 'default' and 'default-weak' teachers' answers), no_teacher (the embedded default, students only)."})
    seeds: list[int] = field(default_factory=lambda: [42, 1, 2], metadata={"help": "Seeds (sampling, data order, training)."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "Student to start from. Default: the warm tiny StarCoder."})
    # The budget, the same for every method (docs/methods.md says how each spends it).
    max_problems: int | None = field(default=64, metadata={"help": "Training prompts (default condition; the paper's uses all of its file)."})
    eval_max_problems: int | None = field(default=128, metadata={"help": "Held-out problems (greedy pass@1 and held-out loss)."})
    num_samples: int = field(default=4, metadata={"help": "Generated student samples per prompt, every method (over all rounds)."})
    max_new_tokens: int = 64
    num_train_epochs: float = field(default=2.0, metadata={"help": "Passes over the round's samples (GRPO: num_iterations)."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Prompts per optimizer step."})
    learning_rate: float = field(default=5e-4, metadata={"help": "One learning rate for every method (RRTF's default)."})
    learning_rates: list[str] = field(default_factory=list, metadata={
        "help": "Per-method overrides, METHOD=LR (e.g. dpo=5e-6 grpo=1e-5: TRL's recipes use far lower rates than RRTF's)."})
    paper_dataset: str = field(default="outputs/evol-default/problems.jsonl", metadata={
        "help": "Problems of the paper's condition (`python -m data_evol` writes them; made here if missing)."})
    threads: int = field(default=2, metadata={"help": "torch threads per run."})
    output_dir: str = field(default="outputs/compare-methods", metadata={"help": "Runs, results.json, results.md, plot."})
    disable_tqdm: bool = False

    # What makes finished runs incomparable (the rest decide only what runs or how it is shown).
    IDENTITY_FIELDS = frozenset({"model_name_or_path", "max_problems", "eval_max_problems", "num_samples", "max_new_tokens",
                                 "num_train_epochs", "per_device_train_batch_size", "learning_rate", "learning_rates", "paper_dataset",
                                 "threads"})

    def __post_init__(self):
        from rrtf.methods import METHODS

        for name in self.methods:
            METHODS.get(name)  # unknown: one line naming the known ones
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"unknown condition {unknown[0]!r}; known: {', '.join(CONDITIONS)}")
        for name in self.lr_overrides():
            METHODS.get(name)

    def lr_overrides(self) -> dict[str, float]:
        return learning_rate_overrides(self.learning_rates)

    def lr_for(self, method: str) -> float:
        return self.lr_overrides().get(method, self.learning_rate)

    def identity(self) -> dict:
        identity = identity_of(self)
        if not self.learning_rates:  # no override: the same runs as before the option existed
            identity.pop("learning_rates", None)
        return identity

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]


def condition_overrides(cfg: CompareMethodsConfig, condition: str) -> dict[str, Any]:
    """The RRTFConfig fields a condition sets on top of the budget."""
    if condition == "default":
        return {}
    if condition == "no_teacher":
        return {"teachers": []}
    if condition == "paper":  # a file has no held-out split: evaluate on the embedded default's held-out tasks
        return {"dataset": cfg.paper_dataset, "max_problems": None, "teachers": list(PAPER_TEACHERS),
                "eval_dataset": "tiny-tasks:heldout"}
    raise ValueError(f"unknown condition {condition!r}")


CONDITIONS = {
    "default": "embedded default: tiny-tasks, the dataset's reference answer as the one (always right) teacher",
    "paper": "the paper's: data_evol problems, teachers of different quality (data_evol's 'default' and 'default-weak')",
    "no_teacher": "no teacher: tiny-tasks, the student's own samples only",
}
