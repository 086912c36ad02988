"""EvalConfig: one dataclass for Python, CLI flags and YAML (`--config`), parsed by TRL's TrlParser."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrtf.options import RolloutOptions, SandboxOptions, identity_of

DEFAULT_K = (1, 10)


@dataclass
class EvalConfig(SandboxOptions, RolloutOptions):
    """The evaluation's own knobs; the sandbox's are SandboxOptions' (--sandbox_workers, --sandbox_timeout_s, ...), where it
    runs RolloutOptions' (--rollout ray, ...)."""

    # What a stored sample depends on (samples of another identity are never resumed from): these fields,
    # the sandbox's limits, and the prompt template by its text. num_samples may grow on a rerun.
    IDENTITY_FIELDS = frozenset({"model_name_or_path", "backend", "temperature", "max_new_tokens", "strategy", "seed", "tag", "stop"})

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint directory. Default: the embedded tiny StarCoder."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Default: the model's own tokenizer."})
    backend: str = field(
        default="transformers",
        metadata={"help": "transformers, reference (the canonical solutions: a sanity check), or a backend spec such as "
                          "'openai:http://127.0.0.1:8000/v1#MODEL' / 'openai-chat:URL#MODEL' (rrtf.backends)."},
    )
    backend_options: str | None = field(
        default=None, metadata={"help": "Extra backend options as JSON, e.g. '{\"batch_size\": 4}'."}
    )
    datasets: list[str] = field(
        default_factory=lambda: ["heldout"],
        metadata={"help": "Dataset names (NAME[:SPLIT][:TASK]; `--list` lists them) or JSONL files of Problem records."},
    )
    strategy: str | None = field(
        default=None, metadata={"help": "Force one prompt strategy for every dataset: 'continue' or 'instruct'. Default: per dataset."}
    )
    num_samples: int = field(default=10, metadata={"help": "Samples per problem for pass@k (0: greedy only)."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature for pass@k."})
    k: list[int] | None = field(default=None, metadata={
        "help": "k values of pass@k (each <= num_samples). Default: those of 1 and 10 that are <= num_samples."})
    greedy: bool = field(default=True, metadata={"help": "Also report greedy (temperature 0) pass@1."})
    max_new_tokens: int = 256
    max_problems: int | None = field(default=None, metadata={"help": "Evaluate at most this many problems per dataset."})
    prompt_template: str | None = field(
        default=None, metadata={"help": "Instruction template containing '{instruction}' (rrtf.prompts). Default: the training one."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call."})
    output_file: str | None = field(
        default="outputs/eval/results.json", metadata={"help": "JSON summary ('' or None: write nothing, keep samples in memory only)."})
    samples_file: str | None = field(
        default=None, metadata={"help": "Per-sample JSONL (resumable). Default: OUTPUT_FILE with .samples.jsonl."}
    )
    seed: int = 0
    tag: str = field(
        default="", metadata={"help": "Names the model state (e.g. 'before', 'round-1') where model_name_or_path does not: "
                                      "samples of a different tag are never resumed from."}
    )
    stop: list[str] | None = field(default=None, metadata={"help": "Stop strings for every problem. Default: each dataset's prompt "
                                                                    "strategy's (as training asks it)."})

    def __post_init__(self) -> None:
        from rrtf.prompts import STRATEGIES

        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")
        if self.num_samples == 0 and not self.greedy:
            raise ValueError("nothing to evaluate: num_samples is 0 and greedy is False")
        if self.num_samples > 1 and self.temperature <= 0:
            raise ValueError("pass@k with num_samples > 1 needs temperature > 0 (greedy samples are all the same)")
        # The default k adapts to num_samples (and says so in `k_note`); a k the user asked for must apply.
        self.k_note = ""
        if self.k is None:
            self.k = [k for k in DEFAULT_K if k <= self.num_samples] if self.num_samples else list(DEFAULT_K)
            dropped = [k for k in DEFAULT_K if k not in self.k]
            if dropped:
                self.k_note = (f"pass@k for k = {', '.join(map(str, self.k))} only: the default k "
                               f"{', '.join(map(str, dropped))} exceeds --num_samples {self.num_samples}")
        if self.num_samples:
            bad = [k for k in self.k if k < 1 or k > self.num_samples]
            if bad:
                raise ValueError(f"k values {bad} must be between 1 and num_samples={self.num_samples}")
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES.names())}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        super().__post_init__()

    def resolved_samples_file(self) -> Path | None:
        if self.samples_file:
            return Path(self.samples_file)
        if self.output_file:
            out = Path(self.output_file)
            return out.with_name(out.stem + ".samples.jsonl")
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What a stored sample depends on: a resumed run must match it (num_samples may grow)."""
        from rrtf.prompts import template_id

        return {**identity_of(self), "prompt_template": template_id(self.prompt_template)}


__all__ = ["EvalConfig"]
