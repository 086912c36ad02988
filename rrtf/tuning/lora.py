"""LoRA through PEFT: low-rank adapters; only the adapter is trained and saved, and it merges."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.tuning.base import TUNING_METHODS, PeftTuningMethod


@dataclass
class LoraOptions:
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names for LoRA. Default: all linear layers of the model."})


@TUNING_METHODS.register("lora")
class LoRA(PeftTuningMethod):
    options_class = LoraOptions

    def peft_config(self, model, config):
        from peft import LoraConfig, TaskType

        o = self.options
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=o.lora_r, lora_alpha=o.lora_alpha, lora_dropout=o.lora_dropout,
            # PEFT's "all-linear": every nn.Linear except the output head (QLoRA's recipe)
            target_modules=o.lora_target_modules or "all-linear",
        )
