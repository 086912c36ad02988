"""A small scanner for Java/C++ source: just enough to split test code into top-level pieces.

We rewrite dataset test mains (HumanEvalPack) so that each check is its own reported test case.
That needs to find the matching bracket of a call and split its arguments on top-level commas,
which in turn needs to skip string/char literals and comments. This is not a parser: it only tracks
(), [], {} nesting and, for Java, generic angle brackets such as `new HashMap<String, Integer>()`.
"""
from __future__ import annotations

import re

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
# `Foo<A, B<C>>` right after an identifier: a generic type argument list, not a comparison.
_GENERIC = re.compile(r"<[\w\s,.?\[\]&]*(?:<[\w\s,.?\[\]&]*(?:<[\w\s,.?\[\]&]*>[\w\s,.?\[\]&]*)*>[\w\s,.?\[\]&]*)*>")


def _skip_literal(text: str, i: int) -> int:
    """If text[i] starts a string/char literal or a comment, return the index just past it, else i."""
    c = text[i]
    if c in "\"'":
        j = i + 1
        while j < len(text) and text[j] != c:
            j += 2 if text[j] == "\\" else 1
        return min(j + 1, len(text))
    if text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j + 1
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j < 0 else j + 2
    return i


def match_bracket(text: str, open_index: int, *, generics: bool = False) -> int:
    """Index of the bracket closing the one at `open_index`; -1 if unbalanced."""
    stack: list[str] = []
    i = open_index
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        c = text[i]
        if c in _OPEN:
            stack.append(c)
        elif c in _CLOSE:
            if not stack or stack.pop() != _CLOSE[c]:
                return -1
            if not stack:
                return i
        elif generics and c == "<" and i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
            m = _GENERIC.match(text, i)
            if m:
                i = m.end()
                continue
        i += 1
    return -1


def split_top_level(text: str, sep: str = ",", *, generics: bool = False) -> list[str]:
    """Split on `sep` where it is not inside brackets, literals or comments."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        c = text[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif generics and c == "<" and i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
            m = _GENERIC.match(text, i)
            if m:
                i = m.end()
                continue
        elif c == sep and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces


def split_statements(body: str) -> list[str]:
    """Split a block body into top-level statements: `x;`, `for (...) {...}`, `for (...) stmt;`, `{...}`.

    A statement ends at a top-level `;`, or at the `}` closing a top-level block that is not
    followed by `else`/`while`/`catch`/`finally` (which continue the same statement).
    """
    stmts, start, depth, i = [], 0, 0, 0
    while i < len(body):
        j = _skip_literal(body, i)
        if j != i:
            i = j
            continue
        c = body[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "{":
            close = match_bracket(body, i)
            if close < 0:
                break
            i = close + 1
            if depth == 0 and not _is_initializer_brace(body, start, i):
                rest = body[i:].lstrip()
                if not re.match(r"(else|while|catch|finally)\b", rest) and not rest.startswith(";"):
                    stmts.append(body[start:i])
                    start = i
            continue
        elif c == ";" and depth == 0:
            stmts.append(body[start : i + 1])
            start = i + 1
        i += 1
    tail = body[start:]
    if tail.strip():
        stmts.append(tail)
    return [s for s in stmts if s.strip()]


def _is_initializer_brace(body: str, start: int, end: int) -> bool:
    """`vector<int> a = {1, 2};` or `Foo f{1};`: a brace that is part of an expression, not a block."""
    head = body[start:end]
    before = head[: head.find("{")].rstrip()
    if not before or before.endswith(")"):  # a bare block, or `for (...) {`, `if (...) {`
        return False
    if re.search(r"\b(for|while|if|switch|do|else|try)\b[^;]*$", before):  # `else {`, `do {`, `try {`
        return False
    return before.endswith("=") or before[-1].isalnum() or before[-1] in "_>]"


def strip_comments(text: str) -> str:
    """Source without // and /* */ comments (literals kept), for simple pattern checks."""
    out, i = [], 0
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            if text[i] in "\"'":
                out.append(text[i:j])
            else:
                out.append("\n" if text.startswith("//", i) else " ")
            i = j
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def code_matches(text: str, pattern: re.Pattern) -> list[re.Match]:
    """Matches of `pattern` that start in code: not inside a string/char literal or a comment."""
    out, i = [], 0
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        m = pattern.match(text, i)
        if m:
            out.append(m)
        i += 1
    return out


CONTINUES = tuple(".?:+-*/%&|=,<>([{")  # a line ending (or the next starting) with one of these goes on


def split_line_statements(body: str) -> list[str]:
    """Top-level statements of a JS or Go block body, separated by `;` or by a line end where
    automatic semicolon insertion would end the statement (a simplification: enough for dataset tests)."""
    stmts, start, depth, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c in "\"'`" or body.startswith(("//", "/*"), i):
            i = skip_js_literal(body, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and c == ";" and re.match(r"\s*(for|if|switch)\s+[^\s(]", body[start:i]):
            pass  # Go's `for i := 0; i < n; i++ {` and `if x := f(); x {`: one statement (JS's `if (` is not this)
        elif depth == 0 and (c == ";" or c == "\n"):
            current = body[start: i + 1].strip()
            nxt = body[i + 1:].lstrip()
            joined = c == "\n" and (not current or current.endswith(CONTINUES) or nxt.startswith(CONTINUES[:-3])
                                    or re.match(r"(else|catch|finally|while)\b", nxt) is not None)
            if not joined:
                if current:
                    stmts.append(body[start: i + 1])
                start = i + 1
        i += 1
    if body[start:].strip():
        stmts.append(body[start:])
    return stmts


def wrap_cases(body: str, assert_re: re.Pattern, wrap) -> tuple[str, list[str]]:
    """A JS or Go test body with each top-level statement that asserts (`assert_re` in its code)
    replaced by `wrap(i, statement)`: one reported case each; (new body, case names)."""
    out, names = [], []
    for stmt in split_line_statements(body):
        if code_matches(stmt, assert_re):
            names.append(f"case {len(names)}: {' '.join(stmt.split())[:120]}")
            out.append(wrap(len(names) - 1, stmt.strip()))
        else:
            out.append(stmt)
    return "".join(out), names


def skip_js_literal(text: str, i: int) -> int:
    if text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j < 0 else j + 2
    quote, j = text[i], i + 1
    while j < len(text) and text[j] != quote:
        j += 2 if text[j] == "\\" else 1
    return min(j + 1, len(text))
