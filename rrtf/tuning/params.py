"""`python -m rrtf.tuning params`: what each tuning method would train, from a checkpoint's config.json
alone -- the model is built on the meta device (no weights are read or allocated), so a 15B run can be
sized on a laptop. Counted as peft's `get_nb_trainable_parameters` counts: the parameters a method adds
are part of "all" (that is how Astraios' table reads: LoRA 0.315%, P-tuning 1.10%, ... of StarCoderBase-1B).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ParamsConfig:
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "A directory with the model's config.json (weights are not needed). Default: the embedded tiny StarCoder."})
    methods: list[str] | None = field(default=None, metadata={"help": "Tuning methods to count. Default: every registered one."})
    json: bool = field(default=False, metadata={"help": "Print JSON instead of a table."})


def build_meta_model(model_dir: str | Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json (give a checkpoint directory, or one holding only its config.json)")
    config = AutoConfig.from_pretrained(str(path))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def count_method(model_dir: str | Path, name: str) -> dict:
    """{method, trainable, all, percent} for `name` applied with its default options."""
    import torch

    from rrtf.tuning.base import build_tuning_method, count_parameters

    with torch.device("meta"):
        model = build_tuning_method(name).apply(build_meta_model(model_dir), None)
    trainable, total = count_parameters(model)
    return {"method": name, "trainable": trainable, "all": total, "percent": 100.0 * trainable / total}


# The issue's / Astraios' order: full fine-tuning, peft's methods, the adapters, Bitune.
ORDER = ("full", "lora", "ia3", "p_tuning", "prompt_tuning", "adapter_h", "adapter_p", "parallel_adapter", "bitune")


def ordered(names) -> list[str]:
    names = list(names)
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


def count_methods(model_dir: str | Path, methods: list[str] | None = None) -> list[dict]:
    from rrtf.tuning.base import TUNING_METHODS

    return [count_method(model_dir, name) for name in (methods or ordered(TUNING_METHODS.names()))]


def table(rows: list[dict]) -> str:
    lines = [f"{'method':<18} {'trainable':>15} {'all':>16} {'trainable %':>12}"]
    lines += [f"{r['method']:<18} {r['trainable']:>15,} {r['all']:>16,} {r['percent']:>11.3f}%" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    from transformers import HfArgumentParser

    (config,) = HfArgumentParser([ParamsConfig]).parse_args_into_dataclasses(args=argv)
    model_dir = config.model_name_or_path
    if model_dir is None:
        from rrtf.tiny import ensure_tiny_model

        model_dir = ensure_tiny_model("warm")
    rows = count_methods(model_dir, config.methods)
    print(json.dumps(rows, indent=1) if config.json else f"{model_dir}\n{table(rows)}")
    return rows
