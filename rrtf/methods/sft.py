"""SFT on the best teacher answer of each prompt: RRTF's own trainer with the ranking term off, the same
ranked data (only each group's best teacher answer is packed; students cost nothing)."""
from __future__ import annotations

from rrtf.methods.base import METHODS, TrainingMethod


@METHODS.register("sft")
class SFT(TrainingMethod):
    summary = "SFT on the best teacher answer of each prompt (L_ft alone)"
    needs_teacher = True

    def configure(self, config) -> None:
        config.rank_loss = False
