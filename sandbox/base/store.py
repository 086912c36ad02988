"""The one record store every stage uses: JSONL files of records, and small JSON state files.

Rules (docs/reliability.md has the measured "what survives what" table):

- A long job appends one line per finished unit of work through `JsonlStore`, flushed and fsync'ed;
  on restart it reads the keys already there and skips that work, so a killed job resumes without
  redoing or duplicating anything.
- Only a torn *last* line (the job died mid-write, or the disk filled) is dropped on reopen. A bad
  line anywhere else (garbled JSON, invalid UTF-8) is never silently truncated: it is moved to
  `FILE.corrupt.jsonl` with a warning naming file and line, and its unit of work is redone. A line
  that parses but breaks its record schema is an error naming file, line and field.
- State files (`state.json`, `run_identity.json`, ...) are written atomically (temp file, fsync,
  rename, fsync of the directory) by `write_state`; `read_state` treats a missing, empty or
  unreadable state file as "not done" and says which file it ignored.
- Every error names the file (and line, and field where there is one); a full disk says which
  file could not be written.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sandbox.base.errors import RecordError

T = TypeVar("T")
logger = logging.getLogger("rrtf.store")

# A single JSONL line larger than this is refused (reading and writing): one record never needs more,
# and a runaway value must not take the machine's memory. RRTF_MAX_RECORD_BYTES overrides it.
MAX_RECORD_BYTES = int(os.environ.get("RRTF_MAX_RECORD_BYTES", 64 << 20))


class StoreError(OSError):
    """Writing a store or state file failed (e.g. the disk is full); the message names the file."""


def _open_text_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from enumerate(fh, 1)


def iter_jsonl(path: str | os.PathLike, *, max_record_bytes: int = MAX_RECORD_BYTES,
               allow_empty: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("FILE:LINE", record) for each non-empty line of an *input* file (.jsonl or .jsonl.gz).

    Any bad line -- malformed JSON, invalid UTF-8, not an object, over the size limit -- raises a
    RecordError naming file and line: inputs are never silently skipped. One rule for every command: an
    input file with no record is an error too (a wrong path or a job that wrote nothing, not a result of
    zero); `allow_empty` is for a stage's own output read back, which may rightly be empty."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(str(path), "", "file not found" if not path.exists() else "not a file")
    records = 0
    for where, rec in _records(path, max_record_bytes):
        records += 1
        yield where, rec
    if not records and not allow_empty:
        raise RecordError(str(path), "", "no records: the input file is empty")


def _records(path: Path, max_record_bytes: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, raw in _open_text_lines(path):
        where = f"{path}:{lineno}"
        if len(raw) > max_record_bytes:
            raise RecordError(where, "", f"line of {len(raw):,} bytes is over the {max_record_bytes:,}-byte record limit")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(where, "", f"not valid UTF-8 (byte {exc.start})") from None
        if not line.strip():
            continue
        yield where, _parse_line(line, where)


def _parse_line(line: str, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise RecordError(where, "", f"malformed JSON ({detail})") from None
    if not isinstance(rec, dict):
        raise RecordError(where, "", f"expected a JSON object, got {type(rec).__name__}")
    return rec


def read_records(path: str | os.PathLike, parse: Callable[..., T], *, allow_empty: bool = False) -> list[T]:
    """Parse every line of an input file with `parse(rec, where=...)` (e.g. `Problem.from_record`)."""
    return [parse(rec, where=where) for where, rec in iter_jsonl(path, allow_empty=allow_empty)]


def require(rec: dict[str, Any], where: str, field: str, kind: type | tuple[type, ...] = object) -> Any:
    """Return rec[field], or raise a RecordError naming the file, line and field."""
    if field not in rec:
        raise RecordError(where, field, "missing field")
    value = rec[field]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RecordError(where, field, f"expected {names}, got {type(value).__name__}")
    return value


def dumps_line(rec: dict[str, Any], *, where: str = "") -> bytes:
    """One record as a UTF-8 JSONL line. Text that cannot be UTF-8 (a lone surrogate) is an error
    naming the field: backends sanitise what they return, so reaching here is a bug upstream."""
    try:
        return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        bad = next((k for k, v in rec.items() if isinstance(v, str) and not _utf8_ok(v)), "")
        raise RecordError(where, bad, "text is not valid Unicode (lone surrogate); sanitise it before storing") from None


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> StoreError:
    err = StoreError(exc.errno, f"{path}: cannot write ({exc.strerror or exc})")
    err.filename = str(path)
    return err


class JsonlStore:
    """Append records to a JSONL file; on open, recover the complete records already there.

    `key(rec)` is a record's identity (e.g. (round, task_id, index)); `done` holds the keys found so
    callers skip finished work. `parse(rec, where=...)`, if given, validates every record read back
    (a schema error names file, line and field). `readonly=True` reads a file another process may
    still be appending to: a torn last line is ignored, nothing is modified.
    """

    def __init__(self, path: str | os.PathLike | None, key: Callable[[dict[str, Any]], Any], *,
                 parse: Callable[..., Any] | None = None, readonly: bool = False,
                 max_record_bytes: int = MAX_RECORD_BYTES):
        self.key, self.parse, self.readonly = key, parse, readonly
        self.max_record_bytes = max_record_bytes
        self.done: set[Any] = set()
        self.records: list[dict[str, Any]] = []
        self.quarantined = 0
        self._fh = None
        self.in_memory = path is None  # a job asked to keep nothing on disk: the same interface, no file
        self.path = None if path is None else Path(path)
        if self.path is None:
            return
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        if not readonly:
            try:
                self._fh = self.path.open("ab")
            except OSError as exc:
                raise _write_error(self.path, exc) from exc

    # -- reading back ---------------------------------------------------------------------------------
    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        kept: list[bytes] = []
        bad: list[tuple[int, bytes, str]] = []
        torn = b""
        for lineno, line in enumerate(lines, 1):
            last = lineno == len(lines)
            if last and not line.endswith(b"\n"):
                torn = line  # cut short by a kill or a full disk: the only line ever dropped
                break
            if not line.strip():
                kept.append(line)
                continue
            where = f"{self.path}:{lineno}"
            try:
                if len(line) > self.max_record_bytes:
                    raise RecordError(where, "", f"line of {len(line):,} bytes is over the record limit")
                rec = _parse_line(line.decode("utf-8"), where)
            except (RecordError, UnicodeDecodeError) as exc:
                bad.append((lineno, line, str(exc)))
                continue
            if self.parse is not None:
                self.parse(rec, where=where)  # a schema error is an error, not a quarantine
            kept.append(line)
            self.records.append(rec)
            self.done.add(self.key(rec))
        if self.readonly:
            for lineno, _, why in bad:
                logger.warning("%s:%d: unreadable line ignored (%s)", self.path, lineno, why)
            return
        if bad:
            self._quarantine(bad, kept)
        elif torn:
            logger.warning("%s: dropped a torn last line (%d bytes; the job was interrupted while writing it)", self.path, len(torn))
            with self.path.open("r+b") as fh:
                fh.truncate(len(data) - len(torn))

    def _quarantine(self, bad: list[tuple[int, bytes, str]], kept: list[bytes]) -> None:
        """Move unreadable middle lines aside (never lose them silently), keep every good record."""
        aside = self.path.with_name(self.path.name + ".corrupt.jsonl")
        with aside.open("ab") as fh:
            for _, line, _ in bad:
                fh.write(line if line.endswith(b"\n") else line + b"\n")
        for lineno, _, why in bad:
            logger.warning("%s:%d: unreadable line moved to %s; its work will be redone (%s)", self.path, lineno, aside, why)
        self.quarantined = len(bad)
        write_atomic(self.path, b"".join(kept))

    # -- writing ----------------------------------------------------------------------------------------
    def write(self, rec: dict[str, Any]) -> None:
        self.write_many([rec])

    def write_many(self, recs: Iterable[dict[str, Any]]) -> None:
        """Append records in one write and one fsync: a kill leaves all of them or a torn last line."""
        recs = list(recs)
        if self.in_memory:
            self._remember(recs)
            return
        if self._fh is None:
            raise ValueError(f"{self.path}: store is read-only or closed")
        lines = []
        for rec in recs:
            line = dumps_line(rec, where=str(self.path))
            if len(line) > self.max_record_bytes:
                raise RecordError(str(self.path), "", f"record of {len(line):,} bytes is over the {self.max_record_bytes:,}-byte limit")
            lines.append(line)
        try:
            self._fh.write(b"".join(lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise _write_error(self.path, exc) from exc
        self._remember(recs)

    def _remember(self, recs: list[dict[str, Any]]) -> None:
        for rec in recs:
            self.records.append(rec)
            self.done.add(self.key(rec))

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_store(paths: str | os.PathLike | Iterable[str | os.PathLike], key: Callable[[dict[str, Any]], Any], *,
               parse: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """Records of one or several stores (e.g. one per process), first occurrence of a key winning;
    safe while other processes still append (read-only: torn last lines are ignored)."""
    seen: dict[Any, dict[str, Any]] = {}
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        if Path(path).exists():
            for rec in JsonlStore(path, key, parse=parse, readonly=True).records:
                seen.setdefault(key(rec), rec)
    return list(seen.values())


# --------------------------------------------------------------------------------------------
# Whole files: written atomically


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` all at once: a kill or full disk leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise _write_error(path, exc) from exc
    _fsync_dir(path.parent)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """A whole JSONL file (a stage's finished output), written atomically."""
    write_atomic(path, b"".join(dumps_line(r, where=str(path)) for r in records))


def write_state(path: str | os.PathLike, obj: Any) -> None:
    """A JSON state file, written atomically."""
    write_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def read_state(path: str | os.PathLike, default: Any = None, *, expect: type | tuple[type, ...] = dict) -> Any:
    """A state file's content, or `default` when it is missing. An empty or unreadable one (torn by
    a kill on a system without atomic rename, edited by hand), or valid JSON of another shape than
    `expect` (a string where an object belongs), counts as "not done": it is logged, naming the file,
    and `default` is returned so the work is redone rather than every rerun stuck on a traceback."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("%s: unreadable state file ignored, treated as not done (%s)", path, exc)
        return default
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        logger.warning("%s: corrupt state file ignored, treated as not done (%s)", path, exc)
        return default
    if not isinstance(data, expect):
        wanted = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
        logger.warning("%s: state file of the wrong shape ignored, treated as not done (expected %s, got %s)", path, wanted,
                       type(data).__name__)
        return default
    return data


__all__ = [
    "MAX_RECORD_BYTES", "JsonlStore", "StoreError", "dumps_line", "iter_jsonl", "read_records", "read_state",
    "read_store", "require", "write_atomic", "write_jsonl", "write_state",
]
