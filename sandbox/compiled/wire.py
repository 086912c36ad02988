"""The plain-data wire between a test and the candidate it calls, when the two run as separate processes.

In every compiled or scripted language (Java, C++, JavaScript, Go, Rust) the candidate's code runs in a
program of its own -- its own uid, no key, no test -- and the test calls it through a stub with the
entry point's signature (taken from the prompt). Each call crosses one socket as a frame of plain data,
and so does its reply; nothing else does. The format is one small grammar for all languages, so that
each language's codec (sandbox/compiled/codecs/) is short and the trusted side's decoder is *typed*: it
reads exactly the shape the signature promises, so nesting is bounded by the type, and every count is
bounded by the bytes left in the frame before anything is allocated.

Frame:   <decimal length, 1-10 digits> "\\n" <payload of that many bytes>
Call:    payload = value(name as a string) value(arguments as a list)
Reply:   payload = "R" value(result)  |  "E" value(message as a string)   (the candidate raised/threw/panicked)

value:
    n                  null, None, nil, an empty Optional/Option/std::optional, a void result
    u                  JavaScript's undefined
    T | F              true, false
    i<digits>;         an integer, optional leading "-", at most 40 characters (the typed decoder checks its width)
    d<text>;           a float: "nan", "inf", "-inf" or a decimal that round-trips (17 significant digits for
                       a double, 9 for a float), at most 40 characters
    s<len>:<bytes>     a string of <len> UTF-8 bytes (C++'s std::string: its bytes)
    c<digits>;         a char: its code point (C++: the byte's value, 0-255)
    l<count>:<values>  a list, vector, array or slice
    m<count>:<pairs>   a map or a JavaScript object: key, value, key, value, ...
    t<count>:<values>  a tuple, a pair, or Go's multiple results
    o<value>           a present Optional/Option/std::optional

This module is the grammar's reference implementation in Python: the tests check each language's codec
against it (sandbox/compiled/codecs/*), and it documents the format in code. It is not on the judging path.
"""
from __future__ import annotations

import math
import struct

CANDIDATE_FD = 3  # where the candidate's program reads calls and writes replies
TEST_CALL_FD = 4  # where the test's program writes calls and reads replies (fd 3 is its report socket)
REPLY_LIMIT = 8 << 20  # bytes: a longer reply fails its call (the test side reads no further)
CALL_LIMIT = 64 << 20  # bytes: the arguments the test sends (trusted, but the candidate's decoder has a bound too)
NUMBER_CHARS = 40
DYNAMIC_DEPTH = 100  # nesting allowed where the type does not bound it (JavaScript, Java's Object, Go's interface{})


class Undefined:
    """JavaScript's undefined, as a Python value."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


class Char(str):
    """A char, to tell it from a one-character string."""


class Some:
    """A present optional, to tell `o n` (Some(None)) from `n`."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, Some) and other.value == self.value

    def __repr__(self) -> str:
        return f"Some({self.value!r})"


def encode(value) -> bytes:
    if value is None:
        return b"n"
    if value is UNDEFINED:
        return b"u"
    if value is True or value is False:
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
        return b"d" + text.encode() + b";"
    if isinstance(value, Char):
        return b"c%d;" % ord(value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:" % len(data) + data
    if isinstance(value, Some):
        return b"o" + encode(value.value)
    if isinstance(value, tuple):
        return b"t%d:" % len(value) + b"".join(map(encode, value))
    if isinstance(value, list):
        return b"l%d:" % len(value) + b"".join(map(encode, value))
    if isinstance(value, dict):
        return b"m%d:" % len(value) + b"".join(encode(k) + encode(v) for k, v in value.items())
    raise TypeError(f"no wire form for {type(value).__name__}")


def frame(payload: bytes) -> bytes:
    return b"%d\n" % len(payload) + payload


def call(name: str, args: list) -> bytes:
    return frame(encode(name) + encode(list(args)))


class WireError(ValueError):
    pass


def decode(data: bytes, pos: int = 0, depth: int = 0) -> tuple[object, int]:
    """(value, next position): the untyped reading of one value (what JavaScript's decoder does)."""
    if depth > DYNAMIC_DEPTH:
        raise WireError("nested too deeply")
    if pos >= len(data):
        raise WireError("truncated")
    tag = data[pos:pos + 1]
    pos += 1
    if tag in (b"n", b"u", b"T", b"F"):
        return {b"n": None, b"u": UNDEFINED, b"T": True, b"F": False}[tag], pos
    if tag in (b"i", b"d", b"c"):
        end = data.find(b";", pos, pos + NUMBER_CHARS + 1)
        if end < 0:
            raise WireError("number too long or unterminated")
        text = data[pos:end].decode("ascii", "replace")
        try:
            value = int(text) if tag == b"i" else Char(chr(int(text))) if tag == b"c" else float(text)
        except (ValueError, OverflowError) as exc:
            raise WireError(f"bad number {text!r}") from exc
        return value, end + 1
    if tag == b"o":
        value, pos = decode(data, pos, depth + 1)
        return Some(value), pos
    if tag in (b"s", b"l", b"m", b"t"):
        colon = data.find(b":", pos, pos + 11)
        if colon <= pos or not data[pos:colon].isdigit():
            raise WireError("bad length")
        count, pos = int(data[pos:colon]), colon + 1
        if count > len(data) - pos:  # every item takes at least one byte
            raise WireError("length beyond the frame")
        if tag == b"s":
            return data[pos:pos + count].decode("utf-8", "surrogatepass"), pos + count
        items = []
        for _ in range(count * (2 if tag == b"m" else 1)):
            item, pos = decode(data, pos, depth + 1)
            items.append(item)
        if tag == b"m":
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        return (tuple(items) if tag == b"t" else items), pos
    raise WireError(f"unknown tag {tag!r}")


def decode_all(data: bytes):
    value, pos = decode(data)
    if pos != len(data):
        raise WireError("trailing bytes")
    return value


def float32(value: float) -> float:
    """The float a C++/Rust/Java/Go `float`/`f32`/`float32` holds for `value`."""
    return struct.unpack("f", struct.pack("f", value))[0]
