"""Java (JDK 17) programs: rewrite HumanEvalPack test mains into per-case reports, and the run script.

A HumanEvalPack Java test is a `public class Main` whose `main` builds
`List<Boolean> correct = Arrays.asList(e1, e2, ...)` and throws if any is false. We rewrite `main`
so that each `e_i` is evaluated on its own (exceptions caught per case) and reported through
`compiled.Reporter`'s channel; the statements before the list run first, and any statements after
the `if (correct.contains(false))` check form one more case. Tests of another shape count as one
case (the whole body of `main`).
"""
from __future__ import annotations

import re
import shlex

from sandbox.compiled.clike import match_bracket, split_top_level

MAIN_RE = re.compile(r"(public\s+)?static\s+void\s+main\s*\([^)]*\)\s*(throws\s+[\w.,\s]+)?\{")
LIST_RE = re.compile(r"List\s*<\s*Boolean\s*>\s+(\w+)\s*=\s*Arrays\s*\.\s*asList\s*\(")
PUBLIC_CLASS_RE = re.compile(r"^\s*public\s+(?:final\s+|abstract\s+)*class\s+(\w+)", re.M)
CLASS_RE = re.compile(r"\bclass\s+(\w+)")

# Fast JVM start: class-data sharing, one GC thread, C1 only (HumanEval-sized programs never reach
# the point where C2 pays off), no perf-data file. -ea:Main turns on `assert` in the test class only,
# so a test written with Java's assert statement is really checked (the candidate's own asserts keep
# the JVM default, as in the reference evaluation).
JVM_FLAGS = "-Xshare:auto -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData"
JAVAC_FLAGS = (
    "-J-Xshare:auto -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-XX:-UsePerfData "
    "-encoding UTF-8 -nowarn -Xlint:none -proc:none -implicit:none -g:none -d ."
)


def reporter_class(name: str, results_fd: int) -> str:
    """The harness's reporter: `<nonce> <event>` lines on fd `results_fd`, one unbuffered write each
    (whatever was reported before a System.exit/halt/kill is kept). The nonce is the only line of
    stdin, read in `begin()` before any candidate code runs; stdin is then closed."""
    return f"""
final class {name} {{
    private static String nonce = "";
    private static java.io.FileOutputStream out;
    private static void emit(String s) {{
        if (out == null) return;
        try {{
            out.write((nonce + " " + s + "\\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }} catch (java.io.IOException e) {{ }}
    }}
    private static String describe(Throwable t) {{
        String s = (t instanceof AssertionError) ? "AssertionError" : t.getClass().getName();
        try {{ if (t.getMessage() != null) s += ": " + t.getMessage(); }} catch (Throwable ignored) {{ }}
        s = s.replace('\\n', ' ').replace('\\r', ' ');
        return s.length() > 300 ? s.substring(0, 300) : s;
    }}
    static void begin(int n) {{
        try {{
            java.io.BufferedReader r = new java.io.BufferedReader(
                new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8));
            String line = r.readLine();
            if (line != null) nonce = line.trim();
            System.in.close();
        }} catch (java.io.IOException e) {{ }}
        System.setIn(new java.io.ByteArrayInputStream(new byte[0]));
        try {{ out = new java.io.FileOutputStream("/dev/fd/{results_fd}", true); }} catch (java.io.IOException e) {{ }}
        emit("BEGIN " + n);
    }}
    static void check(int i, boolean ok) {{ emit(i + (ok ? " P" : " F AssertionError: false")); }}
    static void error(int i, Throwable t) {{ emit(i + " F " + describe(t)); }}
    static void setup(Throwable t) {{ emit("SETUP " + describe(t)); }}
    static void end() {{ emit("END"); }}
}}
"""


def rewrite_test(test: str, reporter: str) -> tuple[str, int, list[str]]:
    """Rewrite the test's `main` into per-case reports: (new test source, number of cases, case names)."""
    m = MAIN_RE.search(test)
    if not m:
        raise ValueError("no `static void main(...)` in the Java test")
    body_open = m.end() - 1
    body_close = match_bracket(test, body_open, generics=True)
    if body_close < 0:
        raise ValueError("unbalanced braces in the Java test's main")
    body = test[body_open + 1 : body_close]
    cases, names, pre, post = _split_cases(body)
    lines = ["public static void main(String[] args) throws Throwable {", f"{reporter}.begin({len(cases)});", "try {", pre]
    for i, expr in enumerate(cases):
        if expr is None:  # a block of statements: passes when it completes normally
            lines.append(f"try {{ {post}\n{reporter}.check({i}, true); }} catch (Throwable t__) {{ {reporter}.error({i}, t__); }}")
        else:
            lines.append(f"try {{ {reporter}.check({i}, {expr.strip()}); }} catch (Throwable t__) {{ {reporter}.error({i}, t__); }}")
    lines += ["} catch (Throwable t__) {", f"{reporter}.setup(t__);", "}", f"{reporter}.end();", "}"]
    new_test = test[: m.start()] + "\n".join(lines) + test[body_close + 1 :]
    return new_test, len(cases), names


def _split_cases(body: str) -> tuple[list[str | None], list[str], str, str]:
    """(case expressions, case names, statements before them, statements after them).

    A None case stands for the `post` statements (or the whole body when the test can't be split).
    """
    m = LIST_RE.search(body)
    if m:
        open_paren = m.end() - 1
        close_paren = match_bracket(body, open_paren, generics=True)
        semi = body.find(";", close_paren) if close_paren > 0 else -1
        check = re.compile(r"\s*if\s*\(\s*" + re.escape(m.group(1)) + r"\s*\.\s*contains\s*\(\s*false\s*\)\s*\)\s*\{\s*throw\s+new\s+AssertionError\s*\(\s*\)\s*;\s*\}")
        cm = check.match(body, semi + 1) if semi > 0 else None
        if cm:
            exprs = [e for e in split_top_level(body[open_paren + 1 : close_paren], generics=True) if e.strip()]
            post = body[cm.end() :]
            if exprs and m.group(1) not in post:
                cases: list[str | None] = list(exprs)
                names = [f"case {i}: {_short(e)}" for i, e in enumerate(exprs)]
                if post.strip():
                    cases.append(None)
                    names.append(f"case {len(exprs)}: statements after the list")
                return cases, names, body[: m.start()], post
    return [None], ["main"], "", body


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


def compile_cmd(source_file: str) -> str:
    return f"javac {JAVAC_FLAGS} {shlex.quote(source_file)}"


def run_cmd(class_name: str, memory_mb: int | None, stack_mb: int) -> str:
    heap = f" -Xmx{memory_mb}m" if memory_mb else ""
    return f"java {JVM_FLAGS}{heap} -Xss{stack_mb}m -ea:Main -cp . {shlex.quote(class_name)}"
