"""Tuning methods (full fine-tuning, LoRA, adapters, Bitune, ...): one registered class each, and the
hooks the rest of the system calls -- nothing method-specific lives in the trainer, the loop or the exporters.

    method = build_tuning_method(config)        # config.tuning_method, options from config.tuning_options
    model = method.apply(model, config)         # validate (clear error before any training), then wrap/freeze
    method.save(model, out_dir)                 # a round's result / the final model (+ rrtf_tuning.json)
    model = method.load(base_path, saved_dir)   # resume a finished round (every method)
    method.load_weights(model, ckpt_dir)        # resume a Trainer checkpoint (own_checkpoints methods)
    plain = method.merge(model)                 # a plain transformers model for export and servers
    layout = method.layout(default)             # how a ranked group is laid out for the loss (optional)
    gen = method.generation_model(model)        # what generation runs (a custom prefill, optional)
    trainable, total = count_parameters(model)  # peft's accounting (added parameters count in "all")

Options: each method may declare `options_class`, a dataclass whose fields are the method's flags
(prefixed with its name, e.g. lora_r), parsed from the CLI and YAML next to RRTFConfig and attached
as `config.tuning_options`; Python callers set it directly or get the defaults.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from rrtf.registry import Registry

METHOD_CARD = "rrtf_tuning.json"  # written next to every saved model: which method and options made it


class NotMergeable(ValueError):
    """The method's trained weights cannot be folded into a plain model (said before long work starts)."""


class TuningMethod(ABC):
    registry_name: str = ""
    options_class: type | None = None
    #: True when only added weights are trained and saved (the base model stays frozen).
    is_adapter: bool = False
    #: False when merge() cannot give a plain model (e.g. prompt tuning keeps virtual tokens).
    mergeable: bool = True
    #: True when the applied, untrained model computes exactly what the base model does (zero-initialised
    #: additions); False makes the loop evaluate "before" on the base model itself.
    identity_at_init: bool = True
    #: True when the Trainer's checkpoints are written by `save` and read back by `load_weights`
    #: (methods the Trainer cannot checkpoint by itself: own adapters, Bitune).
    own_checkpoints: bool = False

    def __init__(self, options: Any = None):
        if options is None and self.options_class is not None:
            options = self.options_class()
        if options is not None and self.options_class is not None and not isinstance(options, self.options_class):
            raise ValueError(f"tuning method {self.registry_name!r} takes {self.options_class.__name__}, got {type(options).__name__}")
        self.options = options

    # -- what to train -------------------------------------------------------------------------------
    def apply(self, model, config=None):
        """The model to train (wrapped, or with parameters frozen/unfrozen), after `validate`. Added
        weights are drawn from a generator seeded by the run's seed (rrtf.seeds), so that two runs of
        one configuration -- a killed one and its reference, say -- start from the same adapters."""
        import torch

        from rrtf.seeds import derive_seed

        peft_without_unused_gptqmodel()
        if self.is_applied(model):
            return self.wrap(model, config)
        self.validate(model, config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(getattr(config, "seed", 0), "tuning-init", self.registry_name))
            return self.wrap(model, config)

    def validate(self, model, config=None) -> None:
        """Refuse an incompatible combination (a missing target module, an unsupported layout or
        checkpointing mode, ...) with a clear ValueError, before any training starts."""
        return None  # an optional hook: full fine-tuning has nothing to check

    def is_applied(self, model) -> bool:
        """True when `model` already carries this method (a later round goes on training it)."""
        return False

    @abstractmethod
    def wrap(self, model, config=None):
        """Return the model to train (called by `apply` after validation)."""

    # -- saving and loading --------------------------------------------------------------------------
    def save(self, model, out_dir) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.save_weights(getattr(model, "module", model), out_dir)
        self.write_card(out_dir)

    def save_weights(self, model, out_dir: Path) -> None:
        model.save_pretrained(str(out_dir))

    def write_card(self, out_dir: Path) -> None:
        from sandbox.base.store import write_state

        options = asdict(self.options) if is_dataclass(self.options) else None
        write_state(Path(out_dir) / METHOD_CARD, {"tuning_method": self.registry_name, "options": options})

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        """The model as `save` left it in `saved_dir` (on top of `base_path` for adapters)."""
        from rrtf.modeling import load_model

        model = load_model(saved_dir, dtype="float32")
        model.requires_grad_(trainable)
        return model

    def load_weights(self, model, saved_dir) -> None:
        """Load what `save` wrote into an already applied `model` (resuming a Trainer checkpoint);
        only called for `own_checkpoints` methods."""
        raise NotImplementedError(f"tuning method {self.registry_name!r} leaves its checkpoints to the Trainer")

    # -- export and generation -----------------------------------------------------------------------
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


def load_saved(base_path, saved_dir, *, trainable: bool = False):
    """(method, model) for a directory any method's `save` wrote (it names itself in rrtf_tuning.json)."""
    from sandbox.base.store import read_state

    card = read_state(Path(saved_dir) / METHOD_CARD)
    if card is None:
        raise FileNotFoundError(f"{saved_dir} has no readable {METHOD_CARD}: not saved by an rrtf tuning method")
    cls = TUNING_METHODS.get(card["tuning_method"])
    options = cls.options_class(**card["options"]) if cls.options_class is not None and card.get("options") else None
    method = cls(options)
    return method, method.load(base_path, saved_dir, trainable=trainable)


def peft_without_unused_gptqmodel() -> None:
    """Keep peft from importing GPTQModel where no model uses it. peft asks, of every module it wraps
    or counts, whether it is a GPTQModel quantized linear, and imports gptqmodel to find out: ~10 s and a
    60-line banner on stdout (before `python -m rrtf.tuning params --json`'s JSON). A module can only be
    one once gptqmodel is imported (a GPTQ model was loaded with it), so until then peft is told it is
    absent; afterwards it asks as before. Idempotent; call it before peft wraps or loads a model."""
    import sys

    import peft  # noqa: F401  (its submodules are what is patched)

    for name, module in list(sys.modules.items()):
        original = getattr(module, "is_gptqmodel_available", None) if name.split(".")[0] == "peft" else None
        if original is None or getattr(original, "rrtf_lazy", False):
            continue

        def available(original=original) -> bool:
            return "gptqmodel" in sys.modules and original()

        available.rrtf_lazy = True
        module.is_gptqmodel_available = available


def count_parameters(model) -> tuple[int, int]:
    """(trainable, all) exactly as peft's `get_nb_trainable_parameters` counts them (parameters the
    method adds are part of "all"), for any module: peft models, own adapters, Bitune."""
    peft_without_unused_gptqmodel()
    from peft import PeftModel

    return PeftModel.get_nb_trainable_parameters(getattr(model, "module", model))


class PeftTuningMethod(TuningMethod):
    """A tuning method that is one PEFT config: subclasses only say which config (LoRA, (IA)3, ...)."""

    is_adapter = True

    @abstractmethod
    def peft_config(self, model, config):
        """The peft.PeftConfig to wrap `model` with."""

    def target_modules(self, model) -> list[str]:
        """Module names the config targets (checked against the model before training)."""
        return []

    def validate(self, model, config=None) -> None:
        from rrtf.tuning.targets import check_targets

        check_targets(model, self.target_modules(model), self.registry_name)

    def is_applied(self, model) -> bool:
        from peft import PeftModel

        return isinstance(model, PeftModel)

    def wrap(self, model, config=None):
        from peft import get_peft_model  # imported here so `full` needs no peft

        if self.is_applied(model):  # a later round goes on training the adapter it already has
            return model
        return get_peft_model(model, self.peft_config(model, config))

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        peft_without_unused_gptqmodel()
        from peft import PeftModel

        from rrtf.modeling import load_model

        model = PeftModel.from_pretrained(load_model(base_path, dtype="float32"), str(saved_dir), is_trainable=trainable)
        if not trainable:  # peft leaves e.g. a P-tuning prompt encoder trainable in inference mode
            model.requires_grad_(False)
        return model

    def merge(self, model):
        self.check_mergeable()
        model = getattr(model, "module", model)
        from peft import PeftModel

        if isinstance(model, PeftModel):
            import copy

            return copy.deepcopy(model).merge_and_unload()
        return model


__all__ = ["METHOD_CARD", "TUNING_METHODS", "NotMergeable", "PeftTuningMethod", "TuningMethod", "build_tuning_method",
           "count_parameters", "load_saved", "option_classes", "peft_without_unused_gptqmodel"]
