"""Where the project's files live: the shipped data, and the one cache directory.

RRTF_DATA_DIR overrides the shipped `data/`. The cache root (RRTF_CACHE) is defined once, in the
bottom layer (`sandbox.toolcache.cache_root`, whose build artefacts live in `tools/`); the embedded
tiny models live in its `models/`.
"""
from __future__ import annotations

import os
from pathlib import Path

from sandbox.toolcache import cache_root

DATA_DIR = Path(os.environ.get("RRTF_DATA_DIR") or Path(__file__).resolve().parent.parent / "data")


def models_cache() -> Path:
    return cache_root() / "models"


__all__ = ["DATA_DIR", "cache_root", "models_cache"]
