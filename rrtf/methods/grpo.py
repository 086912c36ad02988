"""GRPO (TRL's GRPOTrainer, DeepSeekMath arXiv 2402.03300) with the sandbox as its reward
(rrtf.rollout.reward.SandboxReward, pass fraction of each completion's tests): online RL from execution,
no teacher. Equal budget with RRTF: each prompt gets `num_samples` completions (GRPO's group size,
`num_generations`) once; RRTF's epochs over the same samples become GRPO's `num_iterations` (each batch of
generations is optimised that many times). A batch holds `per_device_train_batch_size` prompts, as in RRTF.

Every verdict is logged (round{r}/reward_verdicts.process{k}.jsonl: task, status, reason, the judged code,
reward), and the round's status counts and judging time per step go to round{r}/rank_stats.json."""
from __future__ import annotations

import statistics
from collections import Counter

from rrtf.methods.base import METHODS, TrainingMethod, training_arguments
from sandbox.base.store import read_state, write_state

REWARD_KIND = "pass_fraction"


@METHODS.register("grpo")
class GRPO(TrainingMethod):
    summary = "GRPO (TRL GRPOTrainer), reward = pass fraction of the completion's tests in the sandbox; no teacher"
    uses_ranked_data = False

    def run_round(self, runner, r: int, model, tokenizer, problems, sandbox, student, tuning):
        from rrtf.rollout.reward import SandboxReward

        config = runner.config
        if tuning.own_checkpoints:
            raise ValueError(f"--method grpo trains with TRL's GRPOTrainer, which cannot checkpoint --tuning_method "
                             f"{tuning.registry_name}; use full, lora or another PEFT method")
        rd = runner.path(f"round{r}")
        rd.mkdir(parents=True, exist_ok=True)
        log = rd / f"reward_verdicts.process{runner.state.process_index}.jsonl"
        reward = SandboxReward(problems, kind=REWARD_KIND, sandbox=sandbox, log_path=log)
        try:
            model, history = runner.train_round(r, model, tokenizer, [], tuning,
                                                make_trainer=lambda args: grpo_trainer(config, args, model, tokenizer, problems, reward))
        finally:
            reward.close()
        stats_path = rd / "rank_stats.json"
        if runner.state.is_main_process:
            write_state(stats_path, round_stats(log, reward.seconds))
        runner.state.wait_for_everyone()
        return model, history, read_state(stats_path) or {}


def grpo_trainer(config, args, model, tokenizer, problems, reward):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rrtf.rollout.reward import prompt_rows

    n = config.num_samples * len(config.temperatures)
    if n < 2:
        raise ValueError(f"--method grpo needs at least 2 samples per prompt to compare (--num_samples), got {n}")
    fields = training_arguments(args)
    fields.update(per_device_train_batch_size=config.per_device_train_batch_size * n, num_train_epochs=1.0,
                  remove_unused_columns=False)  # the reward reads the task_id column
    grpo_args = GRPOConfig(**fields, num_generations=n, temperature=config.temperatures[0], max_completion_length=config.max_new_tokens,
                           num_iterations=max(1, round(config.num_train_epochs)))
    rows = prompt_rows(problems, config.prompt_template)
    return GRPOTrainer(model=model, reward_funcs=[reward], args=grpo_args, train_dataset=Dataset.from_list(rows),
                       processing_class=tokenizer)


def round_stats(log, seconds: list[float]) -> dict:
    """Status counts of every judged completion (the report's verdict plot) and the judging time per call."""
    from sandbox.base.store import read_store

    records = read_store(log, key=lambda rec: (rec["call"], rec["index"]))
    statuses = Counter(rec["status"] for rec in records)
    rewards = [rec["reward"] for rec in records if rec.get("reward") is not None]
    return {"method": "grpo", "reward": REWARD_KIND, "statuses": {"student": dict(statuses)}, "completions": len(records),
            "mean_reward": statistics.fmean(rewards) if rewards else None, "reward_calls": len(seconds),
            "judge_seconds_per_call_median": statistics.median(seconds) if seconds else None,
            "judge_seconds_total": sum(seconds)}
