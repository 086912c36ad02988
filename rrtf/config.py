"""RRTFConfig: one dataclass for Python, CLI flags and YAML (`--config`), parsed by TRL's TrlParser.

It extends transformers' TrainingArguments the way TRL's own configs do, so every Trainer option
(bf16, gradient_checkpointing, gradient_accumulation_steps, report_to, save_steps, ...) is available
unchanged; the fields below are RRTF's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments


@dataclass
class RRTFConfig(TrainingArguments):
    # --- model -------------------------------------------------------------------------------
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint to train. Default: the embedded tiny StarCoder (built and cached on first use)."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Default: the model's own tokenizer."})
    tuning_method: str = field(default="full", metadata={"help": "Registered tuning method: full, lora, ..."})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names for LoRA. Default: all linear layers of the model."}
    )

    # --- data --------------------------------------------------------------------------------
    dataset: str = field(
        default="tiny-tasks",
        metadata={"help": "tiny-tasks (embedded), mbpp, humaneval, or a JSONL file of Problem records."},
    )
    dataset_split: str | None = field(default=None, metadata={"help": "Split to train on. Default: the dataset's training split (rrtf.datasets)."})
    max_problems: int | None = field(default=None, metadata={"help": "Use at most this many training problems."})

    # --- sampling ----------------------------------------------------------------------------
    backend: str = field(default="transformers", metadata={"help": "Registered generation backend for the student."})
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
            "'transformers:PATH', or 'openai:BASE_URL#MODEL'."
        },
    )
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
    eval_max_problems: int | None = None

    # Trainer defaults that suit RRTF (overriding TrainingArguments' own).
    output_dir: str = field(default="outputs/rrtf-default")
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

    def __post_init__(self):
        if self.bf16 is None:  # "bf16 where the hardware has it"
            self.bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not self.fp16)
        # Without an accelerator, TrainingArguments must be told to use the CPU (gloo) before it sets
        # up the distributed state, or each process of `torchrun --nproc_per_node 2` trains alone.
        if not self.use_cpu and not torch.cuda.is_available() and not torch.backends.mps.is_available():
            self.use_cpu = True
        super().__post_init__()
