"""Full fine-tuning: every parameter of the model is trained and saved."""
from __future__ import annotations

from rrtf.tuning.base import TUNING_METHODS, TuningMethod


@TUNING_METHODS.register("full")
class FullFineTuning(TuningMethod):
    is_adapter = False

    def wrap(self, model, config=None):
        for param in model.parameters():
            param.requires_grad_(True)  # a checkpoint saved with frozen parts trains whole again
        return model
