"""Bitune (arXiv 2405.14862): the prompt encoded twice -- bidirectionally and causally, each pass with
its own LoRA adapter -- and the two passes' keys and values mixed per layer with learned coefficients.
The model and its attention are rrtf.tuning._bitune_model; this is the registered method: options,
checks, saving (peft's two adapters + `bitune_mix.safetensors`).

Unlike the official code (batch size 1, transformers 4.38, Gemma/Llama/Phi only) it trains padded
batches in both RRTF layouts, on GPTBigCode's multi-query cache and Llama-family models, with
activation checkpointing (non-reentrant only: a reentrant checkpoint runs the bidirectional pass
without gradients, so its adapter would silently never learn -- refused).

Ablations: `--bitune_mixing false` (no mixing: the answer sees the bidirectional features only) and
`--bitune_shared_weights true` (one adapter for both prompt passes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.wrapped import WrappedPeftMethod

MIX_FILE = "bitune_mix.safetensors"


# Each pass's LoRA adapter, by name. "lora" (the default): this project's LoRA defaults, so that Bitune and LoRA compare
# at the same adapter and Bitune's own contribution (the two passes and the mixing) is what differs. "paper": the
# official code's (github.com/dkopi/Bitune finetune.py: LoraConfig(r=8, lora_alpha=1) on every module named *_proj,
# i.e. every projection of attention and MLP, peft's default dropout 0).
ADAPTER_SETTINGS = {
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "targets": "lora"},
    "paper": {"r": 8, "alpha": 1, "dropout": 0.0, "targets": "all_projections"},
}


@dataclass
class BituneOptions:
    bitune_settings: str = field(default="lora", metadata={
        "help": "Each pass's LoRA adapter: 'lora' (default: LoRA's r 8, alpha 16, dropout 0.05, LoRA's targets, as the "
                "lora method) or 'paper' (the official code's: r 8, alpha 1, no dropout, every attention and MLP projection). "
                "The flags below override single values."})
    bitune_lora_r: int | None = field(default=None, metadata={"help": "Rank of each pass's LoRA adapter. Default: the settings'."})
    bitune_lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha of each pass's adapter. Default: the settings'."})
    bitune_lora_dropout: float | None = field(default=None, metadata={"help": "LoRA dropout of each pass's adapter. Default: the settings'."})
    bitune_target_modules: list[str] | None = field(default=None, metadata={
        "help": "LoRA targets. Default: the settings' (rrtf.tuning.targets: LoRA's, or every projection)."})
    bitune_mixing: bool = field(default=True, metadata={"help": "False: no mixing, the answer attends to the bidirectional features only (ablation)."})
    bitune_shared_weights: bool = field(default=False, metadata={"help": "True: one adapter for both prompt passes (ablation)."})
    bitune_mix_init: float = field(default=0.01, metadata={"help": "Initial theta (with s = 0.01, 0.01 is a 50/50 start)."})


@TUNING_METHODS.register("bitune")
class Bitune(WrappedPeftMethod):
    options_class = BituneOptions
    mergeable = False
    identity_at_init = False  # the bidirectional features change the output before any training

    def settings(self) -> dict:
        o = self.options
        if o.bitune_settings not in ADAPTER_SETTINGS:
            raise ValueError(f"bitune_settings must be one of {', '.join(ADAPTER_SETTINGS)}, got {o.bitune_settings!r}")
        base = ADAPTER_SETTINGS[o.bitune_settings]
        given = {"r": o.bitune_lora_r, "alpha": o.bitune_lora_alpha, "dropout": o.bitune_lora_dropout}
        return {**base, **{k: v for k, v in given.items() if v is not None}}

    def target_modules(self, model) -> list[str]:
        from rrtf.tuning.targets import default_targets

        return list(self.options.bitune_target_modules or default_targets(model, self.settings()["targets"], "bitune_target_modules"))

    def peft_config(self, model, config):
        from peft import LoraConfig, TaskType

        s = self.settings()
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=s["r"], lora_alpha=s["alpha"], lora_dropout=s["dropout"],
                          target_modules=self.target_modules(model))

    def validate(self, model, config=None) -> None:
        super().validate(model, config)
        model = getattr(model, "module", model)
        if not type(model)._can_set_attn_implementation():
            raise ValueError(f"tuning method 'bitune' needs a model whose attention goes through transformers' AttentionInterface "
                             f"(GPTBigCode, Llama, Mistral, Qwen, ...); {type(model).__name__} does not")
        impl = getattr(model.config, "_attn_implementation", None) or ""
        if "flash" in impl:
            raise ValueError(f"tuning method 'bitune' computes attention with SDPA and custom masks; load the model without {impl}")
        if config is not None and (getattr(config, "activation_checkpointing", False) or getattr(config, "gradient_checkpointing", False)):
            kwargs = getattr(config, "activation_checkpointing_kwargs", None) or getattr(config, "gradient_checkpointing_kwargs", None) or {}
            if isinstance(kwargs, dict) and kwargs.get("use_reentrant"):
                raise ValueError("tuning method 'bitune' with use_reentrant=True activation checkpointing: the bidirectional pass "
                                 "would run without gradients and its adapter would never learn; use the default (non-reentrant)")

    def make_model(self, inner):
        from rrtf.tuning._bitune_model import BIDIR_ADAPTER, BituneModel

        o = self.options
        if not o.bitune_shared_weights and BIDIR_ADAPTER not in inner.peft_config:
            inner.add_adapter(BIDIR_ADAPTER, self.peft_config(inner.get_base_model(), None))
        return BituneModel(inner, mixing=o.bitune_mixing, shared_weights=o.bitune_shared_weights, mix_init=o.bitune_mix_init)

    def save_weights(self, model, out_dir: Path) -> None:
        from safetensors.torch import save_file

        super().save_weights(model, out_dir)
        mix = {k: v.detach().cpu().contiguous() for k, v in model.mix.state_dict().items()}
        if mix:
            save_file(mix, str(out_dir / MIX_FILE), metadata={"format": "pt"})

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        from rrtf.tuning.base import peft_without_unused_gptqmodel

        peft_without_unused_gptqmodel()
        from peft import PeftModel

        from rrtf.modeling import load_model
        from rrtf.tuning._bitune_model import BIDIR_ADAPTER

        inner = PeftModel.from_pretrained(load_model(base_path, dtype="float32"), str(saved_dir), is_trainable=trainable)
        if (Path(saved_dir) / BIDIR_ADAPTER).is_dir():
            inner.load_adapter(str(Path(saved_dir) / BIDIR_ADAPTER), adapter_name=BIDIR_ADAPTER, is_trainable=trainable)
        model = self.make_model(inner)
        self._load_mix(model, saved_dir)
        model.requires_grad_(False)
        if trainable:
            model.train_adapters()
            model.mix.requires_grad_(True)
        return model

    def load_weights(self, model, saved_dir) -> None:
        super().load_weights(model, saved_dir)
        model = getattr(model, "module", model)
        model.train_adapters()
        self._load_mix(model, saved_dir)

    @staticmethod
    def _load_mix(model, saved_dir) -> None:
        from safetensors.torch import load_file

        path = Path(saved_dir) / MIX_FILE
        if model.mix.mixing:
            if not path.exists():
                raise FileNotFoundError(f"{saved_dir}: no {MIX_FILE} (the Bitune mixing coefficients)")
            model.mix.load_state_dict(load_file(str(path)))
