"""Multi-round RRTF: the student is re-sampled from its improved self each round (`--rounds`, at least
2). The sample budget is the same as one round's: `--num_samples` is what each prompt gets over all
rounds, split evenly (6 over 2 rounds: 3 per round), so the comparison stays at equal generated samples."""
from __future__ import annotations

import math
from typing import Any

from rrtf.methods.base import METHODS, TrainingMethod


@METHODS.register("multi_round")
class MultiRoundRRTF(TrainingMethod):
    summary = "RRTF over several rounds, the student re-sampled each round (num_samples split over the rounds)"
    uses_ranked_data = False  # its round 0 samples fewer candidates than the one-round methods share

    def configure(self, config) -> None:
        if config.rounds < 2:
            config.rounds = 2

    def sampler_overrides(self, config, r: int) -> dict[str, Any]:
        return {"num_samples": per_round_samples(config.num_samples, config.rounds)}


def per_round_samples(total: int, rounds: int) -> int:
    return max(1, math.ceil(total / rounds)) if total else 0
