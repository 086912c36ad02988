"""Bitune (Kopiczko et al. 2024, arXiv 2405.14862) on current transformers, any batch size, padding,
both RRTF layouts, multi-query (GPTBigCode) and grouped-query (Llama) caches.

Per example the prompt without its last token (the "head") is encoded twice: once with full attention
among its tokens and the `bitune_bidir` LoRA adapter, once causally with the `default` adapter. Per
layer the two passes' keys and values are mixed,

    mixed = (causal * s + bidir * |theta|) / (s + |theta|),   s = 0.01, theta = 0.01 at the start (50/50),

with one theta per layer for keys and one for values (the official code's variant 607), and every
later token -- the prompt's last token, then the answer -- attends to the mixed keys and values.
Gradients reach both adapters and theta through both prompt passes.

How, without the official code's modified model classes: the model's attention implementation is
set to `rrtf_bitune` (registered with transformers' AttentionInterface, computing with SDPA), and a
context object travels with the forward call's keyword arguments down to every attention layer:

    capture   the bidirectional pass records each layer's keys/values;
    mix       the main causal pass over the whole row (head, last prompt token, answers) uses its own
              keys for the head's queries (so the head is exactly the causal pass) and the mixed keys
              for every later query, in one forward with the layout's mask (packed or separate).

So training is two forwards (the head bidirectionally, the row causally), the context survives
activation checkpointing (non-reentrant recomputation replays the same keyword arguments), and
DistributedDataParallel sees one `forward` per step. Generation prefills the same way -- the head
bidirectionally, the head causally into a DynamicCache, the cache mixed -- and then decodes with the
model's own `generate` from the mixed cache. Without a context the attention is plain SDPA.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from rrtf.tuning._method_model import MethodModel

ATTENTION = "rrtf_bitune"
BIDIR_ADAPTER = "bitune_bidir"
MIX_S = 0.01  # s in the mixing formula (the official code's threshold for variant 607)


def register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionInterface.register(ATTENTION, bitune_attention)
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # generation's masks: SDPA's (bool)


@dataclass
class Capture:
    """The bidirectional pass: each layer's keys/values, by layer index."""

    keys: dict[int, torch.Tensor] = field(default_factory=dict)
    values: dict[int, torch.Tensor] = field(default_factory=dict)
    unused: torch.Tensor | None = None


@dataclass
class Mix:
    """The main pass: head columns [B, H] (H = widest head) and the captured bidirectional keys/values."""

    capture: Capture
    head: torch.Tensor
    mix: nn.Module


def bitune_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, bitune=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def attend(q, k, v, mask):
        return sdpa_attention_forward(module, q, k, v, mask, dropout=dropout, scaling=scaling, **kwargs)[0]

    layer = module.layer_idx
    if isinstance(bitune, Capture):
        bitune.keys[layer], bitune.values[layer] = key, value
    if not isinstance(bitune, Mix):
        return attend(query, key, value, attention_mask), None
    if attention_mask is None or attention_mask.dtype != torch.bool:
        raise ValueError("Bitune's training forward takes the layout's bool 4-D mask")
    width = bitune.head.shape[1]
    head = bitune.head[:, None, :, None]  # [B, 1, H, 1]: which of the first H key columns are head tokens
    causal_k, causal_v = key[:, :, :width], value[:, :, :width]
    mixed_k = torch.where(head, bitune.mix("k", layer, causal_k, bitune.capture.keys[layer]), causal_k)
    mixed_v = torch.where(head, bitune.mix("v", layer, causal_v, bitune.capture.values[layer]), causal_v)
    out = attend(query, torch.cat([mixed_k, key[:, :, width:]], 2), torch.cat([mixed_v, value[:, :, width:]], 2), attention_mask)
    # the head's own queries are the causal pass: they see the unmixed keys (only head keys, all within H)
    own = attend(query[:, :, :width], causal_k, causal_v, attention_mask[:, :, :width, :width])
    first = torch.where(bitune.head[:, :, None, None], own, out[:, :width])  # [B, H, heads, dim]
    return torch.cat([first, out[:, width:]], dim=1), None


class BituneMix(nn.Module):
    """theta_k, theta_v [layers]; `mixing=False` is the no-mixing ablation (the bidirectional features only)."""

    def __init__(self, n_layers: int, *, mixing: bool = True, init: float = 0.01, device=None):
        super().__init__()
        self.mixing = mixing
        if mixing:
            self.theta_k = nn.Parameter(torch.full((n_layers,), float(init), device=device))
            self.theta_v = nn.Parameter(torch.full((n_layers,), float(init), device=device))

    def forward(self, which: str, layer: int, causal: torch.Tensor, bidir: torch.Tensor) -> torch.Tensor:
        if not self.mixing:
            return bidir
        theta = (self.theta_k if which == "k" else self.theta_v)[layer].float().abs()
        return ((causal.float() * MIX_S + bidir.float() * theta) / (MIX_S + theta)).to(causal.dtype)


def head_masks(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bidirectional, causal) bool [B, 1, H, H] masks over head columns; a non-head query (padding,
    or a row's own tail inside the first H columns) sees only itself, so no row is empty."""
    width = head.shape[1]
    eye = torch.eye(width, dtype=torch.bool, device=head.device)
    tril = torch.ones(width, width, dtype=torch.bool, device=head.device).tril()
    both = head[:, :, None] & head[:, None, :]
    return (both | eye).unsqueeze(1), ((both & tril) | eye).unsqueeze(1)


class BituneModel(MethodModel):
    def __init__(self, inner, *, mixing: bool = True, shared_weights: bool = False, mix_init: float = 0.01):
        super().__init__(inner)
        register_attention()
        base = self.base
        if not type(base)._can_set_attn_implementation():
            raise ValueError(f"Bitune needs a model whose attention goes through transformers' AttentionInterface; "
                             f"{type(base).__name__} does not")
        base.set_attn_implementation(ATTENTION)
        n_layers = base.config.get_text_config().num_hidden_layers
        self.mix = BituneMix(n_layers, mixing=mixing, init=mix_init, device=base.get_input_embeddings().weight.device)
        self.bidir_adapter = "default" if shared_weights else BIDIR_ADAPTER
        self.train_adapters()

    def train_adapters(self) -> None:
        """peft freezes inactive adapters; both of Bitune's are trained (as the official `enable_loras`)."""
        for name, param in self.inner.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)

    def tuner_layers(self) -> list:
        from peft.tuners.tuners_utils import BaseTunerLayer

        if getattr(self, "_tuner_layers", None) is None:
            self._tuner_layers = [m for m in self.inner.modules() if isinstance(m, BaseTunerLayer)]
        return self._tuner_layers

    @contextlib.contextmanager
    def adapter(self, name):
        """Run with one LoRA adapter active, without peft's set_adapter (which freezes the other)."""
        layers = self.tuner_layers()
        before = [m._active_adapter for m in layers]
        for m in layers:
            m._active_adapter = name if isinstance(name, list) else [name]
        try:
            yield
        finally:
            for m, was in zip(layers, before):
                m._active_adapter = was

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        """Checkpointing that recomputes a layer with the adapter it ran with: the backward pass replays
        the bidirectional pass's layers after `adapter()` has switched back to the default adapter."""
        kwargs_ = dict(activation_checkpointing_kwargs or {"use_reentrant": False})
        if kwargs_.get("use_reentrant"):
            raise ValueError("Bitune needs non-reentrant activation checkpointing (use_reentrant=False): a reentrant "
                             "checkpoint runs the bidirectional pass without gradients")
        super().activation_checkpointing_enable(kwargs_, **kwargs)
        for module in self.base.modules():
            func = getattr(module, "_gradient_checkpointing_func", None)
            if func is not None and not getattr(func, "keeps_adapter", False):
                module._gradient_checkpointing_func = self._keeping_adapter(func)

    def _keeping_adapter(self, checkpoint):
        def checkpoint_with_adapter(function, *args, **kwargs):
            active = self.tuner_layers()[0]._active_adapter if self.tuner_layers() else None

            def replay(*a, **k):
                with self.adapter(active) if active is not None else contextlib.nullcontext():
                    return function(*a, **k)

            return checkpoint(replay, *args, **kwargs)

        checkpoint_with_adapter.keeps_adapter = True
        return checkpoint_with_adapter

    def encode_head(self, input_ids, position_ids, head) -> Capture:
        """The bidirectional pass over the head columns: every layer's keys and values (and, as
        `capture.unused`, the pass's output, which nothing reads)."""
        capture = Capture()
        bidir, _ = head_masks(head)
        with self.adapter(self.bidir_adapter):
            out = self.base.base_model(input_ids=input_ids, attention_mask=bidir, position_ids=position_ids, use_cache=False,
                                       bitune=capture)
        capture.unused = out.last_hidden_state
        return capture

    def forward(self, input_ids, position_ids, allowed, keep, prompt_lengths):
        head = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :] < (prompt_lengths - 1)[:, None]
        width = int((prompt_lengths - 1).max().clamp(min=0))
        context = None
        if width > 0:
            head = head[:, :width]
            capture = self.encode_head(input_ids[:, :width], position_ids[:, :width], head)
            context = Mix(capture=capture, head=head, mix=self.mix)
        with self.adapter("default"):
            logits = self.base(input_ids=input_ids, attention_mask=allowed, position_ids=position_ids, logits_to_keep=keep,
                               use_cache=False, bitune=context).logits
        if context is not None and torch.is_grad_enabled():
            # Only keys and values are taken from the bidirectional pass (as in the official code), so its last
            # layer's query/output/MLP adapters feed nothing; they take part with a zero gradient, so that
            # DistributedDataParallel (which checkpointing runs without find_unused_parameters) sees them used.
            logits = logits + 0.0 * context.capture.unused.sum()
        return logits

    @torch.no_grad()
    def prefill(self, input_ids, attention_mask):
        """The mixed cache of a left-padded batch's heads (every column but the last)."""
        from transformers import DynamicCache

        ids, real = input_ids[:, :-1], attention_mask[:, :-1].bool()
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, :-1]
        capture = self.encode_head(ids, positions, real)
        _, causal = head_masks(real)
        cache = DynamicCache(config=self.config)
        with self.adapter("default"):
            self.base.base_model(input_ids=ids, attention_mask=causal, position_ids=positions, use_cache=True, cache=cache)
        head = real[:, None, :, None]
        for i, layer in enumerate(cache.layers):
            layer.keys = torch.where(head, self.mix("k", i, layer.keys, capture.keys[i]), layer.keys)
            layer.values = torch.where(head, self.mix("v", i, layer.values, capture.values[i]), layer.values)
        return cache

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """Two-pass prefill of the prompts (left-padded), then ordinary decoding with the mixed cache."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if input_ids.shape[1] < 2:
            with self.adapter("default"):
                return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        cache = self.prefill(input_ids, attention_mask)
        with self.adapter("default"):
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, cache=cache, **kwargs)


__all__ = ["ATTENTION", "BIDIR_ADAPTER", "BituneMix", "BituneModel", "MIX_S", "bitune_attention", "head_masks", "register_attention"]
