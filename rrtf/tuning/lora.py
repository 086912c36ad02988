"""LoRA through PEFT: low-rank adapters; only the adapter is trained and saved, and it merges.

Defaults are Astraios' for StarCoder (r=8, alpha=16, dropout 0.05 on `c_attn` and `c_proj`), with the
same roles on Llama-family models (rrtf.tuning.targets)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.tuning.base import TUNING_METHODS, PeftTuningMethod


@dataclass
class LoraOptions:
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names for LoRA ('all-linear' for every linear layer). "
                                        "Default: Astraios' for StarCoder (c_attn, c_proj), the same roles elsewhere."})


@TUNING_METHODS.register("lora")
class LoRA(PeftTuningMethod):
    options_class = LoraOptions

    def target_modules(self, model) -> list[str]:
        from rrtf.tuning.targets import default_targets

        targets = self.options.lora_target_modules
        if targets in (["all-linear"], "all-linear"):
            return []  # peft's own: every linear layer but the head
        return list(targets) if targets else default_targets(model, "lora", "lora_target_modules")

    def peft_config(self, model, config):
        from peft import LoraConfig, TaskType

        o = self.options
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=o.lora_r, lora_alpha=o.lora_alpha, lora_dropout=o.lora_dropout,
                          target_modules=self.target_modules(model) or "all-linear")
