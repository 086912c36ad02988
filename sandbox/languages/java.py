"""Java (JDK 17): HumanEvalPack test mains rewritten into per-case reports, and stdin/stdout programs.

A HumanEvalPack Java test is a `public class Main` whose `main` builds
`List<Boolean> correct = Arrays.asList(e1, e2, ...)` and throws if any is false. `main` is rewritten
so that each `e_i` is evaluated on its own (exceptions caught per case) and reported through the
harness class `R` (sandbox/compiled/java_harness.py); statements before the list run first, any
after the `if (correct.contains(false))` check form one more case. Other shapes count as one case.

The candidate's code and the test live in two packages: the candidate's in `cand` (its `Solution`
made public), the test in `rrtf_t`, importing `cand.Solution` by name only -- so no class the
candidate defines (`class Math`, `class Arrays`, ...) can stand in for one the test uses. Every call
of the candidate's methods in the test is wrapped in `R.plain(...)`, so what the test compares is
plain JDK data (an overridden `equals` cannot answer for it).

Speed: the warm javac of sandbox/compiled/javac_server.py compiles both units at the bwrap level;
otherwise javac runs in the run sandbox.
"""
from __future__ import annotations

import re
import time

from sandbox.base.records import Problem, Verdict
from sandbox.compiled import javac_server
from sandbox.compiled.clike import code_matches, match_bracket, split_top_level
from sandbox.compiled.java_harness import REPORTER
from sandbox.compiled.run import Build, Settings, data_limit
from sandbox.compiled.run import judge as compiled_judge
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError
from sandbox.verdicts import Tally, make_verdict

LANGUAGE = Language(
    name="java", display_name="Java", runs_in="isolated", task_id_prefixes=("java",), humanevalpack=True,
    debian_packages=("openjdk-17-jdk-headless", "util-linux"),  # javac and java; prlimit (the data limit)
    tools=("javac", "java", "prlimit"),
    selftest={"entry_point": "add",
              "prompt": "import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    public int add(int x, int y) {\n",
              "canonical_solution": "        return x + y;\n    }\n}", "buggy_solution": "        return x - y;\n    }\n}",
              "test": "public class Main {\n    public static void main(String[] args) {\n        Solution s = new Solution();\n"
                      "        List<Boolean> correct = Arrays.asList(\n                s.add(2, 3) == 5,\n"
                      "                s.add(7, 5) == 12\n        );\n        if (correct.contains(false)) {\n"
                      "            throw new AssertionError();\n        }\n    }\n}\n"})
MAIN_RE = re.compile(r"(public\s+)?static\s+void\s+main\s*\([^)]*\)\s*(throws\s+[\w.,\s]+)?\{")
LIST_RE = re.compile(r"List\s*<\s*Boolean\s*>\s+(\w+)\s*=\s*Arrays\s*\.\s*asList\s*\(")
PUBLIC_CLASS_RE = re.compile(r"^\s*public\s+(?:final\s+|abstract\s+)*class\s+(\w+)", re.M)
CLASS_RE = re.compile(r"\bclass\s+(\w+)")
TOP_CLASS_RE = re.compile(r"^(?:(?:public|final|abstract)\s+)*class\s+(\w+)", re.M)  # unindented: top level
IMPORT_RE = re.compile(r"^\s*import\s+[\w.*\s]+;", re.M)
SOLUTION_VAR_RE = re.compile(r"\b(\w+)\s+(\w+)\s*=\s*new\s+(\w+)\s*\(\s*\)")
CAND_PACKAGE, TEST_PACKAGE = "cand", "rrtf_t"
# Fast JVM start: class-data sharing, one GC thread, C1 only (HumanEval-sized programs never reach
# the point where C2 pays off), no perf-data file. -ea on the test class only, so a test written
# with Java's assert statement is really checked (the candidate's own asserts keep the JVM default).
JVM_FLAGS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"]
JAVAC_FLAGS = ["-J-Xshare:auto", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData", "-encoding",
               "UTF-8", "-nowarn", "-Xlint:none", "-proc:none", "-implicit:none", "-g:none", "-d", "classes"]
JAVA_STACK_MB = 64  # deep recursion is legal in HumanEval-style solutions
PROGRAM_NPROC = 256  # the JVM runs ~20 threads


# --------------------------------------------------------------------------- the test main

def rewrite_test(test: str, solution_vars: set[str] = frozenset(), void_methods: set[str] = frozenset()
                 ) -> tuple[str, int, list[str]]:
    """Rewrite the test's `main` into per-case reports: (new test source, number of cases, case
    names). Calls on `solution_vars` are wrapped in `R.plain`, except of `void_methods`."""
    m = MAIN_RE.search(test)
    if not m:
        raise PlanError("no `static void main(...)` in the Java test")
    body_open = m.end() - 1
    body_close = match_bracket(test, body_open, generics=True)
    if body_close < 0:
        raise PlanError("unbalanced braces in the Java test's main")
    body = test[body_open + 1: body_close]
    cases, names, pre, post = _split_cases(body)
    def wrap(text: str) -> str:
        return wrap_calls(text, solution_vars, void_methods) if solution_vars else text

    lines = ["public static void main(String[] args) throws Throwable {", "final R r__ = R.open();",
             f"r__.begin({len(cases)});", "try {", wrap(pre)]
    for i, expr in enumerate(cases):
        if expr is None:  # a block of statements: passes when it completes normally
            lines.append(f"try {{ {wrap(post)}\nr__.check({i}, true); }} catch (Throwable t__) {{ r__.error({i}, t__); }}")
        else:
            lines.append(f"try {{ r__.check({i}, {wrap(expr.strip())}); }} catch (Throwable t__) {{ r__.error({i}, t__); }}")
    lines += ["} catch (Throwable t__) {", "r__.setup(t__);", "}", "r__.end();", "}"]
    return test[: m.start()] + "\n".join(lines) + test[body_close + 1:], len(cases), names


def _split_cases(body: str) -> tuple[list[str | None], list[str], str, str]:
    """(case expressions, case names, statements before them, statements after them). A None case
    stands for the `post` statements (or the whole body when the test can't be split)."""
    m = LIST_RE.search(body)
    if m:
        open_paren = m.end() - 1
        close_paren = match_bracket(body, open_paren, generics=True)
        semi = body.find(";", close_paren) if close_paren > 0 else -1
        check = re.compile(r"\s*if\s*\(\s*" + re.escape(m.group(1)) + r"\s*\.\s*contains\s*\(\s*false\s*\)\s*\)\s*\{\s*"
                           r"throw\s+new\s+AssertionError\s*\(\s*\)\s*;\s*\}")
        cm = check.match(body, semi + 1) if semi > 0 else None
        if cm:
            exprs = [e for e in split_top_level(body[open_paren + 1: close_paren], generics=True) if e.strip()]
            post = body[cm.end():]
            if exprs and m.group(1) not in post:
                cases: list[str | None] = list(exprs)
                names = [f"case {i}: {_short(e)}" for i, e in enumerate(exprs)]
                if post.strip():
                    cases.append(None)
                    names.append(f"case {len(exprs)}: statements after the list")
                return cases, names, body[: m.start()], post
    return [None], ["main"], "", body


def wrap_calls(text: str, variables: set[str], void_methods: set[str] = frozenset()) -> str:
    """`s.f(x)` -> `R.plain(s.f(x))` for each of `variables` (methods returning nothing excepted),
    inner calls first; literals and comments are left alone."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, variables)) + r")\s*\.\s*(\w+)\s*\(")
    out, pos = [], 0
    for m in code_matches(text, pattern):
        if m.start() < pos:
            continue  # inside a call already wrapped (its arguments were handled there)
        close = match_bracket(text, m.end() - 1, generics=True)
        if close < 0:
            break
        inner = wrap_calls(text[m.end(): close], variables, void_methods)
        call = f"{text[m.start(): m.end()]}{inner})"
        out += [text[pos: m.start()], call if m.group(2) in void_methods else f"R.plain({call})"]
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


def _short(expr: str, limit: int = 120) -> str:
    s = " ".join(expr.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def main_class(source: str) -> str:
    """The class to run for a whole-program (stdin/stdout) candidate: the public class, else Main, else the first."""
    m = PUBLIC_CLASS_RE.search(source)
    if m:
        return m.group(1)
    names = CLASS_RE.findall(source)
    return "Main" if "Main" in names or not names else names[0]


# --------------------------------------------------------------------------- building

def sources(problem: Problem, completion: str) -> tuple[dict[str, str], list[str], str]:
    """(source files, case names, main class) for a HumanEval-style problem: the candidate in package
    `cand`, the test in `rrtf_t`. A prompt that does not declare exactly one top-level class (the
    one the test uses) falls back to one package (documented limit: the candidate's classes can then
    shadow the test's names)."""
    prefix = problem.code_prefix
    classes = TOP_CLASS_RE.findall(prefix)
    if len(classes) != 1:
        main = main_class(problem.test)
        test, _, names = rewrite_test(problem.test)
        return {f"{main}.java": problem.program(completion) + "\n" + test + "\n" + REPORTER}, names, main
    cls = classes[0]
    variables = {var for kind, var, made in SOLUTION_VAR_RE.findall(problem.test) if kind in (cls, "var") and made == cls}
    void_methods = set(re.findall(r"\bvoid\s+(\w+)\s*\(", prefix))
    test, _, names = rewrite_test(problem.test, variables, void_methods)
    imports = "".join(m.group(0).strip() + "\n" for m in IMPORT_RE.finditer(prefix))
    candidate = f"package {CAND_PACKAGE};\n" + TOP_CLASS_RE.sub(f"public class {cls}", prefix, count=1) + completion
    main = main_class(problem.test)
    test_file = f"package {TEST_PACKAGE};\n{imports}import {CAND_PACKAGE}.{cls};\n{test}\n{REPORTER}"
    return {f"{CAND_PACKAGE}/{cls}.java": candidate, f"{TEST_PACKAGE}/{main}.java": test_file}, names, f"{TEST_PACKAGE}.{main}"


def build(problem: Problem, completion: str, config: SandboxConfig) -> tuple[Build | None, dict]:
    """The run, or (None, compile failure) when the warm javac already found a compile error."""
    if problem.io_cases:
        main, names = main_class(problem.program(completion)), []
        files = {f"{main}.java": problem.program(completion)}
    else:
        files, names, main = sources(problem, completion)
    heap = [f"-Xmx{config.memory_mb}m"] if config.memory_mb else []
    # -Xss sizes the launcher's main thread (deep recursion); ThreadStackSize, after it, the JVM's own threads,
    # which would otherwise each map 64 MB of RLIMIT_DATA (~600 MB at start). -Xms: commit the heap as it grows.
    run = ["java", *JVM_FLAGS, *heap, "-Xms8m", f"-Xss{JAVA_STACK_MB}m", "-XX:ThreadStackSize=1024", f"-ea:{main}",
           "-cp", "../bin/classes", main]
    common = {"install": [["build/classes", "classes", "read"]], "run_argv": run, "case_names": names, "channel_fd": 0,
              "send_key": True, "memory_mb": None, "data_mb": data_limit(config.memory_mb), "nproc": PROGRAM_NPROC}
    server = javac_server.for_thread() if Settings.from_config(config).isolation == "bwrap" else None
    if server is None:  # javac in the run sandbox
        units = {"build": {path: text.encode() for path, text in files.items()}}
        steps = [["run", "build", ["javac", *JAVAC_FLAGS, *files], 0]]
        return Build(units=units, steps=steps, compile_memory_mb=None, **common), {}
    start = time.monotonic()
    result = server.compile(files, config.compile_timeout_s)
    if not result.ok:
        return None, {"log": result.diagnostics, "timed_out": result.timed_out, "duration_s": time.monotonic() - start}
    units = {"build": {f"classes/{path}": data for path, data in result.class_files().items()}}
    return Build(units=units, steps=[], **common), {}


def validate(problem: Problem) -> None:
    if not problem.io_cases:
        sources(problem, "")


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    b, failure = build(problem, completion, config)
    if b is None:
        names = sources(problem, completion)[1] if not problem.io_cases else [
            f"io_case[{i}]" for i in range(len(problem.io_cases))]
        tally = Tally(len(names), config.verdict_output_chars)
        log = failure["log"]
        first = next((line.strip() for line in log.splitlines() if "error" in line.lower()), log.strip()[:200])
        tally.compile_error = "compile timeout" if failure["timed_out"] else f"compile error: {first[:300]}"
        tally.output("", log)
        tally.duration_s = failure["duration_s"]
        return make_verdict(problem.task_id, sample_index, names, tally, isolation=Settings.from_config(config).isolation)
    return compiled_judge(problem, completion, sample_index, config, b)
