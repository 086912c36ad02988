"""`python -m quantize export|bench ...`: a thin command line over the pure cores (one config dataclass
each, parsed by TRL's TrlParser: the same fields as flags, in YAML via --config, and from Python)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from quantize.config import BenchConfig, ExportConfig

COMMANDS = ("export", "bench")
USAGE = ("usage: python -m quantize export --model DIR --to ct2|gptq --output_dir OUT [--quantization Q | --bits B --group_size N]\n"
         "       python -m quantize bench [--model DIR] [--builds ...] --out bench.json\n"
         "       python -m quantize COMMAND --help")


def export(cfg: ExportConfig) -> Path:
    """Resolve the source (merging adapters through the tuning hook), export it, say what happened."""
    from quantize.source import resolve_source

    out = Path(cfg.output_dir)
    refuse_overwriting_inputs(out, {"--model": cfg.model, "--base_model": cfg.base_model})
    if out.exists() and not cfg.force:
        raise ValueError(f"{out} already exists; pass --force to overwrite it")
    model = cfg.model
    if model is None:
        from rrtf.tiny import ensure_tiny_model

        model = str(ensure_tiny_model("warm"))
    out.parent.mkdir(parents=True, exist_ok=True)
    from quantize.source import remove_stale_siblings

    remove_stale_siblings(out.parent, f".work-{out.name}-")  # what killed exports left
    with tempfile.TemporaryDirectory(prefix=f".work-{out.name}-{os.getpid()}-", dir=out.parent) as work:
        if cfg.to == "ct2":
            _check_ct2_source(model)
        src = resolve_source(model, work_dir=work, tuning_method=cfg.tuning_method, base_model=cfg.base_model)
        print(f"exporting {src.describe()} -> {out} ({cfg.to})", flush=True)
        if cfg.to == "ct2":
            from quantize.ct2 import describe_hardware, export_ct2, runs_as

            export_ct2(src.model_dir, out, cfg.quantization, force=cfg.force)
            ran = runs_as(cfg.quantization, "cpu")
            note = "" if ran == cfg.quantization else f" (this CPU runs it as {ran})"
            print(f"{describe_hardware('cpu')}; {cfg.quantization} weights{note}")
        else:
            from quantize.gptq import calibration_texts, export_gptq

            texts = calibration_texts(cfg.calibration_dataset, cfg.calibration_samples)
            export_gptq(src.model_dir, out, bits=cfg.bits, group_size=cfg.group_size, desc_act=cfg.desc_act, calibration=texts,
                        dtype=cfg.gptq_dtype, force=cfg.force)
    from quantize.source import dir_size_bytes

    print(f"wrote {out} ({dir_size_bytes(out) / 2**20:,.1f} MB)")
    return out


def refuse_overwriting_inputs(out: Path, inputs: dict[str, str | None]) -> None:
    """Nothing a user gave as input is ever deleted: an --output_dir that is an input directory or holds one
    (the export replaces its output directory whole) is refused, with or without --force, before anything
    is read or written. An output inside an input directory deletes nothing of it and is allowed."""
    target = out.resolve()
    for flag, value in inputs.items():
        if not value:
            continue
        source = Path(value).resolve()
        if target == source or source.is_relative_to(target):
            raise ValueError(f"--output_dir {out} would overwrite {flag} {value} (the export replaces its output "
                             f"directory); choose an output directory outside it")


def _check_ct2_source(model: str) -> None:
    """For a plain checkpoint: the architecture is checked before anything is loaded or merged."""
    from quantize.ct2 import check_architecture

    if (Path(model) / "config.json").exists() and not (Path(model) / "run_identity.json").exists():
        check_architecture(model)


def main(argv: list[str]) -> Any:
    from trl import TrlParser

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; use one of {', '.join(COMMANDS)}\n{USAGE}")
    if command == "export":
        (cfg,) = TrlParser([ExportConfig]).parse_args_and_config(args=rest)
        return 0 if export(cfg) else 1
    (cfg,) = TrlParser([BenchConfig]).parse_args_and_config(args=rest)
    from quantize.bench import run_bench

    run_bench(cfg)
    return 0


__all__ = ["export", "main"]
