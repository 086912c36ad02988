"""The shared part of P-tuning and prompt tuning (peft's prompt learning): virtual tokens in front of the
prompt, trained through rrtf.tuning._prefix_model in both layouts and in generation. They change the model
from the start (the virtual tokens are random or text) and never merge into plain weights."""
from __future__ import annotations

from pathlib import Path

from rrtf.tuning.wrapped import WrappedPeftMethod

# peft saves a prompt-learning adapter as its virtual tokens only (for P-tuning: the MLP encoder's output),
# which is all inference needs but cannot go on training; the encoder's own weights are kept next to it.
ENCODER_FILE = "rrtf_prompt_encoder.safetensors"


class PromptLearningMethod(WrappedPeftMethod):
    mergeable = False
    identity_at_init = False

    def make_model(self, inner):
        from rrtf.tuning._prefix_model import PrefixModel

        return PrefixModel(inner)

    def num_virtual_tokens(self) -> int:
        raise NotImplementedError

    def save_weights(self, model, out_dir: Path) -> None:
        from safetensors.torch import save_file

        super().save_weights(model, out_dir)
        state = {k: v.detach().cpu().contiguous() for k, v in model.inner.prompt_encoder.state_dict().items()}
        save_file(state, str(Path(out_dir) / ENCODER_FILE), metadata={"format": "pt"})

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        model = super().load(base_path, saved_dir, trainable=trainable)
        if trainable:  # going on training needs the encoder, not only its output
            self.load_weights(model, saved_dir)
        return model

    def load_weights(self, model, saved_dir) -> None:
        from safetensors.torch import load_file

        path = Path(saved_dir) / ENCODER_FILE
        if not path.exists():
            raise FileNotFoundError(f"{saved_dir}: no {ENCODER_FILE} (the prompt encoder's weights, needed to go on training)")
        inner = getattr(model, "module", model).inner
        inner.prompt_encoder.load_state_dict(load_file(str(path)))
        for param in inner.prompt_encoder.parameters():
            param.requires_grad_(True)

    def validate(self, model, config=None) -> None:
        n = self.num_virtual_tokens()
        if n < 1:
            raise ValueError(f"tuning method {self.registry_name!r}: the number of virtual tokens must be >= 1, got {n}")
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if limit and n >= limit:  # rows longer than the positions left are refused at their forward
            raise ValueError(f"tuning method {self.registry_name!r}: {n} virtual tokens exceed the model's {limit} positions")


__all__ = ["PromptLearningMethod"]
