"""JavaScript (node): HumanEvalPack JS tests rewritten into per-case reports, judged by a trusted
harness that keeps the candidate in its own V8 context (sandbox/compiled/js_harness.py).

A HumanEvalPack JS test is `const testF = () => { ... }` followed by `testF()`, its body a sequence of
statements (semicolons optional) among which `console.assert(...)` calls and loops containing them.
Each top-level statement of the body that contains `console.assert` becomes one reported case; the
others run as they are. A syntax check (`node --check`, as the candidate unit's own uid) is the
compile step, so a program that does not parse is a compile error, as for Java and C++.
"""
from __future__ import annotations

import json
import re

from sandbox.compiled.clike import code_matches, match_bracket
from sandbox.compiled.js_harness import HARNESS
from sandbox.compiled.run import Build
from sandbox.compiled.run import judge as compiled_judge
from sandbox.compiled.toolchain import missing_tools, missing_verdict
from sandbox.config import SandboxConfig
from sandbox.languages import PlanError
from sandbox.records import Problem, Verdict

NAME = "js"
RUNS_IN = "isolated"
PACKAGE = "nodejs"  # Debian's package with `node`
NODE = "/usr/bin/node"
TEST_FN_RE = re.compile(r"const\s+(\w+)\s*=\s*\(\s*\)\s*=>\s*\{")
ASSERT_RE = re.compile(r"\bconsole\s*\.\s*assert\s*\(")
IDENT_RE = re.compile(r"[A-Za-z_$][\w$]*")
CONTINUES = tuple(".?:+-*/%&|=,<>([{")  # a line ending (or the next starting) with one of these goes on
PROGRAM_NPROC = 64  # V8 starts a few threads


def split_js_statements(body: str) -> list[str]:
    """Top-level statements of a JS block body, separated by `;` or by a line end where automatic
    semicolon insertion would end the statement (a simplification: enough for dataset tests)."""
    stmts, start, depth, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c in "\"'`" or body.startswith(("//", "/*"), i):
            i = _skip(body, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
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


def _skip(text: str, i: int) -> int:
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


def rewrite_test(test: str) -> tuple[str, list[str]]:
    """(the test with each asserting top-level statement of its test function wrapped as a case, case names)."""
    m = TEST_FN_RE.search(test)
    if not m:
        raise PlanError("no `const testF = () => {` in the JavaScript test")
    close = match_bracket(test, m.end() - 1)
    if close < 0:
        raise PlanError("unbalanced braces in the JavaScript test")
    out, names = [], []
    for stmt in split_js_statements(test[m.end(): close]):
        if code_matches(stmt, ASSERT_RE):
            i = len(names)
            names.append(f"case {i}: {' '.join(stmt.split())[:120]}")
            out.append(f"\n__rrtf_case({i}, () => {{ {stmt.strip()}\n}});")
        else:
            out.append(stmt)
    if not names:
        raise PlanError("the JavaScript test has no console.assert")
    return test[: m.end()] + "".join(out) + "\n" + test[close:], names


def names_used(test: str) -> list[str]:
    """Identifiers the test mentions (outside strings and comments): the candidate's names it may call."""
    text, i, out = test, 0, []
    while i < len(text):
        if text[i] in "\"'`" or text.startswith(("//", "/*"), i):
            i = _skip(text, i)
            continue
        m = IDENT_RE.match(text, i)
        if m and (i == 0 or text[i - 1] != "."):
            out.append(m.group())
            i = m.end()
        else:
            i += 1 if not m else m.end() - i
    keywords = {"const", "let", "var", "function", "return", "if", "else", "for", "while", "do", "new", "of", "in", "true",
                "false", "null", "undefined", "typeof", "break", "continue", "this", "console", "Math", "JSON", "Array",
                "Object", "String", "Number", "Boolean", "Infinity", "NaN", "__rrtf_case", "globalThis"}
    return sorted({n for n in out if n not in keywords})


def toolchain_error() -> str:
    return missing_tools({NODE: PACKAGE})


def validate(problem: Problem) -> None:
    if problem.io_cases:
        raise PlanError("JavaScript: stdin/stdout problems are not supported")
    rewrite_test(problem.test)


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    test, names = rewrite_test(problem.test)
    missing = toolchain_error()
    if missing:
        return missing_verdict(problem.task_id, sample_index, names, missing, config)
    spec = {"names": names_used(problem.test), "timeout_ms": 1000 * config.timeout_s}
    memory = config.memory_mb or 2048
    build = Build(units={"cand": {"cand.js": problem.program(completion).encode()},
                         "test": {"harness.js": HARNESS.encode(), "test.js": test.encode(), "spec.json": json.dumps(spec).encode()}},
                  steps=[["run", "cand", [NODE, "--check", "cand.js"], 0]],
                  install=[["cand/cand.js", "cand.js", "read"], ["test/harness.js", "harness.js", "read"],
                           ["test/test.js", "test.js", "read"], ["test/spec.json", "spec.json", "read"]],
                  run_argv=[NODE, f"--max-old-space-size={memory}", "--stack-size=4000", "../bin/harness.js"],
                  case_names=names, send_key=True, memory_mb=None, compile_memory_mb=None, nproc=PROGRAM_NPROC)
    return compiled_judge(problem, completion, sample_index, config, build)
