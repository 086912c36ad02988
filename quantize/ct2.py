"""CTranslate2 export: a plain transformers checkpoint -> a self-contained CTranslate2 model directory.

    export_ct2("ckpt/", "ckpt-ct2-int8/", "int8")      # model.bin + vocabulary + tokenizer + rrtf_export.json
    cached_ct2("round1/student", "int8")               # converts only when the weights changed

Conversion goes through CTranslate2's own converter API (`TransformersConverter`), with one fix:
its GPTBigCode loader always builds a multi-query model and never reads `config.multi_query`, so a
GPTBigCode with ordinary multi-head attention (multi_query=False) would be exported with the wrong
attention shapes. `_GPTBigCodeLoader` reads the flag and, for multi-head models, reorders the fused
QKV projection from GPTBigCode's per-head [q_h k_h v_h] layout to CTranslate2's [Q; K; V]
(tests/quantize/test_ct2_export.py compares logits with transformers for both kinds). It also
carries the model's layer-norm epsilon, which CTranslate2's loader leaves at its default.

Everything that can be wrong with the input -- no tokenizer, an architecture CTranslate2 cannot
convert, an unknown quantization -- is said before the model is loaded. The export is written into
a temporary directory and renamed into place, its manifest (`rrtf_export.json`) last, so a killed
export never leaves a directory that looks finished.
"""
from __future__ import annotations

import contextlib
import fcntl
import time
from pathlib import Path
from typing import Any

from quantize.source import MANIFEST, check_tokenizer, checkpoint_fingerprint, export_damage, read_config, staged_output
from sandbox.base.store import read_state, write_state

# What `--to ct2 --quantization` accepts (CTranslate2's weight types; int16 left out: no speed win).
CT2_QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "chat_template.jinja")


def check_quantization(quantization: str) -> str:
    if quantization not in CT2_QUANTIZATIONS:
        raise ValueError(f"CTranslate2 quantization {quantization!r} is not one of {', '.join(CT2_QUANTIZATIONS)}")
    return quantization


def supported_compute_types(device: str = "cpu") -> set[str]:
    """What this machine runs natively (ctranslate2.get_supported_compute_types); empty when the device is absent."""
    import ctranslate2

    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        return set()
    return set(ctranslate2.get_supported_compute_types(device))


def runs_as(quantization: str, device: str = "cpu") -> str:
    """The compute type CTranslate2 actually uses for weights of this type on `device` (it falls
    back to the nearest supported type, e.g. float16 -> float32 on a CPU without float16 kernels)."""
    supported = supported_compute_types(device)
    if quantization in supported:
        return quantization
    fallbacks = {"int8_float16": ["int8_float32", "int8"], "int8_bfloat16": ["int8_float32", "int8"], "int8_float32": ["int8"],
                 "int8": ["int8_float32"], "float16": ["float32"], "bfloat16": ["float32"]}
    return next((t for t in fallbacks.get(quantization, []) if t in supported), "float32")


def check_architecture(model_dir: str | Path) -> dict[str, Any]:
    """The model's config, if CTranslate2 can convert it (said before any weights are read)."""
    from ctranslate2.converters.transformers import _MODEL_LOADERS

    config = read_config(model_dir)
    name = type(config).__name__
    quantized = getattr(config, "quantization_config", None)
    if quantized:
        method = quantized.get("quant_method", "quantized") if isinstance(quantized, dict) else getattr(quantized, "quant_method", "quantized")
        raise ValueError(f"{model_dir} holds {method} weights: CTranslate2 converts full-precision weights only; "
                         "export CTranslate2 from the unquantised model")
    if name not in _MODEL_LOADERS:
        raise ValueError(f"{model_dir}: architecture {name} ({config.model_type}) cannot be converted to CTranslate2 "
                         f"{_ct2_version()}; supported configurations: {', '.join(sorted(_MODEL_LOADERS))}")
    if name == "GPTBigCodeConfig":
        from ctranslate2.converters.transformers import _SUPPORTED_ACTIVATIONS

        if config.activation_function not in _SUPPORTED_ACTIVATIONS:
            raise ValueError(f"{model_dir}: activation {config.activation_function!r} has no CTranslate2 equivalent")
        if not getattr(config, "scale_attn_weights", True):
            raise ValueError(f"{model_dir}: scale_attn_weights=False is not supported by CTranslate2's attention")
    return {"architecture": name, "multi_query": getattr(config, "multi_query", None)}


def export_ct2(model_dir: str | Path, output_dir: str | Path, quantization: str = "int8", *, force: bool = False,
               fingerprint: str | None = None, model=None) -> Path:
    """Convert the checkpoint in `model_dir` (or the already-loaded plain `model`, with `model_dir`
    naming its config and tokenizer) to `output_dir`. Returns `output_dir`."""
    check_quantization(quantization)
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    tokenizer = check_tokenizer(model_dir)
    info = check_architecture(model_dir)
    if output_dir.exists() and not force:
        raise ValueError(f"{output_dir} already exists; pass --force to overwrite it")
    start = time.time()
    converter = _converter(str(model_dir), model)
    with staged_output(output_dir) as tmp:
        with _fixed_gptbigcode_loader():
            converter.convert(str(tmp), quantization=quantization, force=True)
        tokenizer.save_pretrained(str(tmp))  # self-contained: the tokenizer travels with the model
        write_state(tmp / MANIFEST, {
            "format": "ctranslate2", "quantization": quantization, "source": str(model_dir),
            "fingerprint": fingerprint or checkpoint_fingerprint(model_dir), "ctranslate2": _ct2_version(),
            "seconds": round(time.time() - start, 2), **info,
        })
    return output_dir


def is_export_of(out_dir: str | Path, fingerprint: str, quantization: str) -> bool:
    manifest = read_state(Path(out_dir) / MANIFEST) or {}
    return manifest.get("fingerprint") == fingerprint and manifest.get("quantization") == quantization and not export_damage(out_dir)


def ct2_cache_dir(model_dir: str | Path, quantization: str, fingerprint: str) -> Path:
    """Where the conversion of `model_dir` lives: next to a student export of a run (round{r}/student
    -> round{r}/student-ct2-int8), else in the shared cache, named by the weights' fingerprint."""
    model_dir = Path(model_dir)
    if (model_dir / "rrtf_student.json").exists():
        return model_dir.with_name(f"{model_dir.name}-ct2-{quantization}")
    from rrtf.paths import cache_root

    return cache_root() / "ct2" / f"{model_dir.name}-{fingerprint}-{quantization}"


def cached_ct2(model_dir: str | Path, quantization: str = "int8", out_dir: str | Path | None = None) -> tuple[Path, bool]:
    """(CTranslate2 model of `model_dir`, whether it was converted now): an existing export of the
    same weights (fingerprint) and quantization is reused, anything else is converted afresh."""
    check_quantization(quantization)
    fingerprint = checkpoint_fingerprint(model_dir)
    out = Path(out_dir) if out_dir else ct2_cache_dir(model_dir, quantization, fingerprint)
    if is_export_of(out, fingerprint, quantization):
        return out, False
    # Every process of a distributed run asks for the student's conversion at once: one converts,
    # the others wait for it and find it done.
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_export_of(out, fingerprint, quantization):
            return out, False
        return export_ct2(model_dir, out, quantization, force=True, fingerprint=fingerprint), True


def _ct2_version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def _converter(model_dir: str, model=None):
    """CTranslate2's TransformersConverter; over `model` when one is already in memory (no second
    copy of a large model read from disk: the tokenizer and config still come from `model_dir`)."""
    from ctranslate2.converters import TransformersConverter

    if model is None:
        return TransformersConverter(model_dir, low_cpu_mem_usage=True)

    class InMemoryConverter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model

    return InMemoryConverter(model_dir)


@contextlib.contextmanager
def _fixed_gptbigcode_loader():
    """CTranslate2's GPTBigCode loader replaced by `_GPTBigCodeLoader` for the conversion only."""
    from ctranslate2.converters import transformers as ct2_transformers

    loaders = ct2_transformers._MODEL_LOADERS
    original = loaders.get("GPTBigCodeConfig")
    loaders["GPTBigCodeConfig"] = _gptbigcode_loader_class()()
    try:
        yield
    finally:
        if original is None:
            loaders.pop("GPTBigCodeConfig", None)
        else:
            loaders["GPTBigCodeConfig"] = original


def _gptbigcode_loader_class():
    from ctranslate2.converters.transformers import _SUPPORTED_ACTIVATIONS, GPTBigCodeMHALoader
    from ctranslate2.specs import transformer_spec

    class GPTBigCodeLoader(GPTBigCodeMHALoader):
        """GPTBigCode with multi-query (StarCoder) or multi-head attention, and its layer-norm epsilon."""

        def get_model_spec(self, model):
            config = model.config
            spec = transformer_spec.TransformerDecoderModelSpec.from_config(
                config.n_layer, config.n_head, pre_norm=True, activation=_SUPPORTED_ACTIVATIONS[config.activation_function],
                multi_query_attention=bool(config.multi_query), num_heads_kv=None if config.multi_query else config.n_head)
            self.set_decoder(spec.decoder, model.transformer)
            self.set_linear(spec.decoder.projection, model.lm_head)
            if not config.multi_query:
                for layer_spec in spec.decoder.layer:
                    _qkv_per_head_to_blocks(layer_spec.self_attention.linear[0], config.n_head)
            return spec

        def set_config(self, config, model, tokenizer):
            super().set_config(config, model, tokenizer)
            config.layer_norm_epsilon = model.config.layer_norm_epsilon

    return GPTBigCodeLoader


def _qkv_per_head_to_blocks(linear_spec, num_heads: int) -> None:
    """GPTBigCode (multi_query=False) fuses QKV per head: rows [q_0 k_0 v_0 q_1 k_1 v_1 ...];
    CTranslate2 expects [q_0 q_1 ... | k_0 k_1 ... | v_0 v_1 ...]."""
    weight = linear_spec.weight
    out_features = weight.shape[0]
    head_dim = out_features // (3 * num_heads)
    linear_spec.weight = weight.reshape(num_heads, 3, head_dim, -1).transpose(0, 1).reshape(out_features, -1).contiguous()
    bias = getattr(linear_spec, "bias", None)
    if bias is not None and hasattr(bias, "reshape"):
        linear_spec.bias = bias.reshape(num_heads, 3, head_dim).transpose(0, 1).reshape(-1).contiguous()


VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # /proc/cpuinfo flags of an int8 dot product into int32


def int8_cpu_kernel(cpuinfo: str | None = None) -> str:
    """Which int8 GEMM CTranslate2's oneDNN runs on this CPU -- it changes int8 results, not just speed:
    "vnni": int8 products accumulated in int32, exactly int8 arithmetic; "u8s8-saturating": without VNNI,
    pairs of u8 x s8 products are summed into int16 with saturation (vpmaddubsw), so int8 logits differ
    from exact int8 arithmetic (measured on the tiny model: max |delta| vs float32 0.18 instead of 0.006).
    ONEDNN_MAX_CPU_ISA below a VNNI level forces the second."""
    import os

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), []))
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()
    # oneDNN's ISA levels from AVX2_VNNI and AVX512_CORE_VNNI up (BF16, FP16, AMX, AVX10) all have VNNI
    capped_below = capped not in ("", "ALL") and not any(t in capped for t in ("VNNI", "AMX", "BF16", "FP16", "AVX10"))
    return "vnni" if flags & set(VNNI_FLAGS) and not capped_below else "u8s8-saturating"


def describe_hardware(device: str = "cpu") -> str:
    """One line on what this machine's CTranslate2 runs natively (for logs, docs and benchmark rows)."""
    native = sorted(supported_compute_types(device))
    kernel = f"; int8 GEMM: {int8_cpu_kernel()}" if device == "cpu" else ""
    return f"CTranslate2 {_ct2_version()} on {device}: native compute types {', '.join(native) or 'none (no such device)'}{kernel}"


def manifest(out_dir: str | Path) -> dict[str, Any]:
    data = read_state(Path(out_dir) / MANIFEST)
    if data is None:
        raise FileNotFoundError(f"{out_dir} holds no {MANIFEST}: not a finished export")
    return data


__all__ = ["CT2_QUANTIZATIONS", "MANIFEST", "cached_ct2", "check_architecture", "check_quantization", "ct2_cache_dir",
           "describe_hardware", "export_ct2", "int8_cpu_kernel", "is_export_of", "manifest", "runs_as", "supported_compute_types"]

