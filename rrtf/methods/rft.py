"""Rejection-sampling fine-tuning (RFT): SFT on every candidate the sandbox passed -- the student's own
passing samples and the teachers' passing answers alike -- each as its own target, token-mean NLL as in
SFT. Candidates that fail any test are dropped; a prompt with no passing candidate teaches nothing."""
from __future__ import annotations

from rrtf.methods.base import METHODS, TrainingMethod
from rrtf.records import RankedGroup
from sandbox.base.records import Status

PASSED = Status.PASSED.label  # RankedGroup.statuses holds verdict labels


def passing_groups(groups: list[RankedGroup]) -> list[RankedGroup]:
    """One single-answer group per passing candidate (best_teacher=0 makes it the SFT target); the same
    code passing twice for one prompt is trained once per sample, as sampled."""
    out = []
    for g in groups:
        for i, response in enumerate(g.responses):
            if i < len(g.statuses) and g.statuses[i] == PASSED:
                out.append(RankedGroup(task_id=g.task_id, prompt=g.prompt, responses=[response], rewards=[g.rewards[i]],
                                       sources=[g.sources[i]] if i < len(g.sources) else [], statuses=[PASSED], best_teacher=0,
                                       round=g.round))
    return out


@METHODS.register("rft")
class RFT(TrainingMethod):
    summary = "SFT on every passing candidate, student samples and teacher answers (rejection-sampling fine-tuning)"

    def configure(self, config) -> None:
        config.rank_loss = False

    def training_groups(self, groups: list[RankedGroup]) -> list[RankedGroup]:
        return passing_groups(groups)
