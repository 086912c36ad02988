"""GPTQ export with GPTQModel (the maintained successor of the archived AutoGPTQ), calibrated on the
project's own problems, written in the GPTQ v1 checkpoint format.

    export_gptq("ckpt/", "ckpt-gptq-4bit/", bits=4, group_size=128)   # quantize_config.json + tokenizer
    model = load_gptq("ckpt-gptq-4bit/")                                  # transformers (+ optimum + gptqmodel)

Format: `format="gptq"` is the v1 layout (`checkpoint_format: "gptq"` in quantize_config.json and
in config.json's quantization_config): the one transformers' GPTQ integration (optimum's
GPTQQuantizer, gptqmodel kernels) loads, and vLLM/TGI too. GPTQModel's own `gptq_v2` layout is read
by GPTQModel alone. Both `GPTQModel.load(dir)` and `AutoModelForCausalLM.from_pretrained(dir)`
load the export (tests/quantize/test_gptq_export.py).

Two workarounds, each for a bug of the installed versions, each kept as small as it can be:
- GPTQModel 7.6 sizes its CPU pool as ceil(cores / 2) but asks for 2 model-loader workers, so on a
  1-2 core machine every load fails ("requests 2 workers but parent 'cpu' only has 1"):
  GPTQMODEL_CPU_WORKERS is raised to at least 2 before gptqmodel is imported.
- transformers 5.24's GPTBigCode `_init_weights` re-initialises `c_proj.weight` of every attention
  and MLP block while loading, and a GPTQ-quantised block has no weight tensor (qweight, scales,
  ... instead), so `from_pretrained` fails on any quantised GPTBigCode checkpoint. `load_gptq` skips that
  re-initialisation for quantised blocks (`patch_gptbigcode_init`); the checkpoint itself is standard.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from quantize.source import MANIFEST, check_tokenizer, checkpoint_fingerprint, read_config, staged_output
from sandbox.base.store import write_state

GPTQ_BITS = (2, 3, 4, 8)  # what the GPTQ v1 format (and transformers' GPTQ loader) offers


def check_gptq_options(bits: int, group_size: int, model_dir: str | Path | None = None) -> None:
    if bits not in GPTQ_BITS:
        raise ValueError(f"GPTQ: {bits}-bit quantisation is not offered; choose one of {', '.join(map(str, GPTQ_BITS))}")
    if group_size != -1 and group_size < 1:
        raise ValueError(f"GPTQ: group_size must be a positive number of input columns, or -1 for one group per row; got {group_size}")
    if model_dir is None:
        return
    config = read_config(model_dir)
    if getattr(config, "quantization_config", None):
        raise ValueError(f"{model_dir} is already quantised: GPTQ starts from the full-precision weights")
    model_type = getattr(config, "model_type", "?")
    supported = _gptqmodel_architectures()
    if supported is not None and model_type not in supported:
        raise ValueError(f"{model_dir}: GPTQModel has no definition for model type {model_type!r}")
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if group_size != -1 and width and width % group_size:
        raise ValueError(f"GPTQ: group_size {group_size} does not divide the model's hidden size {width}")


def _gptqmodel_architectures() -> set[str] | None:
    try:
        _prepare_gptqmodel_env()
        from gptqmodel.models.auto import MODEL_MAP
    except ImportError:  # pragma: no cover - a gptqmodel without the table: let it decide
        return None
    return set(MODEL_MAP)


def _prepare_gptqmodel_env() -> None:
    cores = os.cpu_count() or 1
    if int(os.environ.get("GPTQMODEL_CPU_WORKERS") or 0) < 2:
        os.environ["GPTQMODEL_CPU_WORKERS"] = str(max(2, (cores + 1) // 2))


def calibration_texts(dataset: str = "tiny-tasks:train", n: int = 128, template: str | None = None) -> list[str]:
    """Prompt + reference answer of the first `n` problems of `dataset`: text in the form the model
    is asked and answers in (the training split, so the held-out set stays unseen)."""
    from rrtf.datasets import load_dataset
    from rrtf.prompts import build_prompt

    problems = [p for p in load_dataset(dataset).problems if p.canonical_solution.strip()][:n]
    if not problems:
        raise ValueError(f"calibration dataset {dataset!r} has no problems with a reference answer")
    return [build_prompt(p, template) + p.canonical_solution for p in problems]


def export_gptq(model_dir: str | Path, output_dir: str | Path, *, bits: int = 4, group_size: int = 128,
                calibration: list[str] | None = None, desc_act: bool = False, sym: bool = True, dtype: str = "auto",
                device: str | None = None, mock: bool = False, force: bool = False, pack_impl: str | None = None) -> Path:
    """Quantise the plain checkpoint in `model_dir` with GPTQ and save it (v1 format, tokenizer
    included) to `output_dir`. `mock` skips the Hessian solve (GPTQModel's mock_quantization): the
    layout and size are real, the weights are not optimised -- for latency benchmarks only."""
    import torch

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    check_gptq_options(bits, group_size, model_dir)
    tokenizer = check_tokenizer(model_dir)
    if output_dir.exists() and not force:
        raise ValueError(f"{output_dir} already exists; pass --force to overwrite it")
    texts = calibration if calibration is not None else calibration_texts()
    _prepare_gptqmodel_env()
    from gptqmodel import GPTQModel, QuantizeConfig

    qc = QuantizeConfig(bits=bits, group_size=group_size, format="gptq", desc_act=desc_act, sym=sym,
                        offload_to_disk=False, mock_quantization=mock, **({"device": device} if device else {}),
                        **({"pack_impl": pack_impl} if pack_impl else {}))
    kwargs: dict[str, Any] = {} if dtype == "auto" else {"dtype": getattr(torch, dtype)}
    start = time.time()
    with staged_output(output_dir) as tmp:
        _quant_log_into(tmp / "quant_logs")
        model = GPTQModel.load(str(model_dir), qc, **kwargs)
        calib = [tokenizer(t, add_special_tokens=False) for t in texts]
        model.quantize([{"input_ids": c["input_ids"], "attention_mask": c["attention_mask"]} for c in calib], tokenizer=tokenizer)
        model.save(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_state(tmp / MANIFEST, {
            "format": "gptq", "checkpoint_format": "gptq (v1)", "bits": bits, "group_size": group_size, "desc_act": desc_act,
            "sym": sym, "mock": mock, "calibration_samples": len(texts), "source": str(model_dir),
            "fingerprint": checkpoint_fingerprint(model_dir), "dtype": str(next(model.model.parameters()).dtype).replace("torch.", ""),
            "gptqmodel": _version("gptqmodel"), "seconds": round(time.time() - start, 2),
        })
        del model
    return output_dir


def _quant_log_into(path: Path) -> None:
    """GPTQModel writes its per-layer quantisation log to ./logs of the current directory; keep it with
    the export instead (it records each layer's loss)."""
    try:
        from gptqmodel.looper import loop_processor
    except ImportError:  # pragma: no cover
        return
    if hasattr(loop_processor, "_PROJECT_LOG_DIR"):
        loop_processor._PROJECT_LOG_DIR = Path(path)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def patch_gptbigcode_init() -> None:
    """Let transformers load quantised GPTBigCode checkpoints (see the module docstring)."""
    from transformers.models.gpt_bigcode import modeling_gpt_bigcode as gb

    original = gb.GPTBigCodePreTrainedModel._init_weights
    if getattr(original, "_rrtf_quantized_ok", False):
        return

    def _init_weights(self, module):
        if isinstance(module, (gb.GPTBigCodeMLP, gb.GPTBigCodeAttention)) and _quantized(module.c_proj):
            return  # its weights come from the checkpoint's qweight/scales: there is nothing to initialise
        return original(self, module)

    _init_weights._rrtf_quantized_ok = True
    gb.GPTBigCodePreTrainedModel._init_weights = _init_weights


def _quantized(linear) -> bool:
    import torch

    return hasattr(linear, "qweight") or not isinstance(getattr(linear, "weight", None), torch.Tensor)


def load_gptq(path: str | Path, *, device: str | None = None):
    """A GPTQ export loaded by transformers (optimum + gptqmodel kernels), in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    from rrtf.modeling import check_model_dir

    check_model_dir(path)
    if not (Path(path) / "quantize_config.json").exists():
        raise FileNotFoundError(f"{path} holds no quantize_config.json: not a GPTQ export")
    _prepare_gptqmodel_env()
    patch_gptbigcode_init()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return AutoModelForCausalLM.from_pretrained(str(path), device_map=device).eval()


__all__ = ["GPTQ_BITS", "calibration_texts", "check_gptq_options", "export_gptq", "load_gptq", "patch_gptbigcode_init"]
