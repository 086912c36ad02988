"""The one frame protocol: a 4-byte big-endian length, then that many bytes of JSON (an object).

Used on every pipe and socket of the sandbox: host <-> worker, harness <-> candidate. Standard
library only: the in-sandbox worker imports it as `worker.protocol`, the host as
`sandbox.worker.protocol` -- the same file.

Whatever comes from a peer that could be hostile is parsed as hostile input: the length is checked
against a bound before anything is buffered, the JSON decoder's every failure (including
RecursionError on deep nesting and huge integers) becomes a `ProtocolError`, and a frame must be an
object. A reader never holds more than one bound plus one read chunk.
"""
from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct(">I")
READ_CHUNK = 1 << 16
# Host -> worker jobs (a program, its tests, stdin cases) and harness -> candidate requests.
JOB_LIMIT = 16 << 20
# Worker -> host messages: case reports and output already cut to what a Verdict keeps.
REPORT_LIMIT = 1 << 20
# Candidate -> harness answers (plain-data text of a returned value, see plaindata.MAX_TEXT).
CANDIDATE_LIMIT = 32 << 20
# Decimal digits an integer in a frame may have (frames carry values as text; numbers are small), and
# characters of a float: both are checked before conversion, whatever the reader's interpreter allows.
MAX_INT_DIGITS = 4300
MAX_FLOAT_CHARS = 1000


class ProtocolError(Exception):
    """A peer sent something that is not a well-formed frame within bounds."""


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ProtocolError("number too long")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise ProtocolError("number too long")
    return float(text)


def decode(data: bytes | bytearray) -> dict:
    """One frame's payload -> a dict, or ProtocolError (never anything else)."""
    try:
        obj = json.loads(data, parse_int=_bounded_int, parse_float=_bounded_float)
    except ProtocolError:
        raise
    except Exception as exc:  # ValueError, RecursionError, MemoryError, UnicodeDecodeError, ...
        raise ProtocolError(f"garbled message ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"message is a {type(obj).__name__}, not an object")
    return obj


def encode(obj: dict, limit: int = JOB_LIMIT) -> bytes:
    """Header + payload; ValueError if the payload exceeds `limit` (checked before sending, so an
    oversized message is the sender's decision, never a half-written frame)."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    if len(data) > limit:
        raise ValueError(f"message of {len(data):,} bytes is over the {limit:,}-byte limit")
    return HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send_frame(fd: int, obj: dict, limit: int = JOB_LIMIT) -> None:
    write_all(fd, encode(obj, limit))


def read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(fd: int, limit: int = JOB_LIMIT) -> dict | None:
    """Blocking read of one frame; None at a clean EOF. ProtocolError if oversized or garbled."""
    head = read_exact(fd, HEADER.size)
    if head is None:
        return None
    (n,) = HEADER.unpack(head)
    if n > limit:
        raise ProtocolError(f"message of {n:,} bytes announced, limit {limit:,}")
    data = read_exact(fd, n)
    if data is None:
        raise ProtocolError("stream ended inside a message")
    return decode(data)


class FrameReader:
    """Non-blocking frames from a peer: `feed()` when its fd is readable, then `pop()` until None.
    Memory is bounded by `limit` + one chunk: an announced length over the limit is an error at once."""

    def __init__(self, fd: int, limit: int = REPORT_LIMIT):
        self.fd, self.limit = fd, limit
        self.buf = bytearray()
        self.eof = False

    def feed(self) -> None:
        try:
            chunk = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        self._check_head()

    def _check_head(self) -> None:
        if len(self.buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self.buf)
            if n > self.limit:
                raise ProtocolError(f"message of {n:,} bytes announced, limit {self.limit:,}")

    def pop(self) -> dict | None:
        if len(self.buf) < HEADER.size:
            return None
        (n,) = HEADER.unpack_from(self.buf)
        if n > self.limit:
            raise ProtocolError(f"message of {n:,} bytes announced, limit {self.limit:,}")
        if len(self.buf) < HEADER.size + n:
            return None
        data = bytes(self.buf[HEADER.size:HEADER.size + n])
        del self.buf[:HEADER.size + n]
        self._check_head()
        return decode(data)
