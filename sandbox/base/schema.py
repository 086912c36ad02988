"""Schema validation of records at the boundary: types, not just presence, and bounded sizes.

Every record type (Problem, Verdict, Candidate, RankedGroup, the data_evol records) is a dataclass;
`build(cls, rec, where)` checks each field of `rec` against the dataclass's type hints and builds
the instance, or raises a RecordError naming the file:line and the field. `test_list` given as a
string, a prompt that is an int, an entry point that is a list: each is an error, never coerced.

Strings from outside are bounded: `MAX_TEXT_CHARS` (env RRTF_MAX_TEXT_CHARS, default 1,000,000
characters) per field unless the field's metadata sets `max_chars`. One runaway value must fail with
a clear message, not take the machine's memory further down the pipeline.
"""
from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from typing import Any, TypeVar, Union

from sandbox.base.errors import RecordError

T = TypeVar("T")
MAX_TEXT_CHARS = int(os.environ.get("RRTF_MAX_TEXT_CHARS", 1_000_000))
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def check_value(value: Any, hint: Any, where: str, field: str, max_chars: int = MAX_TEXT_CHARS) -> Any:
    """`value` converted to `hint` (enums from their label, nested dataclasses from dicts), or a
    RecordError. Ints are accepted for floats; bools are never accepted as ints."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return check_value(value, option, where, field, max_chars)
            except RecordError as exc:
                errors.append(exc.message)
        raise RecordError(where, field, errors[0] if len(errors) == 1 else f"expected {_name(hint)}, got {_kind(value)}")
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise RecordError(where, field, f"expected a list, got {_kind(value)}")
        item = args[0] if args else Any
        return [check_value(v, item, where, f"{field}[{i}]", max_chars) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(where, field, f"expected an object, got {_kind(value)}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): check_value(v, vt, where, f"{field}.{k}", max_chars) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        parse = getattr(hint, "parse", None)
        try:
            return parse(value) if parse else hint(value)
        except (KeyError, ValueError, TypeError):
            raise RecordError(where, field, f"unknown value {value!r}; known: {', '.join(m.name.lower() for m in hint)}") from None
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return build(hint, value, where, prefix=f"{field}.")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(where, field, f"expected a number, got {_kind(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(where, field, f"expected an integer, got {_kind(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecordError(where, field, f"expected true or false, got {_kind(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise RecordError(where, field, f"expected a string, got {_kind(value)}")
        if len(value) > max_chars:
            raise RecordError(where, field, f"{len(value):,} characters is over the limit of {max_chars:,} "
                                            "(RRTF_MAX_TEXT_CHARS raises it)")
        return value
    return value


def build(cls: type[T], rec: Any, where: str = "", *, prefix: str = "", ignore_unknown: bool = True) -> T:
    """An instance of dataclass `cls` from a JSON object, every field type-checked."""
    if not isinstance(rec, dict):
        raise RecordError(where, prefix.rstrip("."), f"expected a JSON object, got {_kind(rec)}")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in rec:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(where, prefix + f.name, "missing field")
            continue
        kwargs[f.name] = check_value(rec[f.name], hints[f.name], where, prefix + f.name,
                                     f.metadata.get("max_chars", MAX_TEXT_CHARS))
    if not ignore_unknown:
        unknown = sorted(set(rec) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise RecordError(where, prefix + unknown[0], "unknown field")
    return cls(**kwargs)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


__all__ = ["MAX_TEXT_CHARS", "build", "check_value"]
