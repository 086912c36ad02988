"""The pipeline's state file (`state.json`: finished stages, per-stage info, call counts), read defensively:
any part of another shape is logged, naming the file, and dropped, so its stages count as not done and
resume from their own record files instead of every rerun failing on a traceback.

A stage recorded as finished is still reopened -- with every stage after it, which read its output -- when
  - some of its model calls failed (HTTP 400, garbage after the retries): the rerun asks them again, so a
    rerun after a server's bad spell ends with what a clean run has (the stage's stores skip what they hold);
  - one of its files has an unreadable line (a disk or an editor garbled it): the stage's store moves the
    line aside and redoes that work, or the stage rewrites the derived file, instead of every rerun failing.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sandbox.base.store import read_state

logger = logging.getLogger("data_evol")

STAGES = ("seeds", "evolve", "dedupe", "decontaminate", "answer", "validate", "select")
# What each stage writes (and a later stage may read).
STAGE_FILES = {"seeds": ("seeds.jsonl",), "evolve": ("evolved.jsonl", "eliminated.jsonl", "instructions.jsonl"),
               "dedupe": ("deduped.jsonl", "dedup_removed.jsonl"), "decontaminate": ("decontaminated.jsonl", "decontam_removed.jsonl"),
               "answer": ("answers.jsonl",), "validate": ("validated.jsonl",), "select": ("problems.jsonl", "rejected.jsonl", "selected.jsonl")}


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


def failed_calls(info: dict[str, Any]) -> int:
    calls = info.get("calls") if isinstance(info, dict) else None
    return sum(c.get("failed", 0) for c in calls.values() if isinstance(c, dict) and isinstance(c.get("failed", 0), int)) \
        if isinstance(calls, dict) else 0


def unreadable_line(path: Path) -> int:
    """The number of the first line of `path` that is not a JSON object (0: none; a missing file counts as line 1)."""
    if not path.exists():
        return 1
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                ok = line.endswith(b"\n") and isinstance(json.loads(line), dict)
            except (ValueError, RecursionError):
                ok = False
            if not ok:
                return lineno
    return 0


def finished_stages(out: Path, state: dict[str, Any]) -> list[str]:
    """The stages that stay finished: those recorded as done, up to the first that must be reopened (see above)."""
    done = [s for s in STAGES if s in set(state.get("done", []))]
    info = state.get("info", {})
    for i, stage in enumerate(done):
        why = ""
        failed = failed_calls(info.get(stage, {}))
        if failed:
            why = f"{failed} of its model calls failed last time: asking them again"
        for name in STAGE_FILES[stage]:
            lineno = unreadable_line(out / name) if not why else 0
            if lineno:
                why = f"{out / name}:{lineno} is unreadable: redoing that work"
                break
        if why or done[:i] != list(STAGES[:i]):
            if why:
                logger.warning("data_evol: reopening stage %r and the stages after it (%s)", stage, why)
            return done[:i]
    return done


__all__ = ["STAGES", "STAGE_FILES", "finished_stages", "read_pipeline_state"]
