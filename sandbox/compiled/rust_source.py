"""Rust source, just enough of it: blank out literals and comments (lifetimes are not char literals,
block comments nest), find top-level items, and rewrite a HumanEvalPack Rust test module into
per-case reports. Used by sandbox/languages/rust.py; like clike.py, this is not a parser."""
from __future__ import annotations

import re

from sandbox.compiled.clike import match_bracket, split_statements, split_top_level
from sandbox.languages import PlanError

CHAR_RE = re.compile(r"b?'(?:\\(?:u\{[0-9a-fA-F]{1,6}\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'")
LIFETIME_RE = re.compile(r"'[A-Za-z_]\w*")
RAW_RE = re.compile(r'b?r(#*)"')
ITEM_RE = re.compile(r"\b((?:(?:const|async|unsafe|extern)\s+)*)(fn|struct|enum|type|trait|union)\s+([A-Za-z_]\w*)")
IDENT_RE = re.compile(r"[A-Za-z_]\w*")
ASSERT_RE = re.compile(r"\b(?:assert|assert_eq|assert_ne|debug_assert\w*)\s*!")
UNINIT_LET_RE = re.compile(r"\s*let\s+(?:mut\s+)?[A-Za-z_]\w*\s*(?::[^=;]*)?;\s*$")


def mask(text: str) -> str:
    """`text` with string/char literals, lifetimes and comments replaced by spaces (newlines kept): same
    length, so positions found in the mask are positions in the text."""
    out, i, n = list(text), 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif (m := RAW_RE.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not text[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        elif c in "'b" and (m := CHAR_RE.match(text, i)) and (c == "'" or i == 0 or not text[i - 1].isalnum()):
            j = m.end()
        elif c == "'" and (m := LIFETIME_RE.match(text, i)):  # blanked too: clike's scanner would take it for a char
            j = m.end()
        else:
            i += 1
            continue
        blank(i, j)
        i = j
    return "".join(out)


def depths(masked: str) -> list[int]:
    """Brace depth at each position of a masked text."""
    out, d = [], 0
    for c in masked:
        if c == "}":
            d -= 1
        out.append(d)
        if c == "{":
            d += 1
    return out


def top_level_items(text: str) -> list[tuple[str, str, int]]:
    """(kind, name, start) of the items at brace depth 0 (start: where `pub` would go)."""
    masked = mask(text)
    level = depths(masked)
    return [(m.group(2), m.group(3), m.start()) for m in ITEM_RE.finditer(masked) if level[m.start()] == 0]


def make_public(text: str, names: set[str]) -> str:
    """The top-level items named in `names` made `pub` (the test's crate must reach them)."""
    masked = mask(text)
    out, last = [], 0
    for _, name, start in top_level_items(text):
        if name in names and not re.search(r"\bpub\s*(\([^)]*\))?\s*$", masked[:start]):
            out += [text[last:start], "pub "]
            last = start
    return "".join(out) + text[last:]


def identifiers(text: str) -> tuple[set[str], set[str]]:
    """(identifiers used in code, those used as macros `name!`)."""
    masked = mask(text)
    names, macros = set(), set()
    for m in IDENT_RE.finditer(masked):
        if m.start() and (masked[m.start() - 1].isalnum() or masked[m.start() - 1] in "_'"):
            continue
        (macros if masked[m.end():].lstrip().startswith("!") and not masked[m.end():].lstrip().startswith("!=") else names).add(m.group())
    return names, macros


def entry_header(prefix: str, entry: str) -> tuple[str, str, list[str], str] | None:
    """(the prompt before the entry point's definition, the entry point's header `fn f(..) -> T`,
    its parameter names, its name), or None if the prompt does not open the entry point's body.
    The entry point is the function whose body the prompt opens: nine HumanEvalPack Rust records name
    another (`entry_point` "add", the prompt's function `add_even_odd`)."""
    masked = mask(prefix)
    level = depths(masked)
    found = [m for m in re.finditer(r"\bfn\s+([A-Za-z_]\w*)", masked) if level[m.start()] == 0]
    if not found:
        return None
    named = [m for m in found if m.group(1) == entry]
    last = named[-1] if named and named[-1].start() == found[-1].start() else found[-1]
    start = last.start()
    brace = masked.rfind("{")
    paren = masked.find("(", last.end())
    close = match_bracket(masked, paren) if paren > 0 else -1
    if brace < start or close < 0 or close > brace or masked[brace + 1:].strip():
        return None
    names = []
    for param in split_top_level(masked[paren + 1: close], generics=True):
        if not param.strip():
            continue
        m = re.fullmatch(r"\s*(?:mut\s+)?([A-Za-z_]\w*)\s*:.*", param, re.S)
        if not m:
            return None
        names.append(m.group(1))
    head_start = masked.rfind("\n", 0, start) + 1
    qualifiers = masked[head_start:start]
    head_start = head_start if re.fullmatch(r"\s*(pub\s*(\([^)]*\))?\s*)?((const|async|unsafe)\s+)*", qualifiers) else start
    return prefix[:head_start], prefix[start:brace].strip(), names, last.group(1)


def rewrite_test(test: str) -> tuple[str, str, list[str]]:
    """(the test module with each asserting statement of its #[test] function wrapped as a case,
    the function's name, case names). Uninitialised `let x: T;` declarations move into the case
    that first uses them (a closure cannot capture an uninitialised variable)."""
    masked = mask(test)
    m = re.search(r"#\s*\[\s*test\s*\]\s*fn\s+([A-Za-z_]\w*)\s*\(\s*\)\s*\{", masked)
    if not m:
        raise PlanError("no #[test] function in the Rust test")
    close = match_bracket(masked, m.end() - 1)
    if close < 0:
        raise PlanError("unbalanced braces in the Rust test")
    body_start = m.end()
    pieces, pos = [], 0
    body_masked = masked[body_start:close]
    for piece in split_statements(body_masked):
        off = body_masked.find(piece, pos)
        pieces.append((test[body_start + off: body_start + off + len(piece)], piece))
        pos = off + len(piece)
    out, names, pending = [], [], []
    for stmt, stmt_masked in pieces:
        if ASSERT_RE.search(stmt_masked):
            i = len(names)
            names.append(f"case {i}: {' '.join(stmt.split())[:120]}")
            declared = [d for d in pending if re.search(rf"\b{_let_name(d)}\b", stmt_masked)]
            pending = [d for d in pending if d not in declared]
            out.append(f"\nrrtf_h::case({i}, || {{ {''.join(declared)} {stmt.strip()}\n}});")
        elif UNINIT_LET_RE.fullmatch(stmt_masked):
            pending.append(stmt)
        else:
            out.append(stmt)
    if not names:
        raise PlanError("the Rust test has no assert")
    header = f"pub fn {m.group(1)}() {{"
    before = re.sub(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", "", test[: m.start()])
    return before + header + "".join(pending) + "".join(out) + "\n" + test[close:], m.group(1), names


def _let_name(decl: str) -> str:
    return re.match(r"\s*let\s+(?:mut\s+)?([A-Za-z_]\w*)", decl).group(1)
