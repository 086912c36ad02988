"""Builds of one model that the benchmark compares: what they are (`parse_build`), and their
directories, exported once and reused while the source weights are unchanged (`prepare_build`).

    transformers:float32     the unquantised model (transformers), in this dtype
    ct2:int8[@COMPUTE]       CTranslate2, weights exported as int8 (optionally run with another compute type)
    gptq:4                   GPTQ (GPTQModel), 4-bit weights, loaded by transformers
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantize.ct2 import CT2_QUANTIZATIONS, export_ct2, is_export_of
from quantize.gptq import GPTQ_BITS
from quantize.source import MANIFEST, checkpoint_fingerprint, dir_size_bytes, export_damage, staged_output
from sandbox.base.store import read_state

logger = logging.getLogger("quantize")
TORCH_DTYPES = ("float32", "float16", "bfloat16")
KINDS = ("transformers", "ct2", "gptq")
DEFAULT_BUILDS = {
    "cpu": ["transformers:float32", "ct2:int8", "ct2:int8_float32", "gptq:8", "gptq:4"],
    "cuda": ["transformers:float16", "ct2:int8_float16", "ct2:float16", "gptq:8", "gptq:4"],
}
WEIGHT_NAMES = ("model.bin", ".safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Build:
    spec: str
    kind: str  # transformers | ct2 | gptq
    precision: str  # float32, int8, int8_float16, int4, ...
    compute_type: str = "default"  # ct2 only
    bits: int = 0  # gptq only

    @property
    def label(self) -> str:
        return {"transformers": "transformers", "ct2": "CTranslate2", "gptq": "GPTQ"}[self.kind]

    @property
    def dir_name(self) -> str:
        return {"transformers": f"transformers-{self.precision}", "ct2": f"ct2-{self.precision}", "gptq": f"gptq-{self.bits}bit"}[self.kind]


def parse_build(spec: str) -> Build:
    kind, _, arg = spec.strip().partition(":")
    if kind == "transformers":
        dtype = arg or "float32"
        if dtype not in TORCH_DTYPES:
            raise ValueError(f"build {spec!r}: transformers dtype must be one of {', '.join(TORCH_DTYPES)}")
        return Build(spec, kind, dtype)
    if kind == "ct2":
        quant, _, compute = (arg or "int8").partition("@")
        if quant not in CT2_QUANTIZATIONS:
            raise ValueError(f"build {spec!r}: CTranslate2 quantization must be one of {', '.join(CT2_QUANTIZATIONS)}")
        from quantize.ct2_backend import COMPUTE_TYPES

        if compute and compute not in COMPUTE_TYPES:
            raise ValueError(f"build {spec!r}: unknown CTranslate2 compute type {compute!r}; known: {', '.join(COMPUTE_TYPES)}")
        return Build(spec, kind, quant, compute or "default")
    if kind == "gptq":
        try:
            bits = int(arg or 4)
        except ValueError:
            raise ValueError(f"build {spec!r}: GPTQ bits must be a number") from None
        if bits not in GPTQ_BITS:
            raise ValueError(f"build {spec!r}: GPTQ does not offer {bits}-bit weights; choose one of {', '.join(map(str, GPTQ_BITS))}")
        return Build(spec, kind, f"int{bits}", bits=bits)
    raise ValueError(f"build {spec!r}: unknown kind {kind!r}; use transformers:DTYPE, ct2:QUANTIZATION or gptq:BITS")


def default_builds(device: str) -> list[str]:
    return list(DEFAULT_BUILDS["cuda" if device == "cuda" else "cpu"])


def check_build_runs(build: Build, device: str) -> None:
    """A build this machine cannot run at all is refused before any export."""
    if build.kind == "ct2" and build.compute_type not in ("default", "auto"):
        from quantize.ct2_backend import check_compute_type

        check_compute_type(build.compute_type, device)
    if build.kind == "transformers" and device == "cpu" and build.precision == "float16":
        raise ValueError(f"build {build.spec!r}: float16 matrix products are not usable on this CPU; use float32 or bfloat16")


def stored_dtype(model_dir: str | Path) -> str:
    config = read_state(Path(model_dir) / "config.json") or {}
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def prepare_build(build: Build, source_dir: str | Path, work_dir: str | Path, *, gptq: dict[str, Any] | None = None,
                  calibration: list[str] | None = None) -> Path:
    """The directory the build runs from: the source itself (transformers in its stored dtype), or
    an export under `work_dir`, reused when it was made from the same weights with the same options."""
    source_dir, out = Path(source_dir), Path(work_dir) / build.dir_name
    fingerprint = checkpoint_fingerprint(source_dir)
    if build.kind == "transformers" and stored_dtype(source_dir) == build.precision:
        return source_dir
    damage = export_damage(out)
    if damage:  # exported again rather than measured into a traceback that names no file
        logger.warning("build %s: %s; exporting it again", build.spec, damage)
        (out / MANIFEST).unlink()
    if build.kind == "transformers":
        return _cast_copy(source_dir, out, build.precision, fingerprint)
    if build.kind == "ct2":
        if is_export_of(out, fingerprint, build.precision):
            return out
        return export_ct2(source_dir, out, build.precision, force=True, fingerprint=fingerprint)
    opts = dict(gptq or {})
    manifest = read_state(out / MANIFEST) or {}
    wanted = {"fingerprint": fingerprint, "bits": build.bits, "mock": bool(opts.get("mock")),
              **{k: opts[k] for k in ("group_size", "desc_act") if k in opts}}
    if all(manifest.get(k) == v for k, v in wanted.items()):
        return out
    from quantize.gptq import export_gptq

    return export_gptq(source_dir, out, bits=build.bits, calibration=calibration, force=True, **opts)


def _cast_copy(source_dir: Path, out: Path, dtype: str, fingerprint: str) -> Path:
    """The checkpoint saved in another dtype (its size on disk is then the build's real size)."""
    import torch

    from rrtf.modeling import load_model, load_tokenizer
    from sandbox.base.store import write_state

    marker = out / MANIFEST
    if (read_state(marker) or {}).get("fingerprint") == fingerprint:
        return out
    model = load_model(source_dir, dtype=getattr(torch, dtype))
    with staged_output(out) as tmp:
        model.save_pretrained(str(tmp))
        load_tokenizer(source_dir).save_pretrained(str(tmp))
        write_state(tmp / marker.name, {"format": "transformers", "dtype": dtype, "fingerprint": fingerprint, "source": str(source_dir)})
    return out


def weights_bytes(path: str | Path) -> int:
    """Bytes of the weight files (model.bin, *.safetensors), not tokenizer or config."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_NAMES)) or dir_size_bytes(path)


__all__ = ["Build", "DEFAULT_BUILDS", "KINDS", "check_build_runs", "default_builds", "parse_build", "prepare_build", "weights_bytes"]
