"""DPO (TRL's DPOTrainer, arXiv 2305.18290): per prompt one preference pair from the same ranked
candidates RRTF trains on -- the best candidate by the ranker's reward (the sandbox's verdict, a teacher
above a student in the same situation) as `chosen`, the worst as `rejected`; prompts whose candidates all
tie give no pair. The reference model is the student as the round starts (a frozen copy; for a PEFT
adapter, TRL's own frozen "ref" adapter). Loss, beta and everything else are TRL's (DPOConfig defaults)."""
from __future__ import annotations

from rrtf.methods.base import METHODS, TrainingMethod, training_arguments
from rrtf.records import RankedGroup

# TrainingArguments fields whose RRTF value does not suit TRL's trainer (its collator needs its own columns).
NOT_COPIED = {"remove_unused_columns"}


def preference_pairs(groups: list[RankedGroup]) -> list[dict[str, str]]:
    """{prompt, chosen, rejected} per group with two different rewards: its best and its worst candidate."""
    rows = []
    for g in groups:
        if len(g.responses) < 2:
            continue
        best = max(range(len(g.rewards)), key=lambda i: (g.rewards[i], -i))
        worst = min(range(len(g.rewards)), key=lambda i: (g.rewards[i], i))
        if g.rewards[best] > g.rewards[worst]:
            rows.append({"prompt": g.prompt, "chosen": g.responses[best], "rejected": g.responses[worst], "task_id": g.task_id})
    return rows


@METHODS.register("dpo")
class DPO(TrainingMethod):
    summary = "DPO (TRL DPOTrainer): best vs worst candidate of each prompt by the sandbox's verdict"

    def make_trainer(self, config, model, tokenizer, groups: list[RankedGroup], tuning, args):
        import copy

        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        if tuning.own_checkpoints:
            raise ValueError(f"--method dpo trains with TRL's DPOTrainer, which cannot checkpoint --tuning_method {tuning.registry_name}; "
                             "use full, lora or another PEFT method")
        pairs = preference_pairs(groups)
        if not pairs:
            raise ValueError("--method dpo: no prompt has two candidates with different verdicts to prefer one over the other")
        fields = {k: v for k, v in training_arguments(args).items() if k not in NOT_COPIED}
        dpo_args = DPOConfig(**fields, max_length=config.max_length)
        ref = None
        if not _is_peft(model):  # a frozen copy of the student as it starts the round (TRL would reload the base path)
            ref = copy.deepcopy(model).eval().requires_grad_(False)
        return DPOTrainer(model=model, ref_model=ref, args=dpo_args, train_dataset=Dataset.from_list(pairs),
                          processing_class=tokenizer)


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)
