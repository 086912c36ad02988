"""RRTF itself: the ranking loss over every judged candidate plus SFT on the best teacher answer
(rrtf.trainer, docs/loss.md) -- as published (`rrtf`, the default) and with score-gap pair weights
(`rrtf_gap`, this project's variant)."""
from __future__ import annotations

from rrtf.methods.base import METHODS, TrainingMethod


@METHODS.register("rrtf")
class RRTF(TrainingMethod):
    summary = "RRTF as published: L_rank (every ordered pair once, PanGu-Coder2 eqs. 2-4) + L_ft on the best teacher answer"


@METHODS.register("rrtf_gap")
class RRTFScoreGap(TrainingMethod):
    summary = "RRTF with each pair weighted by the ranker's score gap r_i - r_j (--rank_weighting score_gap)"

    def configure(self, config) -> None:
        config.rank_weighting = "score_gap"
