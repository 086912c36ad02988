"""JavaScript (node): HumanEvalPack JS tests rewritten into per-case reports, run by a trusted test program
that reaches the candidate's code, a node program of its own, only through plain-data calls
(sandbox/compiled/js_pair.py). A problem the separated build cannot describe keeps the one-process harness
(sandbox/compiled/js_harness.py), and its verdict says so ("+one-process").

A HumanEvalPack JS test is `const testF = () => { ... }` followed by `testF()`, its body a sequence of
statements (semicolons optional) among which `console.assert(...)` calls and loops containing them.
Each top-level statement of the body that contains `console.assert` becomes one reported case; the
others run as they are. A syntax check (`node --check`, as the candidate unit's own uid) is the
compile step, so a program that does not parse is a compile error, as for Java and C++.
"""
from __future__ import annotations

import functools
import json
import re

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.clike import match_bracket, skip_js_literal, wrap_cases
from sandbox.compiled.js_harness import HARNESS
from sandbox.compiled.js_pair import MD5_MODULE, NotSeparable, dispatcher, make_test_files
from sandbox.compiled.run import PRLIMIT, Build, data_limit
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


@functools.lru_cache(maxsize=512)
def separated(code_prefix: str, test: str, entry: str) -> tuple[dict[str, bytes], list[str], str]:
    """(the test program's files, the names the candidate answers, "") -- or ({}, [], why not): per problem,
    since none of it depends on the candidate."""
    rewritten, _ = rewrite_test(test)
    try:
        files, names = make_test_files(code_prefix, test, rewritten, entry)
    except NotSeparable as exc:
        return {}, [], str(exc)
    return files, names, ""


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    test, names = rewrite_test(problem.test)
    missing = toolchain_error()
    if missing:
        return missing_verdict(problem.task_id, sample_index, names, missing, config)
    memory = config.memory_mb or 2048
    node = [NODE, f"--max-old-space-size={memory}", "--stack-size=4000"]
    files, callable_names, why_not = separated(problem.code_prefix, problem.test, problem.entry_point)
    if why_not:
        return _one_process(problem, completion, sample_index, config, test, names, node, why_not)
    data = data_limit(config.memory_mb)
    cand = problem.program(completion) + "\n" + dispatcher(callable_names)
    build = Build(units={"cand": {"cand.js": cand.encode(), "node_modules/js-md5/index.js": MD5_MODULE.encode()},
                         "test": files},
                  steps=[["run", "cand", [NODE, "--check", "cand.js"], 0]],
                  install=[["cand/cand.js", "cand.js", "read", "cand"], ["cand/node_modules", "node_modules", "read", "cand"],
                           *(["test/" + name, name, "read", "run"] for name in sorted(files))],
                  run_argv=[*node, "../bin/harness.js"],
                  candidate_argv=[*([PRLIMIT, f"--data={data << 20}", "--"] if data else []), *node, "../bin/cand.js"],
                  case_names=names, send_key=True, memory_mb=None, data_mb=data, compile_memory_mb=None, nproc=PROGRAM_NPROC)
    return compiled_judge(problem, completion, sample_index, config, build)


def _one_process(problem: Problem, completion: str, sample_index: int, config: SandboxConfig, test: str, names: list[str],
                 node: list[str], why: str) -> Verdict:
    """The candidate in its own V8 context of the test's process (sandbox/compiled/js_harness.py)."""
    spec = {"names": names_used(problem.test), "timeout_ms": 1000 * config.timeout_s}
    build = Build(units={"cand": {"cand.js": problem.program(completion).encode()},
                         "test": {"harness.js": HARNESS.encode(), "test.js": test.encode(), "spec.json": json.dumps(spec).encode()}},
                  steps=[["run", "cand", [NODE, "--check", "cand.js"], 0]],
                  install=[["cand/cand.js", "cand.js", "read"], ["test/harness.js", "harness.js", "read"],
                           ["test/test.js", "test.js", "read"], ["test/spec.json", "spec.json", "read"]],
                  run_argv=[*node, "../bin/harness.js"], one_process=why,
                  case_names=names, send_key=True, memory_mb=None, data_mb=data_limit(config.memory_mb),
                  compile_memory_mb=None, nproc=PROGRAM_NPROC)
    return compiled_judge(problem, completion, sample_index, config, build)
