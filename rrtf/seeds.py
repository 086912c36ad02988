"""The one seed scheme: every random stream in the project is `derive_seed(base, *names)`.

A stream is named by what it is for -- ("sample", round, task_id, temperature, sample index),
("eval", dataset, task_id, mode) -- never by its position in a batch or a process, so a resumed or
re-sharded run draws exactly the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import hashlib


def derive_seed(base: int, *names: object) -> int:
    """A 31-bit seed from a base seed and any names (stable across processes and Python versions)."""
    text = "|".join(str(x) for x in (base, *names))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


__all__ = ["derive_seed"]
