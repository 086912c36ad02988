"""Prompt tuning (Lester et al. 2021) through PEFT: virtual token embeddings trained directly, started
randomly or from a text's embeddings. Trained and generated through rrtf.tuning.prompt_learning."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.prompt_learning import PromptLearningMethod


@dataclass
class PromptTuningOptions:
    prompt_tuning_num_virtual_tokens: int = field(default=30, metadata={"help": "Virtual tokens."})
    prompt_tuning_init_text: str | None = field(
        default=None, metadata={"help": "Start the virtual tokens from this text's embeddings (repeated to length). Default: random."})


@TUNING_METHODS.register("prompt_tuning")
class PromptTuning(PromptLearningMethod):
    options_class = PromptTuningOptions

    def num_virtual_tokens(self) -> int:
        return self.options.prompt_tuning_num_virtual_tokens

    def peft_config(self, model, config):
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        o = self.options
        text = {}
        if o.prompt_tuning_init_text:
            name = getattr(getattr(model, "config", None), "_name_or_path", None)
            text = {"prompt_tuning_init": PromptTuningInit.TEXT, "prompt_tuning_init_text": o.prompt_tuning_init_text,
                    "tokenizer_name_or_path": name}
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=o.prompt_tuning_num_virtual_tokens, **text)
