"""Methods whose forward is not the model's own (virtual tokens, Bitune's two prompt passes) train a
small wrapper module: one `forward` per batch -- so DistributedDataParallel sees one call per step --
taking the layout's dense view (rrtf.packing.DenseBatch), and a `generate` with the method's prefill
that the transformers backend calls like a model's. The peft model inside is saved and loaded as peft
does (adapter_config.json + adapter_model.safetensors); the Trainer's checkpoints go through the same
`save` / `load_weights` (TuningMethod.own_checkpoints). The torch side is rrtf.tuning._method_model.
"""
from __future__ import annotations

from pathlib import Path

from rrtf.tuning.base import PeftTuningMethod


class WrappedPeftMethod(PeftTuningMethod):
    """A peft method trained through a MethodModel (subclasses say which in `make_model`)."""

    own_checkpoints = True

    def make_model(self, inner):
        """The MethodModel (rrtf.tuning._method_model) around the peft model `inner`."""
        raise NotImplementedError

    def is_applied(self, model) -> bool:
        return bool(getattr(getattr(model, "module", model), "is_method_model", False))

    def wrap(self, model, config=None):
        if self.is_applied(model):
            return model
        return self.make_model(super().wrap(model, config))

    def save_weights(self, model, out_dir: Path) -> None:
        model.inner.save_pretrained(str(out_dir))

    def load(self, base_path, saved_dir, *, trainable: bool = True):
        return self.make_model(super().load(base_path, saved_dir, trainable=trainable))

    def load_weights(self, model, saved_dir) -> None:
        inner = getattr(model, "module", model).inner
        for name in list(inner.peft_config):
            where = Path(saved_dir) if name == "default" else Path(saved_dir) / name
            inner.load_adapter(str(where), adapter_name=name, is_trainable=True)
        inner.set_adapter("default")

    def merge(self, model):
        self.check_mergeable()  # prompt learning and Bitune never merge; kept for subclasses that could
        return super().merge(getattr(model, "module", model).inner)

    def layout(self, default):
        from rrtf.packing import MethodLayout

        return MethodLayout(default, lambda model, dense: model(input_ids=dense.input_ids, position_ids=dense.position_ids,
                                                                 allowed=dense.allowed, keep=dense.keep,
                                                                 prompt_lengths=dense.prompt_lengths))

    def generation_model(self, model):
        return getattr(model, "module", model)


__all__ = ["WrappedPeftMethod"]
