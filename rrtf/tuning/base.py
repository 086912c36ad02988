"""Tuning methods (full fine-tuning, LoRA, ...): one registered class each, and the hooks the rest of
the system calls -- nothing method-specific lives in the trainer, the loop or the exporters.

    method = build_tuning_method(config)        # config.tuning_method, options from config.tuning_options
    model = method.apply(model, config)         # what to train (frozen/unfrozen, wrapped)
    method.save(model, out_dir)                 # a round's result / the final model
    model = method.load(base_path, saved_dir)   # resume a finished round (every method)
    plain = method.merge(model)                 # a plain transformers model for export and servers
    layout = method.layout(default)             # how a ranked group is laid out for the loss (optional)
    gen = method.generation_model(model)        # what generation runs (a custom prefill, optional)

Options: each method may declare `options_class`, a dataclass whose fields are the method's flags
(prefixed with its name, e.g. lora_r), parsed from the CLI and YAML next to RRTFConfig and attached
as `config.tuning_options`; Python callers set it directly or get the defaults.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rrtf.registry import Registry


class NotMergeable(ValueError):
    """The method's trained weights cannot be folded into a plain model (said before long work starts)."""


class TuningMethod(ABC):
    registry_name: str = ""
    options_class: type | None = None
    #: True when only added weights are trained and saved (the base model stays frozen).
    is_adapter: bool = False
    #: False when merge() cannot give a plain model (e.g. prompt tuning keeps virtual tokens).
    mergeable: bool = True

    def __init__(self, options: Any = None):
        if options is None and self.options_class is not None:
            options = self.options_class()
        if options is not None and self.options_class is not None and not isinstance(options, self.options_class):
            raise ValueError(f"tuning method {self.registry_name!r} takes {self.options_class.__name__}, got {type(options).__name__}")
        self.options = options

    @abstractmethod
    def apply(self, model, config):
        """Return the model to train (wrapped, or with parameters frozen/unfrozen)."""

    def save(self, model, out_dir) -> None:
        getattr(model, "module", model).save_pretrained(str(out_dir))

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        """The model as `save` left it in `saved_dir` (on top of `base_path` for adapters)."""
        from rrtf.modeling import load_model

        model = load_model(saved_dir, dtype="float32")
        model.requires_grad_(trainable)
        return model

    def check_mergeable(self) -> None:
        if not self.mergeable:
            raise NotMergeable(f"tuning method {self.registry_name!r} cannot be merged into plain weights; "
                               "export or serve the student with the transformers backend instead")

    def merge(self, model):
        """A plain transformers model with the trained weights folded in (export, serving backends)."""
        self.check_mergeable()
        return getattr(model, "module", model)

    def layout(self, default):
        """The group layout the loss scores with (rrtf.packing); methods that change the forward override."""
        return default

    def generation_model(self, model):
        """What generation runs for this method (a custom prefill overrides it)."""
        return model


TUNING_METHODS: Registry[type[TuningMethod]] = Registry("tuning method", package="rrtf.tuning")


def build_tuning_method(config_or_name, options: Any = None) -> TuningMethod:
    """From a name, or from a config with `tuning_method` (and optionally `tuning_options`)."""
    if isinstance(config_or_name, str):
        return TUNING_METHODS.get(config_or_name)(options)
    cls = TUNING_METHODS.get(config_or_name.tuning_method)
    opts = options if options is not None else getattr(config_or_name, "tuning_options", None)
    if opts is not None and cls.options_class is not None and not isinstance(opts, cls.options_class):
        opts = None  # options of another method (a config reused across methods): this one's defaults
    return cls(opts)


def option_classes() -> list[type]:
    """Every registered method's options dataclass (for the CLI / YAML parser)."""
    seen: list[type] = []
    for _, cls in TUNING_METHODS.items():
        if cls.options_class is not None and cls.options_class not in seen:
            seen.append(cls.options_class)
    return seen


class PeftTuningMethod(TuningMethod):
    """A tuning method that is one PEFT config: subclasses only say which config (LoRA, (IA)3, ...)."""

    is_adapter = True

    @abstractmethod
    def peft_config(self, model, config):
        """The peft.PeftConfig to wrap `model` with."""

    def apply(self, model, config):
        from peft import PeftModel, get_peft_model  # imported here so `full` needs no peft

        if isinstance(model, PeftModel):  # a later round goes on training the adapter it already has
            return model
        return get_peft_model(model, self.peft_config(model, config))

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        from peft import PeftModel

        from rrtf.modeling import load_model

        return PeftModel.from_pretrained(load_model(base_path, dtype="float32"), str(saved_dir), is_trainable=trainable)

    def merge(self, model):
        self.check_mergeable()
        model = getattr(model, "module", model)
        from peft import PeftModel

        if isinstance(model, PeftModel):
            import copy

            return copy.deepcopy(model).merge_and_unload()
        return model


__all__ = ["TUNING_METHODS", "NotMergeable", "PeftTuningMethod", "TuningMethod", "build_tuning_method", "option_classes"]
