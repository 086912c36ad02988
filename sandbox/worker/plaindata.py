"""Plain data: the only form in which values cross between the trusted harness and a candidate.

`encode(value)` writes a value as Python literal text; `literal(text)` parses such text back without
evaluating anything: numbers (incl. inf/nan), str, bytes, bool, None, the builtin type objects
(`int`, `str`, ...: MBPP/533 passes them as arguments), and lists, tuples, dicts, sets, frozensets,
Counters, OrderedDicts and deques of those. Anything else is refused, so a candidate can only ever
hand the harness data -- never an object whose `__eq__` or `__bool__` it wrote.

Integers of any size cross: those over a few thousand digits travel as hexadecimal literals
(linear to write and parse), while decimal literals stay bounded (`MAX_DECIMAL_DIGITS`), because
CPython 3.11 converts decimal text quadratically and the harness must not be stalled by a crafted
answer. Where the harness parses what a candidate sent (`max_tokens`), literal text is also bounded
in tokens (`HOSTILE_TOKENS`, estimated at C speed before parsing): `ast.parse` costs microseconds per
token in C code no alarm interrupts. `write_back(original, changed)` copies what a call did to its
mutable arguments back onto the trusted side's objects, so `xs = [..]; f(xs); assert xs == ...`
tests judge `xs.sort()` right.
"""
from __future__ import annotations

import ast
import collections
import json
import re
import sys
import types
import warnings

MAX_TEXT = 8 << 20  # longest literal text accepted
MAX_DECIMAL_DIGITS = 4300  # CPython's default limit; bigger integers travel in hex
# Tokens (estimated: runs of non-word characters) of literal text the harness parses from a candidate:
# ast.parse spends ~1-3 us per token in C, where the harness's per-case alarm cannot interrupt it (6 MB
# of "0," stalled it ~19 s). The largest literal-form reply in HumanEval+ and MBPP+ (Mbpp/255, a batch of
# lists of tuples) has ~145,000; values made of lists, str-keyed dicts and atoms travel as JSON instead.
HOSTILE_TOKENS = 500_000
_TOKEN_GAPS = re.compile(r"\W+")
BIG = 10 ** 4000  # integers at least this large are written in hex
REF = "__rrtf_ref__"
JSON_MARK = "\x01"  # starts `encode_wire`'s JSON form (never literal text: not valid Python)
TYPE_NAMES = {t.__name__: t for t in (int, float, complex, str, bytes, bytearray, bool, list, tuple, dict, set,
                                      frozenset, object, type)}
TYPES = {t: name for name, t in TYPE_NAMES.items()}
_CONSTANTS = {"inf": float("inf"), "nan": float("nan"), "True": True, "False": False, "None": None}
_CONTAINERS = {"set": set, "frozenset": frozenset, "Counter": collections.Counter,
               "OrderedDict": collections.OrderedDict, "deque": collections.deque}
_ATOMS = (str, bytes, float, complex, bool, type(None))
_REPR_FIRST = frozenset({int, str, bytes, float, complex, bool, type(None), list, tuple, dict, set, frozenset})


# --------------------------------------------------------------------------- parsing

def literal(text: str, refs: dict | None = None, *, max_tokens: int | None = None):
    """Parse literal text (or `encode_wire`'s marked JSON) into plain data; ValueError for anything
    else. `refs` (candidate side only) resolves `__rrtf_ref__(n)`, the harness's handle for an
    object living in the candidate. `max_tokens` (the harness, parsing what a candidate sent: see
    HOSTILE_TOKENS) refuses literal text estimated longer than that before parsing it, and makes
    compile-time warnings errors (one per token, each printed, would cost more than the token)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ValueError("value too large")
    if text.startswith(JSON_MARK):
        try:
            return json.loads(text[1:], parse_int=_bounded_int, parse_float=_bounded_float)
        except (ValueError, RecursionError, MemoryError, TypeError) as exc:
            raise ValueError(f"not plain data (JSON: {type(exc).__name__})") from None
    if max_tokens is not None and len(text) > max_tokens:
        tokens = _TOKEN_GAPS.subn("", text)[1]  # about one per token; counted at C speed
        if tokens > max_tokens:
            raise ValueError(f"value too large (~{tokens:,} tokens of literal text, at most {max_tokens:,})")
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(MAX_DECIMAL_DIGITS)  # a huge decimal literal fails fast here
    try:
        if max_tokens is None:
            tree = ast.parse(text.strip(), mode="eval")
        else:
            with warnings.catch_warnings():  # the harness is single-threaded: this state is its own
                warnings.simplefilter("error")
                tree = ast.parse(text.strip(), mode="eval")
        return _lit(tree.body, refs)
    except (SyntaxError, RecursionError, MemoryError, TypeError, OverflowError, Warning) as exc:
        # OverflowError: deque(maxlen=<more than C can hold>)
        raise ValueError(f"not plain data ({type(exc).__name__})") from None
    finally:
        sys.set_int_max_str_digits(limit)


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_DECIMAL_DIGITS:  # CPython converts decimal text quadratically
        raise ValueError("integer too long")
    return int(digits)


def _bounded_float(text: str) -> float:
    if len(text) > 1000:
        raise ValueError("number too long")
    return float(text)


def _lit(node, refs):
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            raise ValueError("not plain data")
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in TYPE_NAMES:
            return TYPE_NAMES[node.id]
        raise ValueError(f"not plain data (name {node.id[:40]})")
    if isinstance(node, ast.List):
        return [_lit(e, refs) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_lit(e, refs) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_lit(e, refs) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("not plain data")
        return {_lit(k, refs): _lit(v, refs) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _lit(node.operand, refs)
        if type(v) not in (int, float, complex):
            raise ValueError("not plain data")
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _lit(node.left, refs), _lit(node.right, refs)
        if type(left) not in (int, float) or type(right) is not complex:
            raise ValueError("not plain data")
        return left + right if isinstance(node.op, ast.Add) else left - right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == REF and refs is not None:
            return _ref(node, refs)
        if node.func.id in _CONTAINERS:
            return _container(node, refs)
    raise ValueError(f"not plain data ({type(node).__name__})")


def _ref(node, refs):
    if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Constant):
        raise ValueError("not plain data")
    try:
        return refs[node.args[0].value]
    except (KeyError, TypeError):
        raise ValueError("unknown program object (from an earlier run of the program?)") from None


def _container(node, refs):
    kind = node.func.id
    if len(node.args) > 1 or any(k.arg != "maxlen" or kind != "deque" for k in node.keywords):
        raise ValueError("not plain data")
    items = _lit(node.args[0], refs) if node.args else ()
    if kind in ("Counter", "OrderedDict") and not isinstance(items, (dict, list, tuple)):
        raise ValueError("not plain data")
    if kind in ("set", "frozenset", "deque") and not isinstance(items, (list, tuple, set, frozenset, str, bytes)):
        raise ValueError("not plain data")
    kwargs = {k.arg: _lit(k.value, refs) for k in node.keywords}
    if kwargs and not (kwargs["maxlen"] is None or type(kwargs["maxlen"]) is int):
        raise ValueError("not plain data")
    return _CONTAINERS[kind](items, **kwargs)


# --------------------------------------------------------------------------- writing

def encode(value, refs: dict | None = None) -> str:
    """Literal text for `value` that `literal` accepts; ValueError if it is not plain data (after
    turning common container subclasses and lazy iterables into what they compare equal to).

    `repr` first, at C speed, for the common case; the text is then checked by parsing it, as the
    receiving side will (`refs`: which handles are known). Values repr cannot write as plain data
    (type objects, integers too big for decimal, a namedtuple, ...) take the slower encoder."""
    t = type(value)
    if (t is int and -BIG < value < BIG) or t in _ATOMS:
        return repr(value)  # always valid literal text (inf and nan included): no check needed
    try:
        # The type walk first (~10x faster than parsing repr's text): repr only what it can write as
        # literal text. Never repr a huge int, even inside a container: CPython writes decimal
        # quadratically (a million digits: ~20 s; evalplus's HumanEval/83 returns such integers).
        if t in _REPR_FIRST and t is not int and _reprs_as_literal(value):
            text = repr(value)
            if len(text) > MAX_TEXT:  # the slower encoder would write the same characters
                raise ValueError("value too large to pass")
            return text
    except RecursionError:
        pass
    try:
        text = _enc(value)
    except RecursionError:
        raise ValueError("value nested too deeply") from None
    if len(text) > MAX_TEXT:
        raise ValueError("value too large to pass")
    return text


def encode_wire(value, refs: dict | None = None) -> str:
    """`encode` for the boundary between harness and candidate: values made only of lists,
    str-keyed dicts, str, float, bool, None and bounded ints travel as JSON marked by `JSON_MARK`
    (exact for these types, and parsed ~10x faster than literal text: evalplus passes ~1,000 inputs
    and outputs per problem); anything else as `encode` writes it. `literal` reads both."""
    try:
        if _json_safe(value):
            text = JSON_MARK + json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            if len(text) > MAX_TEXT:
                raise ValueError("value too large to pass")
            return text
    except RecursionError:
        pass
    return encode(value, refs)


_JSON_ATOMS = frozenset({str, float, bool, type(None)})


def _json_safe(v) -> bool:
    t = type(v)
    if t in _JSON_ATOMS:
        return True
    if t is int:
        return -BIG < v < BIG
    if t is list:
        return all(map(_json_safe, v))
    if t is dict:
        return all(type(k) is str and _json_safe(x) for k, x in v.items())
    return False


_WALK_ATOMS = frozenset({str, bytes, float, bool, type(None)})


def _reprs_as_literal(v) -> bool:
    """Whether `repr(v)` is certainly literal text: built only of exact builtin types whose repr
    `literal` parses (not complex: `nanj`; ints below BIG: decimal stays bounded)."""
    t = type(v)
    if t in _WALK_ATOMS:
        return True
    if t is int:
        return -BIG < v < BIG
    if t is list or t is tuple or t is set or t is frozenset:
        return all(map(_reprs_as_literal, v))
    if t is dict:
        return all(_reprs_as_literal(k) and _reprs_as_literal(x) for k, x in v.items())
    return False


def _enc(v) -> str:
    t = type(v)
    if t is int:
        return repr(v) if -BIG < v < BIG else hex(v)
    if t in _ATOMS:
        return repr(v)
    if t is list:
        return "[" + ", ".join(map(_enc, v)) + "]"
    if t is tuple:
        return "(" + ", ".join(map(_enc, v)) + ("," if len(v) == 1 else "") + ")"
    if t is dict:
        return "{" + ", ".join(f"{_enc(k)}: {_enc(x)}" for k, x in v.items()) + "}"
    if t is set:
        return "{" + ", ".join(map(_enc, v)) + "}" if v else "set()"
    if t is frozenset:
        return "frozenset({" + ", ".join(map(_enc, v)) + "})" if v else "frozenset()"
    if t is collections.Counter or t is collections.OrderedDict:
        return f"{t.__name__}({{" + ", ".join(f"{_enc(k)}: {_enc(x)}" for k, x in v.items()) + "})"
    if t is collections.deque:
        return "deque([" + ", ".join(map(_enc, v)) + f"], maxlen={v.maxlen!r})"
    if t is bytearray:
        return _enc(bytes(v))  # compares equal to the bytes it holds
    if isinstance(v, type) and v in TYPES:
        return TYPES[v]
    return _enc_other(v)


def _enc_other(v) -> str:
    if getattr(type(v), "__rrtf_handle__", False) is True:
        return repr(v)  # the harness's handle to an object in the candidate (harness.RemoteRef)
    if isinstance(v, collections.defaultdict):
        return _enc(dict(v))
    for base in (bool, int, float, complex, str, bytes):
        if isinstance(v, base):
            return _enc(base(v))
    if isinstance(v, (types.GeneratorType, map, filter, zip, enumerate, reversed, type({}.values()))):
        return _enc(list(v))  # what `list(candidate(...))` would see
    if isinstance(v, (type({}.keys()), type({}.items()))):
        try:
            return _enc(set(v))  # dict views compare like sets
        except TypeError:
            return _enc(list(v))
    for base in (list, tuple, set, frozenset, dict):
        if isinstance(v, base):  # namedtuple, a list subclass, ...: compared as the base type
            return _enc(base(v))
    raise ValueError(f"a {type(v).__name__[:60]} object is not plain data")


# --------------------------------------------------------------------------- in-place changes

MUTABLE = (list, dict, set, bytearray, collections.deque)


def write_back(original, changed) -> None:
    """Make `original` (a mutable container on the trusted side) equal to `changed` (what the call
    left in the candidate's copy), keeping the identity of nested mutable containers where the
    shape allows, as an in-place change in one process would."""
    if type(original) is list and type(changed) is list:
        for i in range(min(len(original), len(changed))):
            if _same_kind(original[i], changed[i]):
                write_back(original[i], changed[i])
            else:
                original[i] = changed[i]
        del original[len(changed):]
        original.extend(changed[len(original):])
    elif isinstance(original, dict) and isinstance(changed, dict):
        for key in [k for k in original if k not in changed]:
            del original[key]
        for key, value in changed.items():
            if key in original and _same_kind(original[key], value):
                write_back(original[key], value)
            else:
                original[key] = value
    elif isinstance(original, set) and isinstance(changed, (set, frozenset)):
        original.clear()
        original.update(changed)
    elif isinstance(original, (collections.deque, bytearray)) and isinstance(changed, (collections.deque, bytes, list)):
        original.clear()
        original.extend(changed)


def _same_kind(a, b) -> bool:
    return isinstance(a, MUTABLE) and (type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)))


def is_mutable(value) -> bool:
    return isinstance(value, MUTABLE)
