"""The pipeline's state file (`state.json`: finished stages, per-stage info, call counts), read defensively:
any part of another shape is logged, naming the file, and dropped, so its stages count as not done and
resume from their own record files instead of every rerun failing on a traceback."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sandbox.base.store import read_state

logger = logging.getLogger("data_evol")

STAGES = ("seeds", "evolve", "dedupe", "decontaminate", "answer", "validate", "select")


def read_pipeline_state(path: Path) -> dict[str, Any]:
    """state.json as the pipeline wrote it; any part of another shape (hand-edited, another version) is
    logged, naming the file, and dropped: its stages count as not done and resume from their own files."""
    state = read_state(path, {}) or {}
    shapes = {"done": lambda v: isinstance(v, list) and all(s in STAGES for s in v),
              "info": lambda v: isinstance(v, dict),
              "calls": lambda v: isinstance(v, dict) and all(isinstance(c, dict) and isinstance(c.get("calls", 0), int)
                                                             and isinstance(c.get("failed", 0), int) for c in v.values())}
    for key, ok in shapes.items():
        if key in state and not ok(state[key]):
            logger.warning("%s: field %r of the wrong shape ignored (%r), treated as not done", path, key, state[key])
            del state[key]
    return state



__all__ = ["STAGES", "read_pipeline_state"]
