"""What is being exported: a plain checkpoint, a PEFT adapter, or a finished rrtf run -- always as
plain (merged) weights with their tokenizer, through the tuning method's own hooks.

    src = resolve_source("outputs/rrtf-default", work_dir="out/.work")   # -> src.model_dir (plain)

- a plain transformers checkpoint directory is used as it is;
- an rrtf run directory (run_identity.json + model/) names its tuning method and base model;
- a PEFT adapter directory (adapter_config.json) names its base model; the tuning method is
  `tuning_method` or, for a LoRA adapter, "lora".

A method that cannot be merged says so (`NotMergeable`) before any model is loaded. Adapters (and
any method whose `merge` is not the identity) are loaded with `method.load`, merged with
`method.merge` and written once, with their weights' fingerprint, by `rrtf.checkpoints.export_student`
-- the same code that exports the student for served backends during training.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.base.store import read_state, write_state

MANIFEST = "rrtf_export.json"  # an export's record of what it is; written last, so its presence means finished

TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json")


@dataclass
class Source:
    model_dir: Path  # a plain transformers checkpoint with its tokenizer
    kind: str  # "checkpoint" | "run" | "adapter"
    tuning_method: str = ""
    merged: bool = False  # True when model_dir was written by merging through the tuning hook

    def describe(self) -> str:
        how = f", merged through tuning method {self.tuning_method!r}" if self.merged else ""
        return f"{self.kind} {self.model_dir}{how}"


def read_config(model_dir: str | Path):
    """The checkpoint's transformers config, or a one-line error naming the directory."""
    from transformers import AutoConfig

    from rrtf.modeling import check_model_dir

    check_model_dir(model_dir)
    if not (Path(model_dir) / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} holds no config.json (an adapter? export the run directory or pass --base_model)")
    try:
        return AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{model_dir}/config.json cannot be read by transformers: {str(exc).splitlines()[0][:200]}") from None


def check_tokenizer(model_dir: str | Path):
    """The directory's own tokenizer; an export must be self-contained, so a missing one is an error."""
    from rrtf.modeling import load_tokenizer

    model_dir = Path(model_dir)
    if not any((model_dir / name).exists() for name in TOKENIZER_MARKERS):
        raise FileNotFoundError(f"{model_dir} has no tokenizer ({', '.join(TOKENIZER_MARKERS)}): an export must carry its "
                                "tokenizer; save it next to the weights with tokenizer.save_pretrained(DIR)")
    return load_tokenizer(model_dir)


def checkpoint_fingerprint(model_dir: str | Path) -> str:
    """Identifies the weights in `model_dir` without reading them all: the student export's own
    fingerprint (rrtf_student.json, a hash of the weights) when there is one, else a hash of
    config.json and each weight file's name, size and modification time."""
    model_dir = Path(model_dir)
    marker = read_state(model_dir / "rrtf_student.json") or {}
    if marker.get("fingerprint"):
        return str(marker["fingerprint"])
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.suffix in WEIGHT_SUFFIXES and not path.name.startswith(("tokenizer", "rrtf_", "special_tokens")):
            stat = path.stat()
            digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
            if path.name == "config.json":
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_dir_method(model_dir: Path) -> tuple[str, str | None, Path] | None:
    """(tuning method, base model or None for the embedded default, saved dir) of an rrtf run dir."""
    identity = read_state(model_dir / "run_identity.json")
    if identity is None or not (model_dir / "model").is_dir():
        return None
    return str(identity.get("tuning_method") or "full"), identity.get("model_name_or_path"), model_dir / "model"


def _adapter_method(model_dir: Path, tuning_method: str | None, base_model: str | None) -> tuple[str, str | None, Path] | None:
    path = model_dir / "adapter_config.json"
    if not path.exists():
        return None
    try:
        adapter = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable adapter config ({exc})") from None
    peft_type = str(adapter.get("peft_type", "")).upper()
    method = tuning_method or ("lora" if peft_type == "LORA" else "")
    if not method:
        raise ValueError(f"{model_dir} holds a {peft_type or 'PEFT'} adapter: pass --tuning_method (a registered method that saved it)")
    base = base_model or adapter.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path} names no base model: pass --base_model")
    return method, base, model_dir


def resolve_source(model: str | Path, *, work_dir: str | Path, tuning_method: str | None = None,
                   base_model: str | None = None) -> Source:
    """The plain checkpoint to export for `model` (merged into `work_dir`/merged when needed)."""
    from rrtf.modeling import check_model_dir

    model_dir = Path(check_model_dir(model)) if not (Path(model) / "run_identity.json").exists() else Path(model)
    found = _run_dir_method(model_dir)
    kind = "run"
    if found is None:
        found = _adapter_method(model_dir, tuning_method, base_model)
        kind = "adapter"
    if found is None:
        check_tokenizer(model_dir)
        return Source(model_dir, "checkpoint")
    method_name, base, saved = found
    method_name = tuning_method or method_name
    from rrtf.tuning import TuningMethod, build_tuning_method

    method = build_tuning_method(method_name)  # unknown names: "unknown tuning method 'x'; known: ..."
    method.check_mergeable()  # before anything is loaded
    if type(method).merge is TuningMethod.merge and not method.is_adapter and (saved / "config.json").exists():
        check_tokenizer(saved)  # the saved model is already plain weights
        return Source(saved, kind, method_name)
    return Source(_merge(method, base, saved, Path(work_dir) / "merged"), kind, method_name, merged=True)


def _merge(method, base: str | None, saved: Path, out_dir: Path) -> Path:
    from rrtf.checkpoints import export_student
    from rrtf.modeling import load_tokenizer

    if base is None:
        from rrtf.tiny import ensure_tiny_model

        base = str(ensure_tiny_model("warm"))
    tokenizer_dir = saved if any((saved / n).exists() for n in TOKENIZER_MARKERS) else Path(base)
    tokenizer = check_tokenizer(tokenizer_dir) if tokenizer_dir == saved else load_tokenizer(base)
    model = method.load(base, saved, trainable=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    return export_student(model, tokenizer, method, out_dir)  # rewritten only when the merged weights changed


@contextlib.contextmanager
def staged_output(output_dir: str | Path) -> Iterator[Path]:
    """A temporary sibling of `output_dir` to write into; it replaces `output_dir` only when the block
    finishes, so a killed or failed export never leaves a directory that looks finished. The temporary
    folders of exports that were killed (their process is gone) are removed first."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(output_dir.parent, f".tmp-{output_dir.name}-")
    tmp = output_dir.with_name(f".tmp-{output_dir.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # the converters' own writes name no file: say where, and that nothing was kept
                raise OSError(errno.ENOSPC, f"no space left on the disk of {output_dir.parent} while writing the export "
                                            f"{output_dir.name} (the partial export was removed); free space or choose "
                                            "another --output_dir") from None
            raise
        manifest = read_state(tmp / MANIFEST)
        if manifest is not None:  # the size of every file, so a reuse can tell a truncated or missing file
            write_state(tmp / MANIFEST, {**manifest, "files": _file_sizes(tmp)})
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def export_damage(out_dir: str | Path) -> str:
    """Why a finished export cannot be reused as it is ("" if it can): a file the export wrote is missing or has
    another size now (a full disk, a copy cut short, a hand edit). Exports made before sizes were recorded count as intact."""
    out_dir = Path(out_dir)
    recorded = (read_state(out_dir / MANIFEST) or {}).get("files")
    if not isinstance(recorded, dict):
        return ""
    for name, size in recorded.items():
        path = out_dir / name
        now = path.stat().st_size if path.is_file() else None
        if now != size:
            return f"{path}: {'missing' if now is None else f'{now:,} bytes'}, {size:,} bytes when exported"
    return ""


def remove_stale_siblings(parent: Path, prefix: str) -> None:
    """Delete `parent/PREFIX<pid>[-...]` folders whose process no longer runs (a kill -9 left them)."""
    for path in parent.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def dir_size_bytes(path: str | Path) -> int:
    """Bytes on disk of every file under `path` (weights, tokenizer, config)."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


__all__ = ["Source", "check_tokenizer", "checkpoint_fingerprint", "dir_size_bytes", "read_config", "remove_stale_siblings", "resolve_source", "staged_output"]
