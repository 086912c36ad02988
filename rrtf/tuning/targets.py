"""Which modules each method adapts, per architecture, and the check that they exist.

GPTBigCode (StarCoder) follows Astraios (bigcode-project/astraios `training/peft_config.py` and its peft
fork's mappings): LoRA on `c_attn` and `c_proj` -- peft matches a name by suffix, so `c_proj` is both the
attention output and `mlp.c_proj`, which is what gives Astraios' 0.315% --, (IA)3 on `c_attn` and
`mlp.c_proj` (feed-forward), AdapterH at the input of `c_fc` and the output of `mlp.c_proj`, AdapterP at the
output of `mlp.c_proj`, Parallel beside `c_attn` (Astraios also lists `q_attn`, which only exists in
cross-attention models and is never found in StarCoder, so it is left out).

Llama-family models get the same places by role: LoRA on q/k/v/o and the MLP output (`down_proj`),
(IA)3 as peft defaults it (k, v, `down_proj` feed-forward), adapters where the Astraios fork puts them
for Llama (input of `gate_proj`/`up_proj`, output of `down_proj`; Parallel beside q/k/v). StarCoder2 has
Llama's attention and GPTBigCode's MLP names.

Matching is peft's: a target `t` matches the module named `t` or any name ending in `.t`.
"""
from __future__ import annotations

LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2")

_BIGCODE = {
    "lora": ["c_attn", "c_proj"],
    "all_projections": ["c_attn", "c_proj", "c_fc"],  # every linear layer of attention and MLP (c_proj: both)
    "ia3": ["c_attn", "mlp.c_proj"],
    "ia3_feedforward": ["mlp.c_proj"],
    "adapter_h": ["c_fc:input", "mlp.c_proj:output"],
    "adapter_p": ["mlp.c_proj:output"],
    "parallel_adapter": ["c_attn:parallel"],
}
_LLAMA = {
    "lora": ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
    "all_projections": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "ia3": ["k_proj", "v_proj", "down_proj"],
    "ia3_feedforward": ["down_proj"],
    "adapter_h": ["gate_proj:input", "up_proj:input", "down_proj:output"],
    "adapter_p": ["down_proj:output"],
    "parallel_adapter": ["q_proj:parallel", "k_proj:parallel", "v_proj:parallel"],
}
_STARCODER2 = {
    "lora": ["q_proj", "k_proj", "v_proj", "o_proj", "mlp.c_proj"],
    "all_projections": ["q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "mlp.c_proj"],
    "ia3": ["k_proj", "v_proj", "mlp.c_proj"],
    "ia3_feedforward": ["mlp.c_proj"],
    "adapter_h": ["c_fc:input", "mlp.c_proj:output"],
    "adapter_p": ["mlp.c_proj:output"],
    "parallel_adapter": ["q_proj:parallel", "k_proj:parallel", "v_proj:parallel"],
}
DEFAULT_TARGETS: dict[str, dict[str, list[str]]] = {"gpt_bigcode": _BIGCODE, "starcoder2": _STARCODER2,
                                                   **{name: _LLAMA for name in LLAMA_FAMILY}}


def model_type(model) -> str:
    model = getattr(model, "module", model)
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", "") or type(model).__name__)


def default_targets(model, role: str, option: str) -> list[str]:
    """The default targets of `role` (lora, ia3, adapter_h, ...) for `model`'s architecture."""
    kind = model_type(model)
    if kind not in DEFAULT_TARGETS:
        known = ", ".join(sorted(DEFAULT_TARGETS))
        raise ValueError(f"no default target modules for architecture {kind!r} (known: {known}); "
                         f"name them with --{option}")
    return list(DEFAULT_TARGETS[kind][role])


def matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def check_targets(model, targets: list[str], method: str, *, linear_only: bool = False) -> dict[str, list[str]]:
    """{target: matching module names}; a ValueError naming the architecture and its linear layers when
    a target matches nothing (peft only insists that *some* target matches, so a misspelt one would be
    silently skipped) or, with `linear_only`, matches a module that is not an nn.Linear."""
    import torch

    model = getattr(model, "module", model)
    names = [name for name, _ in model.named_modules()]
    linear = sorted({".".join(n.split(".")[-2:]) for n, m in model.named_modules()
                     if isinstance(m, torch.nn.Linear) and not n.endswith("lm_head")} - {""})
    found: dict[str, list[str]] = {}
    for target in targets:
        hits = [n for n in names if matches(n, target) and not n.endswith("lm_head")]
        if not hits:
            raise ValueError(f"tuning method {method!r}: target module {target!r} is not in this {model_type(model)} model "
                             f"({type(model).__name__}); its linear layers are: {', '.join(linear)}")
        if linear_only:
            bad = [n for n in hits if not isinstance(model.get_submodule(n), torch.nn.Linear)]
            if bad:
                raise ValueError(f"tuning method {method!r}: target {target!r} matches {bad[0]}, which is a "
                                 f"{type(model.get_submodule(bad[0])).__name__}, not a linear layer")
        found[target] = hits
    return found


__all__ = ["DEFAULT_TARGETS", "LLAMA_FAMILY", "check_targets", "default_targets", "matches", "model_type"]
