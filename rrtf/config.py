"""RRTFConfig: one dataclass for Python, CLI flags and YAML (`--config`), parsed by TRL's TrlParser.

It extends transformers' TrainingArguments the way TRL's own configs do, so every Trainer option
(bf16, gradient_checkpointing, gradient_accumulation_steps, report_to, save_steps, ...) is available
unchanged; the fields below are RRTF's own.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

DEFAULT_OUTPUT_DIR = "outputs/rrtf-default"


@dataclass
class RRTFConfig(TrainingArguments):
    # --- model -------------------------------------------------------------------------------
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint to train. Default: the embedded tiny StarCoder (built and cached on first use)."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Default: the model's own tokenizer."})
    tuning_method: str = field(default="full", metadata={"help": "Registered tuning method (rrtf.tuning): full, lora, ... "
                                                                 "Its options are flags of their own (e.g. --lora_r)."})
    # The chosen method's options dataclass (rrtf.tuning); the CLI fills it from the method's flags.
    tuning_options: Any = field(default=None, init=False, repr=False)

    # --- data --------------------------------------------------------------------------------
    dataset: str = field(
        default="tiny-tasks",
        metadata={"help": "tiny-tasks (embedded), mbpp, humaneval, or a JSONL file of Problem records."},
    )
    dataset_split: str | None = field(default=None, metadata={"help": "Split to train on. Default: the dataset's training split (rrtf.datasets)."})
    max_problems: int | None = field(default=None, metadata={"help": "Use at most this many training problems."})

    # --- sampling ----------------------------------------------------------------------------
    backend: str = field(default="transformers", metadata={
        "help": "The student's generation backend: transformers (the in-memory model), or a served one such as "
                "openai:BASE_URL (the server is asked for the student's checkpoint by path each round)."})
    num_samples: int = field(default=6, metadata={"help": "Student samples per prompt, per temperature."})
    temperatures: list[float] = field(default_factory=lambda: [1.0], metadata={"help": "Sampling temperatures."})
    max_new_tokens: int = 64
    prompt_template: str | None = field(
        default=None, metadata={"help": "Prompt template (see rrtf.prompting). Default: the Alpaca-style instruction template."}
    )
    teachers: list[str] = field(
        default_factory=lambda: ["reference"],
        metadata={
            "help": "Teachers, highest priority first: 'reference' (the dataset's answer), "
            "'transformers:PATH', 'openai:BASE_URL#MODEL' or 'openai-chat:BASE_URL#MODEL'."
        },
    )
    prompts_per_call: int = field(default=8, metadata={"help": "Prompts per generate() call when sampling (bounds memory; "
                                                                 "samples do not depend on it: seeds are per prompt and sample)."})
    teacher_timeout: float = field(default=120.0, metadata={"help": "Seconds per request attempt to a served teacher."})
    teacher_retries: int = field(default=3, metadata={"help": "Further attempts after a transient teacher failure."})
    teacher_concurrency: int = field(default=8, metadata={"help": "Requests in flight to a served teacher."})
    rounds: int = field(default=1, metadata={"help": "sample -> rank -> train rounds, each sampling from the improved student."})
    sandbox_workers: int | None = field(default=None, metadata={"help": "Sandbox pool size. Default: CPU count."})

    # --- ranking and loss --------------------------------------------------------------------
    rank_loss: bool = field(default=True, metadata={"help": "False: SFT on teacher answers only (the RRTF-vs-SFT baseline)."})
    rank_weighted: bool = field(default=True, metadata={"help": "Weight pairs by (r_i - r_j) (RRTF); False is RRHF's unweighted loss."})
    sft_weight: float = field(default=1.0, metadata={"help": "lambda in L = L_rank + lambda * L_ft."})
    drop_if_teacher_worse: bool = field(default=True, metadata={"help": "Drop prompts whose best teacher scores below a student."})
    sft_on_failing_teacher: bool = field(
        default=False, metadata={"help": "Use the best teacher answer as the SFT target even when it fails tests."}
    )
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

    # Fields whose change makes an existing output dir's samples, verdicts or checkpoints stale.
    IDENTITY_FIELDS = ("model_name_or_path", "dataset", "dataset_split", "max_problems", "num_samples", "temperatures",
                       "max_new_tokens", "seed", "tuning_method", "rank_loss", "rank_weighted", "sft_weight")

    def run_identity(self) -> dict[str, Any]:
        """What a run's outputs depend on: a resumed run must match it. Teachers count by model and
        settings (not URL), the prompt template by its text, the student backend by kind."""
        from dataclasses import asdict, is_dataclass

        from rrtf.prompts import template_id
        from rrtf.sampler import resolve_teachers

        identity: dict[str, Any] = {k: getattr(self, k) for k in self.IDENTITY_FIELDS}
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
    return config
