"""Bottleneck adapters (AdapterH, AdapterP, Parallel), written here because peft has none (its issue
#244 is open) and AdapterHub's `adapters` has no GPTBigCode.

An adapter is x -> up(act(down(dropout(x)))) * scaling, placed on a linear layer in one of three ways
(the Astraios peft fork's `mh_adapter` / `output_adapter` / `parallel_adapter`):

    input     base(x + adapter(x))            AdapterH at the input of `c_fc`
    output    base(x) + adapter(base(x))      AdapterH / AdapterP at the output of `mlp.c_proj`
    parallel  base(x) + adapter(x)            Parallel beside `c_attn` (down: in_features, up: out_features)

No biases (as Astraios), the adapter computed in float32 whatever the base dtype (as the fork), and
two initialisations:

    zero    down as nn.Linear's default, up = 0: the adapted model starts exactly as the base model
            (the default: RRTF samples its first round and measures "before" on the model being trained,
            and an adapter that changes the model before training muddles both -- LoRA starts the same way)
    normal  both N(0, 0.02), the BERT init Astraios used (LLM-Adapters' "bert"): the model changes
            before training

Saving mirrors peft: `adapter_config.json` and `adapter_model.safetensors` holding only the adapter
weights; loading rebuilds the adapters on the base model and checks every weight is there. They do not
merge: the tanh between the projections is not linear.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from rrtf.tuning.base import TuningMethod

KINDS = ("input", "output", "parallel")
INITS = ("zero", "normal")
ADAPTER_PARAM = ("adapter_down", "adapter_up")


def bottleneck_options(prefix: str, *, doc: str, targets_help: str) -> type:
    """The options dataclass of one bottleneck method: the same fields, prefixed with its name."""
    fields = [
        (f"{prefix}_bottleneck_size", int, field(default=256, metadata={"help": "Bottleneck width (Astraios: 256)."})),
        (f"{prefix}_non_linearity", str, field(default="tanh", metadata={"help": "Activation between the projections."})),
        (f"{prefix}_dropout", float, field(default=0.0, metadata={"help": "Dropout on the adapter's input."})),
        (f"{prefix}_scaling", float, field(default=1.0, metadata={"help": "Multiplier of the adapter's output."})),
        (f"{prefix}_init", str, field(default="zero", metadata={
            "help": "zero: up-projection zero, the model starts unchanged (default); normal: N(0, 0.02) as Astraios."})),
        (f"{prefix}_target_modules", list[str] | None, field(default=None, metadata={"help": targets_help})),
    ]
    cls = make_dataclass(f"{''.join(p.title() for p in prefix.split('_'))}Options", fields)
    cls.__doc__ = doc
    cls.__module__ = f"rrtf.tuning.{prefix}"
    return cls


@dataclass
class BottleneckSpec:
    """A bottleneck method's settings, read from its prefixed options (or an adapter_config.json)."""

    bottleneck_size: int = 256
    non_linearity: str = "tanh"
    dropout: float = 0.0
    scaling: float = 1.0
    init: str = "zero"
    targets: dict[str, str] = field(default_factory=dict)  # module name suffix -> kind


def make_adapter_layer(base, kind: str, spec: BottleneckSpec):
    """A module replacing the linear layer `base` (kept as `base_layer`) with an adapter placed by `kind`."""
    import math

    import torch
    from torch import nn
    from transformers.activations import ACT2FN

    class BottleneckLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.base_layer = base
            self.kind = kind
            self.scaling = spec.scaling
            dim_in = base.out_features if kind == "output" else base.in_features
            dim_out = base.in_features if kind == "input" else base.out_features
            device = base.weight.device
            # float32 adapters on a bf16/fp16 base, as peft keeps LoRA weights (and the fork computes in float32)
            dtype = base.weight.dtype if base.weight.dtype == torch.float64 else torch.float32
            self.adapter_down = nn.Linear(dim_in, spec.bottleneck_size, bias=False, device=device, dtype=dtype)
            self.adapter_up = nn.Linear(spec.bottleneck_size, dim_out, bias=False, device=device, dtype=dtype)
            self.act = ACT2FN[spec.non_linearity]
            self.adapter_dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
            if device.type != "meta":
                if spec.init == "normal":  # the BERT init Astraios' adapters start from
                    nn.init.normal_(self.adapter_down.weight, std=0.02)
                    nn.init.normal_(self.adapter_up.weight, std=0.02)
                else:
                    nn.init.kaiming_uniform_(self.adapter_down.weight, a=math.sqrt(5))
                    nn.init.zeros_(self.adapter_up.weight)

        @property
        def weight(self):  # code that inspects the adapted layer (peft, tied weights) still finds its weight
            return self.base_layer.weight

        def adapter(self, x):
            h = self.adapter_down(self.adapter_dropout(x.to(self.adapter_down.weight.dtype)))
            return (self.adapter_up(self.act(h)) * self.scaling).to(x.dtype)

        def forward(self, x):
            if self.kind == "input":
                return self.base_layer(x + self.adapter(x))
            y = self.base_layer(x)
            return y + self.adapter(y if self.kind == "output" else x)

        def extra_repr(self) -> str:
            return f"kind={self.kind}, scaling={self.scaling}"

    return BottleneckLinear()


def adapter_state_dict(model) -> dict[str, Any]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters()
            if any(part in name.split(".") for part in ADAPTER_PARAM)}


class BottleneckMethod(TuningMethod):
    """AdapterH / AdapterP / Parallel: subclasses set `prefix` (their option names) and `default_kind`."""

    is_adapter = True
    mergeable = False
    own_checkpoints = True
    default_kind = "output"

    @property
    def identity_at_init(self) -> bool:  # type: ignore[override]
        return self.spec_options().init == "zero"

    def spec_options(self, targets: dict[str, str] | None = None) -> BottleneckSpec:
        o, p = self.options, self.registry_name
        return BottleneckSpec(bottleneck_size=getattr(o, f"{p}_bottleneck_size"), non_linearity=getattr(o, f"{p}_non_linearity"),
                              dropout=getattr(o, f"{p}_dropout"), scaling=float(getattr(o, f"{p}_scaling")),
                              init=getattr(o, f"{p}_init"), targets=targets or {})

    def targets(self, model) -> dict[str, str]:
        """{module name suffix: kind} from `NAME[:KIND]` entries (the option, or the architecture's default)."""
        from rrtf.tuning.targets import default_targets

        option = f"{self.registry_name}_target_modules"
        entries = getattr(self.options, option) or default_targets(model, self.registry_name, option)
        out: dict[str, str] = {}
        for entry in entries:
            name, _, kind = str(entry).partition(":")
            kind = kind or self.default_kind
            if kind not in KINDS:
                raise ValueError(f"--{option} {entry}: the placement must be one of {', '.join(KINDS)}")
            out[name] = kind
        return out

    def validate(self, model, config=None) -> None:
        from transformers.activations import ACT2FN

        from rrtf.tuning.targets import check_targets

        spec = self.spec_options()
        p = self.registry_name
        if spec.init not in INITS:
            raise ValueError(f"--{p}_init {spec.init}: choose one of {', '.join(INITS)}")
        if spec.non_linearity not in ACT2FN:
            raise ValueError(f"--{p}_non_linearity {spec.non_linearity}: unknown activation")
        if spec.bottleneck_size < 1:
            raise ValueError(f"--{p}_bottleneck_size must be >= 1")
        check_targets(model, list(self.targets(model)), p, linear_only=True)

    def is_applied(self, model) -> bool:
        model = getattr(model, "module", model)
        return any(name.endswith("adapter_down") for name, _ in model.named_modules())

    def wrap(self, model, config=None):
        if self.is_applied(model):  # a later round goes on training the adapters it already has
            return model
        return inject(model, self.spec_options(self.targets(model)))

    def save_weights(self, model, out_dir: Path) -> None:
        from dataclasses import asdict

        from safetensors.torch import save_file

        from sandbox.base.store import write_state

        config = getattr(model, "config", None)
        write_state(out_dir / "adapter_config.json", {
            "rrtf_tuning_method": self.registry_name, "base_model_name_or_path": getattr(config, "_name_or_path", None),
            "model_type": getattr(config, "model_type", None), **asdict(self.spec_options(_saved_targets(model)))})
        save_file(adapter_state_dict(model), str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        from rrtf.modeling import load_model

        config = json.loads((Path(saved_dir) / "adapter_config.json").read_text())
        spec = BottleneckSpec(**{k: config[k] for k in BottleneckSpec.__dataclass_fields__})
        model = inject(load_model(base_path, dtype="float32"), spec)
        self.load_weights(model, saved_dir)
        for name, p in model.named_parameters():
            p.requires_grad_(trainable and any(part in name.split(".") for part in ADAPTER_PARAM))
        return model

    def load_weights(self, model, saved_dir) -> None:
        from safetensors.torch import load_file

        model = getattr(model, "module", model)
        saved = load_file(str(Path(saved_dir) / "adapter_model.safetensors"))
        own = adapter_state_dict(model)
        if set(saved) != set(own):
            missing, extra = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
            raise ValueError(f"{saved_dir}: adapter weights do not fit this model (missing {missing[:3]}, unexpected {extra[:3]})")
        params = dict(model.named_parameters())
        for name, value in saved.items():
            params[name].data.copy_(value)


def inject(model, spec: BottleneckSpec):
    """Replace every target linear layer of `model` by an adapted one and freeze everything else."""
    from rrtf.tuning.targets import matches

    model.requires_grad_(False)
    names = [name for name, _ in model.named_modules()]
    for name in names:
        kind = next((k for t, k in spec.targets.items() if matches(name, t)), None)
        if kind is None or name.endswith("lm_head"):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = make_adapter_layer(getattr(parent, child), kind, spec)
        layer.base_layer.requires_grad_(False)
        setattr(parent, child, layer)
    model.rrtf_bottleneck_targets = dict(spec.targets)  # what save() records
    return model


def _saved_targets(model) -> dict[str, str]:
    return dict(getattr(model, "rrtf_bottleneck_targets", {}))


__all__ = ["BottleneckMethod", "BottleneckSpec", "adapter_state_dict", "bottleneck_options", "inject", "make_adapter_layer"]
