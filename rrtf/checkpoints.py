"""Checkpoints the loop relies on: finding the newest *valid* Trainer checkpoint (a kill or a full
disk while one is written leaves it torn), and the student as a plain checkpoint directory for
backends that read one (a server, CTranslate2), rewritten only when the weights changed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import zipfile
from pathlib import Path

from sandbox.base.store import read_state, write_state

logger = logging.getLogger("rrtf.checkpoints")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _safetensors_whole(path: Path) -> bool:
    """The header parses and the file is as long as the header says (a torn file is shorter)."""
    try:
        with path.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size >= 8 + n + end
    except (OSError, ValueError, KeyError, struct.error, TypeError):
        return False


def _torch_file_whole(path: Path) -> bool:
    """torch.save files are zip archives: a torn one has no readable central directory."""
    try:
        with zipfile.ZipFile(path) as zf:
            return bool(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def checkpoint_problem(ckpt: Path) -> str:
    """Why `ckpt` cannot be resumed from ("" when it can)."""
    if read_state(ckpt / "trainer_state.json") is None:
        return "trainer_state.json missing or unreadable"
    weights = [ckpt / name for name in WEIGHT_FILES if (ckpt / name).exists()]
    if not weights:
        return "no model weights"
    for w in weights:
        if w.suffix == ".safetensors" and not _safetensors_whole(w):
            return f"{w.name} is torn"
    for name in ("optimizer.pt", "scheduler.pt"):
        if not (ckpt / name).exists():
            return f"{name} missing"
        if not _torch_file_whole(ckpt / name):
            return f"{name} is torn"
    return ""


def last_valid_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest checkpoint-K that is whole; torn ones are renamed `checkpoint-K.torn` (kept for a
    person to look at, never resumed from, never again in the Trainer's way), each named in the log."""
    if not checkpoints_dir.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in checkpoints_dir.iterdir()
                   if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir())
    for _, ckpt in reversed(found):
        problem = checkpoint_problem(ckpt)
        if not problem:
            return ckpt
        aside = ckpt.with_name(ckpt.name + ".torn")
        logger.warning("%s cannot be resumed from (%s); moved to %s, trying an older one", ckpt, problem, aside.name)
        ckpt.rename(aside)
    return None


def weights_fingerprint(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(getattr(model, "module", model).named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_student(model, tokenizer, method, out_dir: Path) -> Path:
    """The student as a plain (merged) checkpoint in `out_dir`, rewritten only when its weights changed."""
    plain = method.merge(model)
    fingerprint = weights_fingerprint(plain)
    marker = out_dir / "rrtf_student.json"
    if (read_state(marker) or {}).get("fingerprint") == fingerprint:
        return out_dir
    plain.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    write_state(marker, {"fingerprint": fingerprint})
    return out_dir


__all__ = ["checkpoint_problem", "export_student", "last_valid_checkpoint", "weights_fingerprint"]
