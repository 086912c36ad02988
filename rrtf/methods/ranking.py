"""RRTF itself: the ranking loss over every judged candidate plus SFT on the best teacher answer
(rrtf.trainer, docs/loss.md) -- as published (`rrtf`, the default) and with score-gap pair weights
(`rrtf_gap`, this project's variant)."""
from __future__ import annotations

import dataclasses

from rrtf.methods.base import METHODS, TrainingMethod
from rrtf.records import RankedGroup
from sandbox.base.records import Status


@METHODS.register("rrtf")
class RRTF(TrainingMethod):
    summary = "RRTF as published: L_rank (every ordered pair once, PanGu-Coder2 eqs. 2-4) + L_ft on the best teacher answer"


@METHODS.register("rrtf_gap")
class RRTFScoreGap(TrainingMethod):
    summary = "RRTF with each pair weighted by the ranker's score gap r_i - r_j (--rank_weighting score_gap)"

    def configure(self, config) -> None:
        config.rank_weighting = "score_gap"


def best_candidate_targets(groups: list[RankedGroup]) -> list[RankedGroup]:
    """Each group with its SFT target moved to its highest-reward passing candidate, whatever its source
    (RRHF's L_ft trains the best-scored response, i' = argmax_i r_i; RRTF as built here trains the best
    teacher answer). The teacher bonus keeps a passing teacher answer first when there is one, so with a
    teacher that passes this changes nothing; without teachers the best passing student sample becomes the
    target. A group with no passing candidate keeps no target (only its ranking term trains)."""
    out = []
    for g in groups:
        passing = [i for i, status in enumerate(g.statuses) if status == Status.PASSED.label]
        best = max(passing, key=lambda i: (g.rewards[i], -i)) if passing else g.best_teacher
        out.append(dataclasses.replace(g, best_teacher=best))
    return out


@METHODS.register("rrtf_best")
class RRTFBestCandidate(TrainingMethod):
    summary = "RRTF with RRHF's L_ft target: the highest-reward passing candidate of any source (the student's own when no teacher passes)"

    def training_groups(self, groups: list[RankedGroup]) -> list[RankedGroup]:
        return best_candidate_targets(groups)
