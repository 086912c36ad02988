"""The shared part of P-tuning and prompt tuning (peft's prompt learning): virtual tokens in front of the
prompt, trained through rrtf.tuning._prefix_model in both layouts and in generation. They change the model
from the start (the virtual tokens are random or text) and never merge into plain weights."""
from __future__ import annotations

from rrtf.tuning.wrapped import WrappedPeftMethod


class PromptLearningMethod(WrappedPeftMethod):
    mergeable = False
    identity_at_init = False

    def make_model(self, inner):
        from rrtf.tuning._prefix_model import PrefixModel

        return PrefixModel(inner)

    def num_virtual_tokens(self) -> int:
        raise NotImplementedError

    def validate(self, model, config=None) -> None:
        n = self.num_virtual_tokens()
        if n < 1:
            raise ValueError(f"tuning method {self.registry_name!r}: the number of virtual tokens must be >= 1, got {n}")
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        length = getattr(config, "max_length", 0)
        if getattr(config, "packed", True):
            length = getattr(config, "max_packed_length", None) or 4 * length
        if limit and config is not None and length + n > limit:
            raise ValueError(f"tuning method {self.registry_name!r}: {n} virtual tokens + max_packed_length {length} exceed "
                             f"the model's {limit} positions; lower --max_packed_length / --max_length or the number of virtual tokens")


__all__ = ["PromptLearningMethod"]
