"""RRTFConfig: one dataclass for Python, CLI flags and YAML (`--config`), parsed by TRL's TrlParser.

It extends transformers' TrainingArguments the way TRL's own configs do, so every Trainer option
(bf16, gradient_checkpointing, gradient_accumulation_steps, report_to, save_steps, ...) is available
unchanged, and is composed of the configs of the stages it runs, each knob defined once where it is
used: SamplerConfig (rrtf.sampler: num_samples, temperatures, teachers, stop, ...), RankerConfig
(rrtf.ranker), SandboxOptions (rrtf.options: --sandbox_workers, --sandbox_timeout_s, ...) and RolloutOptions
(rrtf.options: --rollout ray, --ray_address, ...). The
fields below are the training run's own. A field marked identity=True is part of the run's identity
(`run_identity`): a resumed run must match it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from rrtf.losses import RANK_WEIGHTINGS
from rrtf.options import RolloutOptions, SandboxOptions, identity_of, knob
from rrtf.ranker import RankerConfig
from rrtf.sampler import SamplerConfig

DEFAULT_OUTPUT_DIR = "outputs/rrtf-default"


@dataclass
class RRTFConfig(SamplerConfig, RankerConfig, SandboxOptions, RolloutOptions, TrainingArguments):
    IDENTITY_FIELDS = frozenset({"model_name_or_path", "tuning_method", "dataset", "dataset_split", "max_problems", "rank_loss",
                                 "rank_weighting", "sft_weight", "method"})  # and the composed configs' (rrtf.options.identity_of)

    # --- model -------------------------------------------------------------------------------
    model_name_or_path: str | None = knob(None, "Checkpoint to train. Default: the embedded tiny StarCoder (built and cached on "
                                                "first use).")
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Default: the model's own tokenizer."})
    tuning_method: str = knob("full", "Registered tuning method (rrtf.tuning): full, lora, ... Its options are flags of their "
                                      "own (e.g. --lora_r); another method's flags are refused.")
    # The chosen method's options dataclass (rrtf.tuning); the CLI fills it from the method's flags.
    tuning_options: Any = field(default=None, init=False, repr=False)

    # --- data --------------------------------------------------------------------------------
    dataset: str = knob("tiny-tasks", "NAME[:SPLIT][:TASK] of a registered dataset (tiny-tasks, the embedded default; mbpp; "
                                      "humanevalpack-go:fix; `python -m rrtf.evaluate --list`) or a JSONL file of Problem records; "
                                      "its problems are asked as evaluation asks them.")
    dataset_split: str | None = knob(None, "Split to train on. Default: the dataset's training split (rrtf.datasets).")
    max_problems: int | None = knob(None, "Use at most this many training problems.")

    # --- sampling: the student's backend here; every other sampling knob is SamplerConfig's ------
    backend: str = field(default="transformers", metadata={
        "help": "The student's generation backend: transformers (the in-memory model), or a served one such as "
                "openai:BASE_URL (the server is asked for the student's checkpoint by path each round)."})
    rounds: int = knob(1, "sample -> rank -> train rounds, each sampling from the improved student.")

    # --- training method ---------------------------------------------------------------------
    method: str = knob("rrtf", "What a round trains with (rrtf.methods, docs/methods.md): rrtf (default, as published), "
                               "rrtf_gap, rrtf_best, sft, rft, dpo, grpo, multi_round.")

    # --- ranking and loss --------------------------------------------------------------------
    rank_loss: bool = knob(True, "False: SFT on teacher answers only (the RRTF-vs-SFT baseline).")
    rank_weighting: str = knob("paper", "How a pair r_i > r_j weighs in L_rank: 'paper' (default), PanGu-Coder2's eqs. 2-4 "
                                        "(= RRHF's hinge), every pair once; 'score_gap', this project's variant, each pair times "
                                        "r_i - r_j (docs/loss.md).")
    sft_weight: float = knob(1.0, "lambda in L = L_rank + lambda * L_ft.")
    max_length: int = field(default=512, metadata={"help": "Max tokens of prompt + one response."})
    max_packed_length: int | None = field(
        default=None,
        metadata={"help": "Max tokens of one packed group (prompt + all its responses); longer groups lose candidates. Default: 4 * max_length."},
    )
    packed: bool = field(
        default=True,
        metadata={"help": "Score a group's responses in one row sharing the prompt (4-D block mask). False: one row per response (for flash-attention)."},
    )

    # --- evaluation --------------------------------------------------------------------------
    eval_dataset: str | None = field(default=None, metadata={"help": "Default: the held-out split of `dataset`."})
    eval_datasets: list[str] = field(default_factory=list, metadata={
        "help": "More evaluation sets, before and after training (greedy pass@1 and each dataset's own metrics): "
                "NAME[:SPLIT][:TASK] (`python -m rrtf.evaluate --list`), e.g. humaneval+ humanevalpack-go:fix recode-func_name."})
    eval_max_problems: int | None = field(default=None, metadata={"help": "At most this many problems of each evaluation set."})

    # Trainer defaults that suit RRTF (overriding TrainingArguments' own).
    output_dir: str | None = field(default=None, metadata={
        "help": f"Default: {DEFAULT_OUTPUT_DIR} for the embedded default, else outputs/rrtf-DATASET-HASH of the run's identity."})
    report_to: None | str | list[str] = field(
        default="tensorboard", metadata={"help": "Trackers: tensorboard (default), wandb, trackio, ..., or none."}
    )
    logging_steps: float = 5
    save_strategy: str = "steps"
    save_steps: float = 50
    save_total_limit: int | None = 2
    remove_unused_columns: bool = False
    learning_rate: float = 5e-4  # for the embedded tiny model; configs/starcoder15b_lora.yaml sets real-size values
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Ranked groups (prompts) per device per step."})

    bf16: bool | None = field(
        default=None, metadata={"help": "bf16 mixed precision. Default (None): on where the GPU supports it, off elsewhere."}
    )

    def run_identity(self) -> dict[str, Any]:
        """What a run's outputs depend on: a resumed run must match it. Teachers count by model and
        settings (not URL), the prompt template by its text, the student backend by kind."""
        from dataclasses import asdict, is_dataclass

        from rrtf.prompts import template_id
        from rrtf.sampler import resolve_teachers

        identity: dict[str, Any] = identity_of(self)  # the fields marked identity=True, here and in the composed configs
        identity["teachers"] = [t.identity() for t in resolve_teachers(self.teachers)]
        identity["prompt_template"] = template_id(self.prompt_template)
        identity["backend"] = self.backend.split(":")[0]
        if is_dataclass(self.tuning_options):
            identity["tuning_options"] = asdict(self.tuning_options)
        return json.loads(json.dumps(identity, default=str))

    def default_output_dir(self) -> str:
        """outputs/rrtf-default for the embedded default; else a directory named by the run's identity,
        so a second run with another dataset never collides with the first."""
        identity = self.run_identity()
        if identity == type(self)(output_dir=DEFAULT_OUTPUT_DIR).run_identity():
            return DEFAULT_OUTPUT_DIR
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.dataset.split("/")[-1].split(":")[0])[:40]
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        return f"outputs/rrtf-{slug}-{digest}"

    def __post_init__(self):
        if self.rank_weighting not in RANK_WEIGHTINGS:
            raise ValueError(f"rank_weighting must be one of {', '.join(RANK_WEIGHTINGS)}, got {self.rank_weighting!r}")
        from rrtf.methods import build_method

        build_method(self.method).configure(self)  # the fields the method fixes (sft: rank_loss off, ...), before the identity
        if self.output_dir is None:
            self.output_dir = self.default_output_dir()
        if self.bf16 is None:  # "bf16 where the hardware has it"
            self.bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not self.fp16)
        # Without an accelerator, TrainingArguments must be told to use the CPU (gloo) before it sets
        # up the distributed state, or each process of `torchrun --nproc_per_node 2` trains alone.
        if not self.use_cpu and not torch.cuda.is_available() and not torch.backends.mps.is_available():
            self.use_cpu = True
        super().__post_init__()


def parse_train_args(argv: list[str] | None = None) -> RRTFConfig:
    """CLI flags and `--config YAML` -> an RRTFConfig whose `tuning_options` are the chosen method's
    options (every registered method's flags are accepted, as TRL's parsers accept several dataclasses)."""
    from trl import TrlParser

    from rrtf.tuning import TUNING_METHODS, option_classes

    classes = option_classes()
    config, *options = TrlParser([RRTFConfig, *classes]).parse_args_and_config(args=argv)
    wanted = TUNING_METHODS.get(config.tuning_method).options_class
    config.tuning_options = next((o for o in options if type(o) is wanted), None)
    refuse_other_methods_options(config.tuning_method, wanted, options)
    return config


def refuse_other_methods_options(method: str, wanted: type | None, options: list[Any]) -> None:
    """A flag of a tuning method that was not chosen is a mistake (a typo in --tuning_method, a copied
    YAML): refused with one line rather than accepted and dropped."""
    from dataclasses import fields

    mine = {f.name for f in fields(wanted)} if wanted is not None else set()
    for opts in options:
        if type(opts) is wanted:
            continue
        default = type(opts)()
        changed = [f.name for f in fields(opts) if f.name not in mine and getattr(opts, f.name) != getattr(default, f.name)]
        if changed:
            owner = type(opts).__name__
            raise ValueError(f"--{changed[0]} is an option of {owner}, not of --tuning_method {method}; "
                             "drop it or choose the method it belongs to")
