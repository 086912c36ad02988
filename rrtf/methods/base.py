"""Training methods (RRTF, SFT, RFT, DPO, GRPO, ...): what one round of `python -m rrtf.train` does with
the rollout, one registered class each -- the loop, resume, evaluation and report stay rrtf.train's.

    training = build_method(config)           # config.method
    training.configure(config)                # the config fields the method fixes (RRTFConfig.__post_init__)
    model, history, stats = training.run_round(runner, r, model, tokenizer, problems, sandbox, student, tuning)

The default round is RRTF's: sample the student and the teachers, judge, rank (runner.sample_and_rank,
resumable), turn the ranked groups into the method's training data (`training_groups`), train
(runner.train_round: resume from checkpoints, save the round's model). A method that trains online
(GRPO) replaces `run_round`; one that trains with another trainer (DPO) passes `make_trainer`.

Modules here are imported by the registry's discovery and by RRTFConfig: they must stay cheap to import
(torch, trl and the trainers are imported inside the methods that use them).
"""
from __future__ import annotations

from typing import Any

from rrtf.records import RankedGroup
from rrtf.registry import Registry


class TrainingMethod:
    registry_name: str = ""
    #: one line for `--help`, docs/methods.md and the comparison's table
    summary: str = ""
    #: True when the method trains on the ranked groups of round 0 (the comparison samples them once and
    #: shares them among such methods); False when it samples on its own (GRPO, multi-round RRTF).
    uses_ranked_data: bool = True
    #: True when it needs a teacher answer per prompt (SFT on the best teacher): not run without teachers.
    needs_teacher: bool = False

    def configure(self, config) -> None:
        """Set the config fields this method fixes. Called from RRTFConfig.__post_init__, so it must be
        idempotent (dataclasses.replace runs it again on the result)."""

    def sampler_overrides(self, config, r: int) -> dict[str, Any]:
        """SamplerConfig fields that differ in round r (multi-round RRTF splits the sample budget)."""
        return {}

    def training_groups(self, groups: list[RankedGroup]) -> list[RankedGroup]:
        """The ranked groups as this method trains on them (RRTF: unchanged)."""
        return groups

    def make_trainer(self, config, model, tokenizer, groups: list[RankedGroup], tuning, args):
        """The Trainer of a round; None: RRTFTrainer on `groups` (runner.train_round's default)."""
        return None

    def run_round(self, runner, r: int, model, tokenizer, problems, sandbox, student, tuning):
        """One round: (trained model, the Trainer's log history, statistics for the report)."""
        groups, stats = runner.sample_and_rank(r, student, problems, sandbox, **self.sampler_overrides(runner.config, r))
        if not groups:
            raise ValueError(f"round {r}: ranking kept no prompt to train on ({stats.get('dropped')}); see {runner.path(f'round{r}')}")
        data = self.training_groups(groups)
        if not data:
            raise ValueError(f"round {r}: method {self.registry_name} found nothing to train on among {len(groups)} ranked groups")
        factory = lambda args: self.make_trainer(runner.config, model, tokenizer, data, tuning, args)  # noqa: E731
        model, history = runner.train_round(r, model, tokenizer, data, tuning, make_trainer=factory)
        return model, history, stats


METHODS: Registry[type[TrainingMethod]] = Registry("training method", package="rrtf.methods")


def build_method(config_or_name) -> TrainingMethod:
    name = config_or_name if isinstance(config_or_name, str) else config_or_name.method
    return METHODS.get(name)()


def training_arguments(config) -> dict[str, Any]:
    """The transformers TrainingArguments fields of an RRTFConfig, by name: a TRL config built from them
    trains with the same schedule, batch, precision, logging and checkpointing as RRTFTrainer does
    (TRL's own defaults -- gradient checkpointing on, bf16 on, logging every 10 steps -- do not leak in)."""
    from dataclasses import fields

    from transformers import TrainingArguments

    return {f.name: getattr(config, f.name) for f in fields(TrainingArguments) if f.init and hasattr(config, f.name)}


__all__ = ["METHODS", "TrainingMethod", "build_method", "training_arguments"]
