"""RRTFTrainer: transformers' Trainer with RRTF's loss on packed ranked groups.

Everything that is not the loss (optimizer, schedule, bf16, activation checkpointing, gradient
accumulation, DDP, logging/TensorBoard, checkpoints and resuming, PEFT adapters) is the Trainer's own,
driven by the RRTFConfig (a TrainingArguments). `rank_loss=False` is the SFT baseline: same trainer,
same data, only each group's best teacher answer is packed and the ranking term is off.
"""
from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from rrtf.config import RRTFConfig
from rrtf.losses import rrtf_loss
from rrtf.packing import LAYOUTS, EncodedGroup, RRTFCollator, group_field
from rrtf.tuning import build_tuning_method

logger = logging.getLogger(__name__)


class RRTFTrainer(Trainer):
    # compute_loss returns a per-group mean, not a sum normalised by num_items_in_batch: let the
    # Trainer divide by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, model=None, args: RRTFConfig | None = None, train_dataset=None, eval_dataset=None,
                 processing_class=None, data_collator=None, tuning_method=None, **kwargs):
        if args is None or processing_class is None:
            raise ValueError("RRTFTrainer needs args (an RRTFConfig) and processing_class (the tokenizer)")
        # our batches carry rewards/segment ids, not forward() arguments: never let the Trainer drop them
        args.remove_unused_columns = False
        layout = "packed" if getattr(args, "packed", True) else "separate"
        collator = data_collator or RRTFCollator(
            processing_class,
            args.max_length,
            max_packed_length=getattr(args, "max_packed_length", None),
            only_best_teacher=not args.rank_loss,
            layout=layout,
        )
        # The tuning method may lay groups out its own way (e.g. a bidirectional pass over the prompt).
        self.tuning_method = tuning_method or build_tuning_method(args)
        self.layout = self.tuning_method.layout(getattr(collator, "layout", None) or LAYOUTS[layout]())
        # tokenize and fit every group once, so drops are logged once and not every epoch
        if train_dataset is not None:
            train_dataset = self._encode(train_dataset, collator, "train")
        if isinstance(eval_dataset, dict):
            eval_dataset = {name: self._encode(ds, collator, f"eval {name}") for name, ds in eval_dataset.items()}
        elif eval_dataset is not None:
            eval_dataset = self._encode(eval_dataset, collator, "eval")
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        super().__init__(model=model, args=args, data_collator=collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)

    @staticmethod
    def _encode(dataset: Any, collator: RRTFCollator, name: str) -> list[EncodedGroup]:
        """Groups (datasets.Dataset rows, RankedGroups, record dicts or EncodedGroups) -> fitted EncodedGroups."""
        groups = list(dataset)
        encoded = [e for e in map(collator.encode, groups) if e is not None]
        if collator.only_best_teacher:  # SFT: one answer per group is wanted, students are skipped on purpose
            n_in = len(groups)
        else:
            n_in = sum(len(g.response_ids if isinstance(g, EncodedGroup) else group_field(g, "responses")) for g in groups)
        n_out = sum(len(e.response_ids) for e in encoded)
        logger.log(logging.WARNING if n_out < n_in else logging.INFO,
                   "%s set: %d of %d groups and %d of %d responses kept", name, len(encoded), len(groups), n_out, n_in)
        if not encoded:
            raise ValueError(
                f"no {name} group is usable: each needs a teacher answer (SFT) or two candidates with different rewards "
                f"that fit max_length={collator.max_length}"
            )
        return encoded

    # Methods the Trainer cannot checkpoint by itself (own adapters, Bitune) save and reload their checkpoints.
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.tuning_method.own_checkpoints:
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.args.should_save:
            self.tuning_method.save(self.accelerator.unwrap_model(self.model), output_dir)
            self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if not self.tuning_method.own_checkpoints:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        self.tuning_method.load_weights(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        p = self.layout.scores(model, inputs)
        loss, parts = rrtf_loss(
            p,
            inputs["rewards"],
            inputs["candidate_mask"],
            inputs["best_index"],
            rank=self.args.rank_loss,
            weighted=self.args.rank_weighting == "score_gap",
            sft_weight=self.args.sft_weight,
        )
        mode = "train" if model.training else "eval"
        # gather across processes here (every process runs compute_loss in lockstep), average at log time
        values = self.accelerator.gather(torch.stack([parts[k].float() for k in sorted(parts)]).unsqueeze(0))
        for k, column in zip(sorted(parts), values.T):
            self._metrics[mode][k].extend(column.tolist())
        return (loss, {"scores": p.detach()}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # the default would look for `labels`; our loss needs the whole group
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "eval_" if mode == "eval" else ""
        for key, values in self._metrics[mode].items():
            finite = [v for v in values if not math.isnan(v)]  # rank_accuracy is NaN for pair-less batches
            if finite:
                logs[prefix + key] = sum(finite) / len(finite)
        self._metrics[mode].clear()
        super().log(logs, start_time)


def build_trainer(model, tokenizer, config: RRTFConfig, groups, eval_groups=None, **kwargs) -> RRTFTrainer:
    """Apply the configured tuning method (full, lora, ...) to `model` and wrap it in an RRTFTrainer."""
    method = build_tuning_method(config)
    return RRTFTrainer(model=method.apply(model, config), args=config, train_dataset=groups, eval_dataset=eval_groups,
                       processing_class=tokenizer, tuning_method=method, **kwargs)
