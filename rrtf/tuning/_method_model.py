"""The torch side of rrtf.tuning.wrapped: the MethodModel base class and mask helpers."""
from __future__ import annotations

import torch
from torch import nn


def attention_mask_for(model, allowed: torch.Tensor) -> torch.Tensor:
    """A bool [B, 1, Q, K] mask as the model's attention implementation takes it (additive floats for eager)."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", "eager")
    if impl and "flash" in impl:
        raise ValueError(f"attention implementation {impl!r} takes no custom 4-D mask; use sdpa or eager")
    if impl not in (None, "eager"):
        return allowed
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, torch.finfo(torch.float32).min)


class MethodModel(nn.Module):
    """A trained wrapper around `inner` (a PeftModel): the attributes the Trainer and the transformers
    backend read are the inner model's."""

    is_method_model = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    @property
    def base(self):
        """The transformers model (with any injected adapter layers)."""
        return self.inner.get_base_model()

    @property
    def config(self):
        return self.base.config

    @property
    def generation_config(self):
        return self.base.generation_config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        self.base.activation_checkpointing_enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs)
        self.base.enable_input_require_grads()

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None, **kwargs):
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def activation_checkpointing_disable(self):
        self.base.activation_checkpointing_disable()

    gradient_checkpointing_disable = activation_checkpointing_disable

    @property
    def is_activation_checkpointing(self) -> bool:
        return bool(getattr(self.base, "is_activation_checkpointing", False))


__all__ = ["MethodModel", "attention_mask_for"]
