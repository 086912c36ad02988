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

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.clike import match_bracket, skip_js_literal, wrap_cases
from sandbox.compiled.js_harness import HARNESS
from sandbox.compiled.run import Build, data_limit
from sandbox.compiled.run import judge as compiled_judge
from sandbox.compiled.toolchain import missing_tools, missing_verdict
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError

PACKAGE = "nodejs"  # Debian's package with `node`
NODE = "/usr/bin/node"
LANGUAGE = Language(
    name="js", display_name="JavaScript", runs_in="isolated", task_id_prefixes=("javascript", "js"), humanevalpack=True,
    debian_packages=(PACKAGE, "util-linux"), tools=(NODE, "prlimit"),  # prlimit: the data limit (compiled/run.py)
    selftest={"entry_point": "add", "prompt": "const add = (x, y) => {\n",
              "canonical_solution": "  return x + y;\n}\n", "buggy_solution": "  return x - y;\n}\n",
              "test": "const testAdd = () => {\n  console.assert(add(2, 3) === 5)\n  console.assert(add(7, 5) === 12)\n}\n\ntestAdd()\n"})
TEST_FN_RE = re.compile(r"const\s+(\w+)\s*=\s*\(\s*\)\s*=>\s*\{")
ASSERT_RE = re.compile(r"\bconsole\s*\.\s*assert\s*\(")
IDENT_RE = re.compile(r"[A-Za-z_$][\w$]*")
PROGRAM_NPROC = 64  # V8 starts a few threads


def rewrite_test(test: str) -> tuple[str, list[str]]:
    """(the test with each asserting top-level statement of its test function wrapped as a case, case names)."""
    m = TEST_FN_RE.search(test)
    if not m:
        raise PlanError("no `const testF = () => {` in the JavaScript test")
    close = match_bracket(test, m.end() - 1)
    if close < 0:
        raise PlanError("unbalanced braces in the JavaScript test")
    body, names = wrap_cases(test[m.end(): close], ASSERT_RE, lambda i, stmt: f"\n__rrtf_case({i}, () => {{ {stmt}\n}});")
    if not names:
        raise PlanError("the JavaScript test has no console.assert")
    return test[: m.end()] + body + "\n" + test[close:], names


def names_used(test: str) -> list[str]:
    """Identifiers the test mentions (outside strings and comments): the candidate's names it may call."""
    text, i, out = test, 0, []
    while i < len(text):
        if text[i] in "\"'`" or text.startswith(("//", "/*"), i):
            i = skip_js_literal(text, i)
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
                  case_names=names, send_key=True, memory_mb=None, data_mb=data_limit(config.memory_mb),
                  compile_memory_mb=None, nproc=PROGRAM_NPROC)
    return compiled_judge(problem, completion, sample_index, config, build)
