"""P-tuning (Liu et al. 2021) through PEFT: 30 virtual tokens produced by an MLP prompt encoder, as
Astraios configured it. Trained and generated through rrtf.tuning.prompt_learning."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.prompt_learning import PromptLearningMethod


@dataclass
class PTuningOptions:
    p_tuning_num_virtual_tokens: int = field(default=30, metadata={"help": "Virtual tokens (Astraios: 30)."})
    p_tuning_encoder_hidden_size: int | None = field(default=None, metadata={"help": "Prompt encoder width. Default: the model's hidden size."})
    p_tuning_encoder_type: str = field(default="MLP", metadata={"help": "Prompt encoder: MLP (Astraios) or LSTM."})


@TUNING_METHODS.register("p_tuning")
class PTuning(PromptLearningMethod):
    options_class = PTuningOptions

    def num_virtual_tokens(self) -> int:
        return self.options.p_tuning_num_virtual_tokens

    def peft_config(self, model, config):
        from peft import PromptEncoderConfig, TaskType

        o = self.options
        extra = {"encoder_hidden_size": o.p_tuning_encoder_hidden_size} if o.p_tuning_encoder_hidden_size else {}
        return PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=o.p_tuning_num_virtual_tokens,
                                   encoder_reparameterization_type=o.p_tuning_encoder_type, **extra)
