"""Go source, just enough of it for the judge (sandbox/languages/go.py): the compiler directives a
candidate may write, and the candidate's file rebuilt as package `cand` with one import list.

Directives are comments (`//go:linkname local pkg.name` binds a local name to any symbol of the
program, the test's `main` included), so they are searched in the raw text, never after stripping
comments; a directive the compiler would ignore (inside a string, a block comment) is refused too.

The candidate's file is rebuilt as `package cand`, one import block written by the judge, one
declaration, then the candidate's text with its own package clauses and import declarations (the ones
the header parser recognised at its start) blanked out. Go allows no import after a declaration
(SourceFile = PackageClause { ImportDecl } { TopLevelDecl }), so the block the judge wrote is the
file's whole import list: what the parser does not recognise stays in the text, where it can only be
a compile error, and the import check below cannot be dodged by a form the parser missed.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from sandbox.compiled.clike import strip_comments

# Directives that only tune code generation inside the candidate's own functions (and `go:build`, which
# can only leave the file out: a compile error). Everything else is refused: `go:linkname` (binds
# names to other packages' symbols: the harness's report emitter, runtime internals), `go:cgo_*`
# (linker directives; cgo_import_dynamic is even allowed in ordinary files), `go:embed` (the go command
# reads files the candidate names at build time; nothing to embed in a function answer), `go:notinheap`,
# `go:noescape`, `go:uintptrescapes`, `go:registerparams` (memory/ABI promises the compiler trusts), and
# any directive a later Go adds.
ALLOWED_DIRECTIVES = frozenset({"build", "generate", "noinline", "norace", "nosplit", "nocheckptr"})
DIRECTIVE_RE = re.compile(r"//go:(\w*)")
# `//line file:N` / `/*line file:N*/` rename positions; in Go < 1.20.9 / 1.21.2 (this is Debian's 1.19)
# a line directive naming a `_cgo_*.go` file let `//go:cgo_*` directives pass the compiler's own check
# (CVE-2023-39323). Refused where a line directive could be (`:` and a digit after `line `).
LINE_DIRECTIVE_RE = re.compile(r"(?://|/\*)line [^\n]*:\d")
# `unsafe`: the compiler accepts //go:linkname only in a file importing it -- the second line against
# linkname, enforced by the toolchain on the one import list the judge wrote.
REFUSED_IMPORTS = frozenset({"unsafe"})
IMPORT_PATH_RE = re.compile(r"[A-Za-z0-9_.~+\-/]+")  # what an import path may hold here: no escapes
IDENT_RE = re.compile(r"[^\W\d]\w*")
TOKEN_RE = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"|`[^`]*`|[^\W\d]\w*|.', re.S)
TRAILING_SEMI_RE = re.compile(r"[ \t]*;?")
BUILD_CONSTRAINT_RE = re.compile(r"//(?:go:build\b|\s*\+build\b)")
BARRIER = "var _ = 0 // the judge's imports end here: Go allows no import after a declaration\n"


def refused_directive(program: str) -> str:
    """Why `program` is refused for a compiler directive, or ""."""
    for m in DIRECTIVE_RE.finditer(program):
        if m.group(1) not in ALLOWED_DIRECTIVES:
            return f"compile error: the compiler directive //go:{m.group(1)} is not allowed"
    if LINE_DIRECTIVE_RE.search(program):
        return "compile error: //line directives are not allowed"
    return ""


def _next(text: str, pos: int, drop: list[tuple[int, int]]) -> tuple[str, int, int]:
    """The next token from `pos` that is not a space, a comment or `;`: (token, start, end); ("", n, n)
    at the end. Separators (`;`) and build constraints passed on the way are added to `drop`."""
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        tok = m.group()
        if tok.isspace() or tok == ";" or tok.startswith("//") or (tok.startswith("/*") and len(tok) > 1):
            if tok == ";" or BUILD_CONSTRAINT_RE.match(tok):
                drop.append((pos, m.end()))
            pos = m.end()
            continue
        return tok, pos, m.end()
    return "", pos, pos


def _spec(text: str, pos: int, drop: list[tuple[int, int]]) -> tuple[tuple[str, str], int] | None:
    """One import spec from `pos`: ((name or "", quoted path), end), or None."""
    tok, _, end = _next(text, pos, drop)
    name = ""
    if tok == "." or IDENT_RE.fullmatch(tok):
        name = tok
        tok, _, end = _next(text, end, drop)
    if len(tok) >= 2 and tok[0] in "\"`" and tok[-1] == tok[0]:
        return (name, tok), end
    return None


def split_header(text: str) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """The import specs (name, quoted path) of the package clauses and import declarations at the start
    of `text` (in any order: a prompt's import block may come before a whole file's `package main`),
    and the spans they (and build constraints among them) take."""
    specs: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        drop: list[tuple[int, int]] = []
        tok, start, end = _next(text, pos, drop)
        if tok == "package":
            name, _, end = _next(text, end, drop)
            if not IDENT_RE.fullmatch(name):
                break
            found = []
        elif tok == "import":
            paren, _, after = _next(text, end, drop)
            if paren == "(":
                found, end = [], after
                while True:
                    close, _, after = _next(text, end, drop)
                    if close == ")":
                        end = after
                        break
                    spec = _spec(text, end, drop)
                    if spec is None:
                        break
                    found.append(spec[0])
                    end = spec[1]
                if close != ")":
                    break
            else:
                spec = _spec(text, end, drop)
                if spec is None:
                    break
                found, end = [spec[0]], spec[1]
        else:
            break
        end = TRAILING_SEMI_RE.match(text, end).end()  # `import "x"; func F()`: the `;` is the import's
        specs += found
        spans += [*(d for d in drop if d[1] <= start), (start, end)]
        pos = end
    return specs, spans


def package_name(path: str) -> str:
    """The name a standard package is used by: its last element (`math/rand` -> rand, a `/v2` skipped)."""
    parts = path.split("/")
    return parts[-2] if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]) else parts[-1]


def is_standard(path: str) -> bool:
    return "." not in path.split("/")[0]


def refusal(program: str) -> str:
    """Why `program` is refused, or "": a compiler directive (above), an import of "unsafe" or an import
    path the judge does not read plainly (an escape). The one check to switch off to see what the rest
    of the design holds (tests/sandbox/test_separation_go.py)."""
    if why := refused_directive(program):
        return why
    for _name, quoted in split_header(program)[0]:
        path = quoted[1:-1]
        if not IMPORT_PATH_RE.fullmatch(path):
            return f"compile error: import path {quoted[:80]} is not allowed here"
        if path in REFUSED_IMPORTS:
            return f'compile error: import "{path}" is not allowed'
    return ""


def candidate_file(program: str, offered: Iterable[str]) -> str:
    """The candidate's file as package `cand` (what `refusal` says of it is checked apart).

    Imports follow goimports for standard packages, as the reference evaluation's combined file had
    them: a standard package the code names (`math.`) is imported once -- whether the candidate's
    header, the prompt or the test set-up (`offered`) declared it, or the judge's list of usual ones --
    and an unnamed standard import the code does not name is dropped (a prompt's `import "math"`
    continued by code that no longer needs it). Named imports (`m "math"`, `_ "x"`, `. "x"`) and
    other packages are kept as written, each once."""
    specs, spans = split_header(program)
    pieces, last = [], 0
    for start, end in spans:  # in order, disjoint; each becomes its newlines (or a space: nothing joins)
        pieces += [program[last:start], "\n" * program.count("\n", start, end) or " "]
        last = end
    text = "".join([*pieces, program[last:]])
    code = strip_comments(text)

    def used(name: str) -> bool:
        return re.search(rf"(?<![\w.]){re.escape(name)}\s*\.", code) is not None

    paths = [(name, quoted[1:-1]) for name, quoted in specs]
    kept = list(dict.fromkeys((name, path) for name, path in paths if name or not is_standard(path)))
    bound = {name or package_name(path) for name, path in kept}
    for path in dict.fromkeys([*(path for name, path in paths if not name and is_standard(path)), *offered]):
        name = package_name(path)
        if name not in bound and used(name):
            kept.append(("", path))
            bound.add(name)
    imports = "".join(f'\t{name}{" " if name else ""}"{path}"\n' for name, path in kept)
    return f"package cand\n\nimport (\n{imports})\n\n{BARRIER}\n{text}"
