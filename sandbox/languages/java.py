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

import hashlib
import marshal
import re
import time

from sandbox.base.records import Problem, Verdict
from sandbox.compiled import java_pair, javac_server
from sandbox.compiled.cache import BytesCache
from sandbox.compiled.clike import code_matches, match_bracket, split_top_level
from sandbox.compiled.java_harness import REPORTER
from sandbox.compiled.run import PRLIMIT, Build, Settings, data_limit
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
CAND_PACKAGE, TEST_PACKAGE = java_pair.CAND_PACKAGE, java_pair.TEST_PACKAGE
WIRE_FILE = f"{java_pair.WIRE_PACKAGE}/Wire.java"
ADD_OPENS = "--add-opens=java.base/java.io=ALL-UNNAMED"  # the codec opens the calls socket by its fd (Wire.Conn)
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
    """(source files, case names, main class) of the one-process build: the candidate in package `cand`, the
    test in `rrtf_t` (every call wrapped in `R.plain`). A prompt that does not declare exactly one top-level
    class (the one the test uses) falls back to one package (documented limit: the candidate's classes can
    then shadow the test's names)."""
    prefix = problem.code_prefix
    classes = TOP_CLASS_RE.findall(prefix)
    if len(classes) != 1:
        main = main_class(problem.test)
        test, _, names = rewrite_test(problem.test)
        return {f"{main}.java": problem.program(completion) + "\n" + test + "\n" + REPORTER}, names, main
    cls = classes[0]
    void_methods = set(re.findall(r"\bvoid\s+(\w+)\s*\(", prefix))
    test, _, names = rewrite_test(problem.test, _solution_vars(problem.test, cls), void_methods)
    main = main_class(problem.test)
    test_file = f"package {TEST_PACKAGE};\n{_imports(prefix)}import {CAND_PACKAGE}.{cls};\n{test}\n{REPORTER}"
    return {f"{CAND_PACKAGE}/{cls}.java": _candidate(prefix, cls, completion),
            f"{TEST_PACKAGE}/{main}.java": test_file}, names, f"{TEST_PACKAGE}.{main}"


def _solution_vars(test: str, cls: str) -> set[str]:
    return {var for kind, var, made in SOLUTION_VAR_RE.findall(test) if kind in (cls, "var") and made == cls}


def _imports(prefix: str) -> str:
    return "".join(m.group(0).strip() + "\n" for m in IMPORT_RE.finditer(prefix))


def _candidate(prefix: str, cls: str, completion: str) -> str:
    return f"package {CAND_PACKAGE};\n" + TOP_CLASS_RE.sub(f"public class {cls}", prefix, count=1) + completion


def pair_sources(problem: Problem, completion: str) -> tuple[dict[str, str], dict[str, str], list[str], str]:
    """(the test's sources, the candidate's sources, case names, main class) of the process-separated build
    (sandbox/compiled/java_pair.py); java_pair.Fallback when the problem's signatures are outside the codec."""
    prefix = problem.code_prefix
    classes = TOP_CLASS_RE.findall(prefix)
    if len(classes) != 1:
        raise java_pair.Fallback("the prompt does not declare exactly one top-level class")
    cls = classes[0]
    entry, _ = java_pair.entry_method(prefix)
    declared = {m.group("name") for m in code_matches(prefix, java_pair.DECL_RE)}
    wanted = java_pair.called_methods(problem.test, _solution_vars(problem.test, cls), cls) - declared
    extras = java_pair.candidate_methods(completion, wanted) if wanted else []
    test, _, names = rewrite_test(problem.test)  # no R.plain: every value the test holds was decoded by the codec
    main = main_class(problem.test)
    wire = java_pair.wire_source()
    test_files = {f"{TEST_PACKAGE}/{main}.java": f"package {TEST_PACKAGE};\n{_imports(prefix)}{test}\n{REPORTER}",
                  f"{TEST_PACKAGE}/{cls}.java": java_pair.trusted_solution(prefix, entry, extras), WIRE_FILE: wire}
    cand_files = {f"{CAND_PACKAGE}/{cls}.java": _candidate(prefix, cls, completion), WIRE_FILE: wire,
                  f"{CAND_PACKAGE}/{java_pair.DISPATCH_CLASS}.java": java_pair.dispatcher([entry, *extras], cls)}
    return test_files, cand_files, names, f"{TEST_PACKAGE}.{main}"


_TEST_CLASSES = BytesCache(256)  # the test's compiled classes per problem (~20 KB each), or why they did not compile


def _test_classes(server: javac_server.JavacServer, files: dict[str, str], timeout_s: float) -> dict[str, bytes]:
    """The test's program does not depend on the candidate: compiled once per problem and thread pool."""
    key = hashlib.sha256(marshal.dumps(sorted(files.items()))).hexdigest()
    cached = _TEST_CLASSES.get(key)
    if cached is None:
        result = server.compile(files, timeout_s)
        if result.timed_out:  # not cached: the machine may just be busy
            raise java_pair.Fallback("the test's program timed out compiling")
        cached = marshal.dumps((result.ok, result.class_files() if result.ok else result.diagnostics[:2000]))
        _TEST_CLASSES.put(key, cached)
    ok, value = marshal.loads(cached)
    if not ok:
        first = next((line.strip() for line in value.splitlines() if "error" in line), value[:200])
        raise java_pair.Fallback(f"the test does not compile against the prompt's signatures: {first[:200]}")
    return value


def _jvm(config: SandboxConfig) -> list[str]:
    heap = [f"-Xmx{config.memory_mb}m"] if config.memory_mb else []
    # -Xss sizes the launcher's main thread (deep recursion); ThreadStackSize, after it, the JVM's own threads,
    # which would otherwise each map 64 MB of RLIMIT_DATA (~600 MB at start). -Xms: commit the heap as it grows.
    return ["java", *JVM_FLAGS, *heap, "-Xms8m", f"-Xss{JAVA_STACK_MB}m", "-XX:ThreadStackSize=1024"]


def build(problem: Problem, completion: str, config: SandboxConfig) -> tuple[Build | None, dict]:
    """The run, or (None, compile failure) when the warm javac already found a compile error."""
    server = javac_server.for_thread() if Settings.from_config(config).isolation == "bwrap" else None
    one_process = ""
    if not problem.io_cases:
        try:
            return _pair_build(problem, completion, config, server)
        except java_pair.Fallback as exc:
            one_process = str(exc)
    if problem.io_cases:
        main, names = main_class(problem.program(completion)), []
        files = {f"{main}.java": problem.program(completion)}
    else:
        files, names, main = sources(problem, completion)
    run = [*_jvm(config), f"-ea:{main}", "-cp", "../bin/classes", main]
    common = {"install": [["build/classes", "classes", "read"]], "run_argv": run, "case_names": names, "channel_fd": 0,
              "send_key": True, "memory_mb": None, "data_mb": data_limit(config.memory_mb), "nproc": PROGRAM_NPROC,
              "one_process": one_process}
    if server is None:  # javac in the run sandbox
        units = {"build": {path: text.encode() for path, text in files.items()}}
        steps = [["run", "build", ["javac", *JAVAC_FLAGS, *files], 0]]
        return Build(units=units, steps=steps, compile_memory_mb=None, **common), {}
    return _compiled(server, files, config, "build", common)


def _compiled(server, files: dict[str, str], config: SandboxConfig, unit: str, common: dict,
              more_units: dict | None = None) -> tuple[Build | None, dict]:
    start = time.monotonic()
    result = server.compile(files, config.compile_timeout_s)
    if not result.ok:
        return None, {"log": result.diagnostics, "timed_out": result.timed_out, "duration_s": time.monotonic() - start}
    units = {unit: {f"classes/{path}": data for path, data in result.class_files().items()}, **(more_units or {})}
    return Build(units=units, steps=[], **common), {}


def _pair_build(problem: Problem, completion: str, config: SandboxConfig, server) -> tuple[Build | None, dict]:
    """Two programs: the candidate's (its code, the dispatcher, the codec; as its own uid) and the test's."""
    test_files, cand_files, names, main = pair_sources(problem, completion)
    data_mb = data_limit(config.memory_mb)
    prlimit = [PRLIMIT, f"--data={data_mb << 20}", "--"] if data_mb else []
    candidate = [*prlimit, *_jvm(config), ADD_OPENS, "-cp", "../bin/cclasses", f"{CAND_PACKAGE}.{java_pair.DISPATCH_CLASS}"]
    run = [*_jvm(config), ADD_OPENS, f"-ea:{main}", "-cp", "../bin/tclasses", main]
    # Each program's classes are readable by that program's uid only: the candidate cannot read the test's code.
    common = {"install": [["cand/classes", "cclasses", "read", "cand"], ["test/classes", "tclasses", "read", "run"]],
              "run_argv": run, "candidate_argv": candidate, "case_names": names, "channel_fd": 0, "send_key": True,
              "memory_mb": None, "data_mb": data_mb, "nproc": PROGRAM_NPROC}
    if server is None:  # javac in the run sandbox: the two units compile at once, each as its own uid
        units = {"cand": {p: t.encode() for p, t in cand_files.items()}, "test": {p: t.encode() for p, t in test_files.items()}}
        steps = [["parallel", [["run", "cand", ["javac", *JAVAC_FLAGS, *cand_files], 0],
                               ["run", "test", ["javac", *JAVAC_FLAGS, *test_files], 0]]]]
        return Build(units=units, steps=steps, compile_memory_mb=None, **common), {}
    wire = javac_server.wire_classes() if server.classpath else None
    if wire:  # the codec is precompiled and on the server's class path: each program gets its class files
        test_files, cand_files = ({p: t for p, t in files.items() if p != WIRE_FILE} for files in (test_files, cand_files))
    test_classes = {**(wire or {}), **_test_classes(server, test_files, config.compile_timeout_s)}
    b, failure = _compiled(server, cand_files, config, "cand", common, {"test": {f"classes/{p}": d for p, d in test_classes.items()}})
    if b is not None and wire:
        b.units["cand"].update({f"classes/{p}": d for p, d in wire.items()})
    return b, failure


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
