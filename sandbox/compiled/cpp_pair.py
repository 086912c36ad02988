"""C++ as two programs: the candidate's code in a program of its own, the test in another that reaches it only
through calls of plain data (sandbox/compiled/wire.py; the codec is sandbox/compiled/codecs/wire.hpp).

The prompt is trusted, so the entry point's signature is parsed from it (host side): the function whose body the
prompt leaves open. From it this module writes
- the candidate's program: the codec, the candidate's code (its own `main`, if any, renamed) and a dispatcher
  `main` that decodes each call's arguments by the parameter types, calls the entry point and replies;
- the test's program: the codec, the prompt with the entry point's definition replaced by a stub of the same
  signature that sends the call and decodes the reply as the declared return type, then the rewritten test.
The generator copies the signature's type text; the codec's overloads and templates do the rest. A signature with a
type outside the codec (boost::any, a prompt's own typedef, pointers, non-const references) is reported by
`outside_codec` and the language module keeps the one-process build for it.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.compiled.clike import match_bracket

WIRE_HPP = Path(__file__).with_name("codecs") / "wire.hpp"
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "do", "else", "decltype"}
SPECIFIERS = {"static", "inline", "extern", "constexpr"}
INTEGER_WORDS = {"short", "int", "long", "signed", "unsigned"}
# Sorted words of the scalar types the codec carries (`long long int`, `unsigned`, ...).
_BASES = [(), ("short",), ("short", "int"), ("int",), ("long",), ("long", "int"), ("long", "long"), ("long", "long", "int")]
SCALARS = {("bool",), ("char",), ("float",), ("double",), ("char", "signed"), ("char", "unsigned")} | {
    tuple(sorted(sign + base)) for sign in ((), ("signed",), ("unsigned",)) for base in _BASES if sign + base}
FIXED = {"size_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t"}
TEMPLATES = {"vector": 1, "list": 1, "deque": 1, "set": 1, "optional": 1, "map": 2, "unordered_map": 2, "pair": 2,
             "tuple": -1}  # name -> number of type arguments (-1: any)


class Unsupported(ValueError):
    """A type (or a signature) the wire's C++ codec does not carry."""


@dataclass
class Signature:
    name: str
    ret: str  # the return type's text, as the prompt writes it (specifiers such as `static` dropped)
    params: list[str]  # each parameter's type text
    start: int  # where the definition (its return type) starts in the prompt


@functools.cache
def wire_source() -> str:
    return WIRE_HPP.read_text()


def blank_comments(text: str) -> str:
    """`text` with every comment replaced by spaces (newlines kept): same length, so positions carry over."""
    out, i = list(text), 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("//", i) or text.startswith("/*", i):
            end = text.find("\n", i) if text[i + 1] == "/" else text.find("*/", i + 2)
            end = len(text) if end < 0 else end + (0 if text[i + 1] == "/" else 2)
            for k in range(i, end):
                if out[k] != "\n":
                    out[k] = " "
            i = end
        else:
            i += 1
    return "".join(out)


def find_signature(prefix: str, entry: str) -> Signature | None:
    """The function the prompt leaves open (its body's brace unclosed at the end): the entry point, whatever
    `entry` says (HumanEvalPack CPP/121 and CPP/156 name it differently from the function the test calls).
    None if there is no such function."""
    code = blank_comments(prefix)
    found = None
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", code):
        if m.group(1) in KEYWORDS:
            continue
        close = match_bracket(code, m.end() - 1)
        brace = re.match(r"\s*(?:const\s*)?(?:noexcept\s*)?\{", code[close + 1:]) if close > 0 else None
        if brace and match_bracket(code, close + brace.end()) < 0:
            found = (m, close)
            if m.group(1) == entry:
                break
    if found is None:
        return None
    m, close = found
    boundary = max(code.rfind(c, 0, m.start()) for c in ";{}") + 1
    start, offset = None, boundary
    for line in code[boundary:m.start()].splitlines(keepends=True):  # preprocessor lines stay with what precedes
        if start is None and line.strip() and not line.lstrip().startswith("#"):
            start = offset + len(line) - len(line.lstrip())
        offset += len(line)
    start = m.start() if start is None else start
    words = code[start:m.start()].split()
    ret = " ".join(w for w in words if w not in SPECIFIERS)
    return Signature(name=m.group(1), ret=ret, params=_params(code[m.end():close]), start=start)


def _params(text: str) -> list[str]:
    """Each parameter's type, from the text between the parentheses (names dropped)."""
    pieces, depth, begin = [], 0, 0
    for i, c in enumerate(text):
        depth += c in "<([{"
        depth -= c in ">)]}"
        if c == "," and depth == 0:
            pieces.append(text[begin:i])
            begin = i + 1
    pieces.append(text[begin:])
    if len(pieces) == 1 and pieces[0].strip() in ("", "void"):
        return []
    types = []
    for piece in pieces:
        m = re.fullmatch(r"\s*(.*?)\b([A-Za-z_]\w*)\s*", piece, re.S)
        if not m or not m.group(1).strip() or m.group(2) in INTEGER_WORDS | {"char", "bool", "float", "double", "const"}:
            raise Unsupported(f"parameter {piece.strip()!r} (no name, a default value or an array)")
        types.append(" ".join(m.group(1).split()))
    return types


def parse_type(text: str, *, param: bool) -> tuple:
    """The type as a tree (`("int",)`, `("vector", ("int",))`, ...); Unsupported if the codec does not carry it.
    A parameter may be a const reference (its value is what crosses); a return type may be void."""
    tokens = re.findall(r"[A-Za-z_]\w*|::|\d+|\S", text)
    if param is False and tokens == ["void"]:
        return ("void",)
    node, i, const = _type(tokens, 0)
    if i < len(tokens) and tokens[i] == "&" and param and const:
        i += 1
    if i != len(tokens):
        raise Unsupported(f"{text!r}: {' '.join(tokens[i:])!r} (a pointer, a non-const reference or an unknown form)")
    return node


def _type(tokens: list[str], i: int) -> tuple[tuple, int, bool]:
    const = False

    def word(k: int) -> str:
        return tokens[k] if k < len(tokens) else ""

    while word(i) == "const":
        const, i = True, i + 1
    if word(i) == "std" and word(i + 1) == "::":
        i += 2
    w = word(i)
    if w in INTEGER_WORDS or w in ("char", "bool", "float", "double"):
        words = []
        while word(i) in INTEGER_WORDS or word(i) in ("char", "bool", "float", "double"):
            words.append(word(i))
            i += 1
        if tuple(sorted(words)) not in SCALARS:
            raise Unsupported(f"scalar type {' '.join(words)!r}")
        node = (" ".join(words),)
    elif w in FIXED or w == "string":
        node, i = (w,), i + 1
    elif w in TEMPLATES:
        if word(i + 1) != "<":
            raise Unsupported(f"{w} without type arguments")
        i += 2
        args = []
        while True:
            arg, i, _ = _type(tokens, i)
            args.append(arg)
            if word(i) == ",":
                i += 1
                continue
            if word(i) != ">":
                raise Unsupported(f"{w}<...>: unexpected {word(i)!r}")
            i += 1
            break
        if TEMPLATES[w] >= 0 and len(args) != TEMPLATES[w]:
            raise Unsupported(f"{w} with {len(args)} type arguments")
        node = (w, *args)
    else:
        raise Unsupported(f"type {w!r} is outside the wire's codec")
    while word(i) == "const":
        const, i = True, i + 1
    return node, i, const


def outside_codec(sig: Signature) -> str:
    """"" if every type of the signature crosses the wire, else why not (the reason a run keeps one process)."""
    try:
        parse_type(sig.ret, param=False)
        for p in sig.params:
            parse_type(p, param=True)
    except Unsupported as exc:
        return f"signature of {sig.name} outside the C++ wire codec: {exc}"
    return ""


def signature_or_reason(prefix: str, entry: str) -> tuple[Signature | None, str]:
    """(the entry point's signature, "") if the run can be split in two, else (None, why not)."""
    try:
        sig = find_signature(prefix, entry)
    except Unsupported as exc:
        return None, f"entry point's parameters: {exc}"
    if sig is None:
        return None, "the prompt leaves no function open for the candidate to complete"
    why = outside_codec(sig)
    return (None, why) if why else (sig, "")


# --------------------------------------------------------------------------------------------- generated code

def _call_args(n: int) -> str:
    return ", ".join(f"::std::move(rrtf_a{k})" for k in range(n))


def dispatcher(sig: Signature) -> str:
    """The candidate program's `main`: serve calls on fd 3 until the test's program closes its end. Every name it
    uses is #undef'd first, so no macro of the candidate's (`#define int long long`) rewrites it; a `main` of the
    candidate's was renamed by `candidate_source`."""
    decode = "".join(f"        ::std::decay_t<{t}> rrtf_a{k}{{}};\n        ::rrtf_wire::get(rrtf_r, rrtf_a{k});\n"
                     for k, t in enumerate(sig.params))
    invoke = f"{sig.name}({_call_args(len(sig.params))})"
    if parse_type(sig.ret, param=False) == ("void",):
        result = f"        {invoke};\n        return ::std::string(\"Rn\");\n"
    else:
        result = f"        return ::rrtf_wire::reply({invoke});\n"
    body = (f"int main() {{\n    return ::rrtf_wire::serve(\"{sig.name}\", {len(sig.params)}, [](::rrtf_wire::Reader& rrtf_r)"
            f" -> ::std::string {{\n{decode}        rrtf_r.finish();\n{result}    }});\n}}\n")
    undefs = "".join(f"#undef {name}\n" for name in sorted(set(re.findall(r"[A-Za-z_]\w*", body))))
    return undefs + body


def candidate_source(preamble: str, program: str, sig: Signature) -> str:
    """`preamble` holds the codec (or the precompiled header does). The candidate's own `main` (models often add one)
    becomes an ordinary function: the dispatcher is the program's."""
    return preamble + "\n#define main rrtf_candidate_main\n" + program + "\n#undef main\n" + dispatcher(sig)


def stub(sig: Signature) -> str:
    """A definition with the entry point's signature that calls the candidate's program."""
    params = ", ".join(f"{t} rrtf_a{k}" for k, t in enumerate(sig.params))
    args = "".join(f", rrtf_a{k}" for k in range(len(sig.params)))
    return f"{sig.ret} {sig.name}({params}) {{\n    return ::rrtf_wire::call<{sig.ret}>(\"{sig.name}\"{args});\n}}\n"


def test_prefix(prefix: str, sig: Signature) -> str:
    """The prompt as the test's program sees it (after the codec): its helpers, trusted, and the stub in place of the
    entry point."""
    return prefix[:sig.start] + stub(sig)
