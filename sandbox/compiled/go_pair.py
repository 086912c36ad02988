"""Go in two programs (sandbox/languages/go.py): the candidate's and the test's, joined only by calls of
plain data (sandbox/compiled/wire.py; the codec is sandbox/compiled/codecs/wire*.go, the package `rrtfwire`
both import, compiled once per machine into the warm build cache).

The candidate's program is its package `cand` (as before) and a generated `main` that pins the entry
point to the prompt's exact signature (`var rrtfEntry func(<params>) <results> = cand.Entry`: any other
signature is a compile error) and answers calls on fd 3. The test's program is the rewritten test, the
prompt's own helper functions (the test of Go/38 encodes with the prompt's EncodeCyclic: trusted code,
run on the trusted side), and a stub with the entry point's signature that sends the arguments and
decodes the reply into the declared result types -- so the test only ever holds values of built-in types
that it decoded itself, and contains no candidate code at all. The key reaches it over the report socket,
so the test's program depends on the problem only and is built once per problem.

Everything here reads the prompt and the test (trusted), never the candidate's text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.compiled import wire
from sandbox.compiled.clike import code_matches, match_bracket, split_top_level, strip_comments
from sandbox.compiled.go_source import package_name, split_header

CODECS = Path(__file__).with_name("codecs")
WIRE_GO = ("wire.go", "wire_decode.go", "wire_calls.go")  # encoding and frames; the typed decoder; calls
LIMITS_GO = f"""package rrtfwire

// generated from sandbox/compiled/wire.py
const (
\trrtfCandidateFD = {wire.CANDIDATE_FD}
\trrtfTestCallFD = {wire.TEST_CALL_FD}
\trrtfReplyLimit = {wire.REPLY_LIMIT}
\trrtfCallLimit = {wire.CALL_LIMIT}
\trrtfNumberChars = {wire.NUMBER_CHARS}
\trrtfDynamicDepth = {wire.DYNAMIC_DEPTH}
)
"""
# What the codec has a plain-data form for: built-in scalars, and slices, arrays, maps and interface{} of them.
BASIC_TYPES = frozenset({"bool", "string", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32",
                         "uint64", "uintptr", "byte", "rune", "float32", "float64", "any"})
TYPE_KEYWORDS = frozenset({"map", "interface", "chan", "func", "struct"})
IDENT = re.compile(r"[A-Za-z_]\w*")
# A capitalised name called by the test: the entry point, a prompt helper, or one the test defines.
CALLED_RE = re.compile(r"(?<![\w.])([A-Z]\w*)\s*\(")
DEFINED_RE = re.compile(r"\bfunc\s+([A-Za-z_]\w*)|\b([A-Za-z_]\w*)\s*:=|\bvar\s+([A-Za-z_]\w*)|\btype\s+([A-Za-z_]\w*)")


class Unsupported(ValueError):
    """Why a problem keeps the one-process build (the verdict's isolation says "+one-process")."""


@dataclass(frozen=True)
class Signature:
    params: list[str]  # the types, as written (a variadic one starts with "...")
    results: list[str]

    def func_type(self) -> str:
        results = self.results[0] if len(self.results) == 1 else f"({', '.join(self.results)})" if self.results else ""
        return f"func({', '.join(self.params)}) {results}".rstrip()


def _type_end(text: str, i: int) -> int:
    """The end of the type starting at text[i] (no spaces in `text`), or Unsupported."""
    if text.startswith("[]", i):
        return _type_end(text, i + 2)
    if m := re.compile(r"\[(\d+)\]").match(text, i):
        return _type_end(text, m.end())
    if text.startswith("map[", i):
        j = _type_end(text, i + 4)
        if not text.startswith("]", j):
            raise Unsupported(f"map type {text!r}")
        return _type_end(text, j + 1)
    if text.startswith("interface{}", i):
        return i + len("interface{}")
    m = IDENT.match(text, i)
    if m and m.group() in BASIC_TYPES:
        return m.end()
    raise Unsupported(f"the type {text[i:] or text!r} has no plain-data form on the wire")


def check_type(text: str) -> str:
    compact = re.sub(r"\s+", "", text)
    if not compact or _type_end(compact, 0) != len(compact):
        raise Unsupported(f"the type {text!r} has no plain-data form on the wire")
    return compact


def _split_top(text: str) -> list[str]:
    return [p.strip() for p in split_top_level(text) if p.strip()]


def _param_types(text: str) -> list[str]:
    """The types of a parameter (or result) list, in order: `a, b int, c string` -> [int, int, string]."""
    parts = _split_top(text)
    named = any((m := IDENT.match(p)) and m.group() not in TYPE_KEYWORDS and p[m.end():].strip() for p in parts)
    types, pending = [], 0
    for p in parts:
        if not named:
            types.append(p)
            continue
        m = IDENT.match(p)
        rest = p[m.end():].strip() if m else ""
        if not rest:
            pending += 1
            continue
        types += [rest] * (pending + 1)
        pending = 0
    if pending:
        raise Unsupported("unnamed parameters after named ones")
    out = []
    for i, t in enumerate(types):
        variadic = t.startswith("...")
        if variadic and i != len(types) - 1:
            raise Unsupported("a variadic parameter that is not the last")
        out.append(("..." if variadic else "") + check_type(t[3:] if variadic else t))
    return out


def entry_signature(prompt: str, entry: str) -> tuple[Signature, int]:
    """The entry point's signature from the prompt (which ends by opening its body), and where its
    declaration starts."""
    found = [m for m in code_matches(prompt, re.compile(rf"func\s+{re.escape(entry)}\s*\("))
             if m.start() == 0 or prompt[m.start() - 1] == "\n"]
    if not found:
        raise Unsupported(f"the prompt declares no function {entry}")
    decl = found[-1]
    close = match_bracket(prompt, decl.end() - 1)
    rest = strip_comments(prompt[close + 1:]) if close > 0 else ""
    if "{" not in rest or rest[rest.rindex("{") + 1:].strip():
        raise Unsupported("the prompt does not end by opening the entry point's body")
    results = rest[:rest.rindex("{")].strip()
    if results.startswith("("):
        if match_bracket(results, 0) != len(results) - 1:
            raise Unsupported(f"results {results!r}")
        result_types = _param_types(results[1:-1])
    else:
        result_types = [check_type(results)] if results else []
    if any(t.startswith("...") for t in result_types):
        raise Unsupported("variadic results")
    return Signature(_param_types(strip_comments(prompt[decl.end():close])), result_types), decl.start()


def prompt_helpers(prompt: str, start: int) -> tuple[str, list[str]]:
    """(the prompt's declarations before the entry point, without its import declarations; their imports)."""
    head = prompt[:start]
    specs, spans = split_header(head)
    pieces, last = [], 0
    for a, b in spans:
        pieces += [head[last:a], "\n" * head.count("\n", a, b)]
        last = b
    return "".join([*pieces, head[last:]]), [quoted[1:-1] for name, quoted in specs if not name]


def test_calls_only_known_names(test: str, helpers: str, entry: str) -> None:
    """A test that calls a capitalised name neither it, the prompt nor the entry point defines would call
    something only the candidate defines: such a problem keeps the one-process build."""
    code = strip_comments(test + "\n" + helpers)
    defined = {n for m in DEFINED_RE.finditer(code) for n in m.groups() if n} | {entry}
    unknown = sorted({n for n in CALLED_RE.findall(strip_comments(test)) if n not in defined})
    if unknown:
        raise Unsupported(f"the test calls {', '.join(unknown)}, which only the candidate defines")


def stub_source(sig: Signature, entry: str) -> str:
    """The entry point as the test sees it: its exact signature, a call over the wire."""
    params = ", ".join(f"rrtfA{i} {t}" for i, t in enumerate(sig.params))
    results = ", ".join(f"rrtfR{i} {t}" for i, t in enumerate(sig.results))
    args = ", ".join(f"reflect.ValueOf(&rrtfA{i}).Elem()" for i in range(len(sig.params)))
    outs = ", ".join(f"reflect.ValueOf(&rrtfR{i}).Elem()" for i in range(len(sig.results)))
    return (f'package main\n\nimport (\n\t"reflect"\n\t"rrtfwire"\n)\n\nfunc {entry}({params}) ({results}) {{\n'
            f'\trrtfwire.Call("{entry}", []reflect.Value{{{args}}}, []reflect.Value{{{outs}}})\n\treturn\n}}\n')


def dispatcher_source(sig: Signature, entry: str) -> str:
    """The candidate's `main`: the entry point pinned to the prompt's signature, served on fd 3."""
    return (f'package main\n\nimport (\n\t"cand"\n\t"rrtfwire"\n)\n\nvar rrtfEntry {sig.func_type()} = cand.{entry}\n\n'
            f'func main() {{ rrtfwire.Serve(rrtfwire.CandidateFD, map[string]interface{{}}{{"{entry}": rrtfEntry}}) }}\n')


def imports_used(code: str, offered: list[str]) -> list[str]:
    """The offered packages whose name `code` uses (`math.`), each once: what goimports would keep."""
    code = strip_comments(code)
    out, bound = [], set()
    for path in dict.fromkeys(offered):
        name = package_name(path)
        if name not in bound and re.search(rf"(?<![\w.]){re.escape(name)}\s*\.", code):
            out.append(path)
            bound.add(name)
    return out


# What the generated programs use of the codec's package (the codec's own names stay unexported).
API_GO = """package rrtfwire

import "reflect"

const CandidateFD = rrtfCandidateFD

// CallFailed: what a failed call panics with in the test's program (its case then fails with this text).
type CallFailed = rrtfCallFailed

func Serve(fd uintptr, funcs map[string]interface{}) { rrtfServe(fd, funcs) }

func Call(name string, args []reflect.Value, results []reflect.Value) { rrtfCall(name, args, results) }
"""


def wire_package() -> dict[str, bytes]:
    """The codec as the package `rrtfwire` (sandbox/languages/go.py compiles it once per machine into the warm
    build cache, so no program of a run compiles it again): {file name: content}."""
    files = {name: (CODECS / name).read_bytes().replace(b"package main\n", b"package rrtfwire\n", 1) for name in WIRE_GO}
    return files | {"limits.go": LIMITS_GO.encode(), "api.go": API_GO.encode()}
