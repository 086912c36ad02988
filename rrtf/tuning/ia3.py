"""(IA)3 through PEFT: learned rescaling of keys/values (and the feed-forward input); merges.

Defaults are Astraios' for StarCoder (`c_attn` and `mlp.c_proj`, with `mlp.c_proj` as feed-forward) and
peft's own for Llama-family models (rrtf.tuning.targets)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.tuning.base import TUNING_METHODS, PeftTuningMethod


@dataclass
class IA3Options:
    ia3_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules whose output (or, for feed-forward ones, input) is rescaled. "
                                        "Default: Astraios' for StarCoder (c_attn, mlp.c_proj)."})
    ia3_feedforward_modules: list[str] | None = field(
        default=None, metadata={"help": "Which targets are feed-forward (rescaled at the input). Default: mlp.c_proj / down_proj."})


@TUNING_METHODS.register("ia3")
class IA3(PeftTuningMethod):
    options_class = IA3Options

    def target_modules(self, model) -> list[str]:
        from rrtf.tuning.targets import default_targets

        return list(self.options.ia3_target_modules or default_targets(model, "ia3", "ia3_target_modules"))

    def feedforward_modules(self, model) -> list[str]:
        from rrtf.tuning.targets import default_targets

        if self.options.ia3_feedforward_modules is not None:
            return list(self.options.ia3_feedforward_modules)
        if self.options.ia3_target_modules:  # own targets: feed-forward ones are named too (or none)
            return []
        return default_targets(model, "ia3_feedforward", "ia3_feedforward_modules")

    def validate(self, model, config=None) -> None:
        super().validate(model, config)
        stray = set(self.feedforward_modules(model)) - set(self.target_modules(model))
        if stray:
            raise ValueError(f"tuning method 'ia3': feed-forward modules {sorted(stray)} must also be target modules")

    def peft_config(self, model, config):
        from peft import IA3Config, TaskType

        return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=self.target_modules(model),
                         feedforward_modules=self.feedforward_modules(model))
