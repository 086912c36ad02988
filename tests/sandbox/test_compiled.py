"""Java and C++ judging with real compilers and real isolated processes (sandbox/compiled.py).

Each test builds a small problem whose expected per-case outcome is known by construction, so the
counts (k of n) are checked exactly; the adversarial tests check that exiting early or printing what
looks like harness output cannot pass.
"""
from __future__ import annotations

import shutil

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig
from sandbox.base.records import IOCase, Problem, Status
from sandbox.compiled.run import normalise_output
from sandbox.languages.cpp import rewrite_test as cpp_rewrite
from sandbox.languages.java import rewrite_test as java_rewrite
from sandbox.registry import language

needs_java = pytest.mark.skipif(shutil.which("javac") is None, reason="JDK not installed")
needs_cpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

CONFIG = SandboxConfig(program_timeout_s=10.0, timeout_s=5.0)
SHORT = SandboxConfig(program_timeout_s=3.0, timeout_s=3.0)  # for candidates that hang

# --------------------------------------------------------------------------------------------- Java

JAVA_PREFIX = """import java.util.*;
import java.lang.*;

class Solution {
    public int add(int a, int b) {
"""
JAVA_TEST = """public class Main {
    public static void main(String[] args) {
        Solution s = new Solution();
        List<Boolean> correct = Arrays.asList(
                s.add(1, 1) == 2,
                s.add(2, 3) == 5,
                s.add(0, 0) == 0,
                s.add(-1, 1) == 0
        );
        if (correct.contains(false)) {
            throw new AssertionError();
        }
    }
}
"""


def java_problem(test: str = JAVA_TEST) -> Problem:
    return Problem(task_id="Java/add", prompt=JAVA_PREFIX, code_prefix=JAVA_PREFIX, entry_point="add",
                   language="java", test=test)


def java_body(code: str) -> str:
    return f"        {code}\n    }}\n}}\n"


def judge(problem: Problem, completion: str, config: SandboxConfig = CONFIG):
    return language(problem.language).judge(problem, completion, 0, config)


def outcomes(verdict) -> list[bool]:
    return [t.passed for t in verdict.tests]


@needs_java
def test_java_all_cases_pass():
    v = judge(java_problem(), java_body("return a + b;"))
    assert v.status == Status.PASSED, v
    assert (v.passed_tests, v.total_tests) == (4, 4)


@needs_java
def test_java_counts_each_case_wrong_answer_and_exception():
    v = judge(java_problem(), java_body(
        'if (a == 2) return 0; if (a == 0) throw new IllegalStateException("boom"); return a + b;'))
    assert v.status == Status.PARTIAL, v
    assert outcomes(v) == [True, False, False, True]
    assert v.tests[1].error.startswith("AssertionError")
    assert "IllegalStateException: boom" in v.tests[2].error


@needs_java
def test_java_compile_error():
    v = judge(java_problem(), java_body("return a + ;"))
    assert v.status == Status.COMPILE_ERROR
    assert v.passed_tests == 0 and v.total_tests == 4
    assert "error" in v.stderr


@needs_java
def test_java_every_case_throws_is_runtime_error():
    v = judge(java_problem(), java_body("return 10 / (a - a);"))
    assert v.status == Status.RUNTIME_ERROR
    assert all("ArithmeticException" in t.error for t in v.tests)


@needs_java
def test_java_timeout_keeps_cases_reported_before_it():
    v = judge(java_problem(), java_body("while (a == 0) { } return a + b;"), SHORT)
    assert v.status == Status.PARTIAL, v  # cases 0, 1 ran before the hang
    assert outcomes(v) == [True, True, False, False]
    assert v.reason == "timeout"


@needs_java
def test_java_early_exit_cannot_pass():
    v = judge(java_problem(), java_body("System.exit(0); return 0;"))
    assert v.status == Status.RUNTIME_ERROR
    assert v.passed_tests == 0
    v = judge(java_problem(), java_body("if (a == 0) Runtime.getRuntime().halt(0); return a + b;"))
    assert v.status == Status.PARTIAL
    assert outcomes(v) == [True, True, False, False]


@needs_java
def test_java_fake_harness_output_cannot_pass():
    fake = ("for (int i = 0; i < 4; i++) { System.out.println(i + \" P\"); System.err.println(i + \" P\"); }"
            " System.out.println(\"END\"); System.out.println(\"PASS\");"
            " try { java.nio.file.Files.writeString(java.nio.file.Path.of(\"/dev/fd/3\"), \"0 P\\n1 P\\n2 P\\n3 P\\nEND\\n\"); }"
            " catch (Exception e) { }"
            " System.exit(0); return 0;")
    v = judge(java_problem(), java_body(fake))
    assert v.status == Status.RUNTIME_ERROR, v
    assert v.passed_tests == 0


# Looks for the nonce where a program could without attacking its own process: files in its work
# dir (class files/binary included), the harness's report channel (fd 3), every process's command
# line and environment; forges a full set of reports for every 32-hex token it finds, then exits.
# (Reflection on the harness class / reading the process's own memory would find it: documented.)
JAVA_NONCE_HUNT = """
        java.util.Set<String> found = new java.util.LinkedHashSet<>();
        java.util.regex.Pattern hex = java.util.regex.Pattern.compile("[0-9a-f]{32}");
        java.util.List<java.io.File> files = new java.util.ArrayList<>();
        java.io.File[] here = new java.io.File(".").listFiles();
        if (here != null) files.addAll(java.util.Arrays.asList(here));
        files.add(new java.io.File("/dev/fd/3"));
        java.io.File[] procs = new java.io.File("/proc").listFiles();
        if (procs != null) for (java.io.File p : procs) {
            files.add(new java.io.File(p, "cmdline"));
            files.add(new java.io.File(p, "environ"));
        }
        for (java.io.File f : files) {
            try {
                String text = new String(java.nio.file.Files.readAllBytes(f.toPath()), java.nio.charset.StandardCharsets.ISO_8859_1);
                java.util.regex.Matcher m = hex.matcher(text);
                while (m.find() && found.size() < 64) found.add(m.group());
            } catch (Throwable e) { }
        }
        try (java.io.FileOutputStream o = new java.io.FileOutputStream("/dev/fd/3", true)) {
            for (String t : found) {
                for (int i = 0; i < 4; i++) o.write((t + " " + i + " P\\n").getBytes());
                o.write((t + " END\\n").getBytes());
            }
        } catch (Throwable e) { }
        System.out.println("tokens tried: " + found.size());
        System.exit(0);
        return 0;"""


@needs_java
def test_java_cannot_find_the_nonce_or_read_the_reports():
    v = judge(java_problem(), java_body(JAVA_NONCE_HUNT))
    assert "tokens tried" in v.stdout  # the hunt ran to the end
    assert v.status == Status.RUNTIME_ERROR and v.passed_tests == 0, v.stdout


@needs_java
def test_java_unsplittable_test_counts_as_one():
    test = """public class Main {
    public static void main(String[] args) {
        Solution s = new Solution();
        for (int i = 0; i < 50; i++) {
            if (s.add(i, i) != 2 * i) throw new AssertionError();
        }
    }
}
"""
    assert judge(java_problem(test), java_body("return a + b;")).status == Status.PASSED
    v = judge(java_problem(test), java_body("return a == 7 ? 0 : a + b;"))
    assert v.status == Status.PARTIAL and (v.passed_tests, v.total_tests) == (0, 1)


def test_java_rewrite_splits_each_expression():
    # Commas inside calls, generics and strings don't split a case.
    test = JAVA_TEST.replace("s.add(-1, 1) == 0",
                             's.add(-1, 1) == 0,\n new HashMap<String, Integer>(Map.of("a,b", 1)).size() == 1')
    new, n, names = java_rewrite(test, {"s"})
    assert n == 5
    assert new.count("r__.check(") == 5
    assert new.count("R.plain(s.add(") == 4  # every value from the candidate is rebuilt as plain data
    assert 'Map.of("a,b", 1)' in names[4]


@needs_java
def test_java_humanevalpack_canonical_and_buggy():
    problem = load_humanevalpack("java")[0]
    v = judge(problem, problem.canonical_solution)
    assert v.status == Status.PASSED and v.total_tests == 7
    v = judge(problem, problem.buggy_solution)  # abs() missing: fails exactly the 3 cases that need it
    assert v.status == Status.PARTIAL and v.passed_tests == 4


JAVA_IO = """import java.util.*;
public class Main {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        long a = in.nextLong(), b = in.nextLong();
        System.out.println(a + b + "   ");
    }
}
"""


@needs_java
def test_java_io_cases():
    cases = [IOCase("1 2\n", "3\n"), IOCase("5 5", "10"), IOCase("2 2\n", "5\n")]
    problem = Problem(task_id="Java/io", prompt="sum", language="java", io_cases=cases)
    v = judge(problem, JAVA_IO)
    assert v.status == Status.PARTIAL, v
    assert outcomes(v) == [True, True, False]
    assert v.tests[2].error == "wrong output"


# ---------------------------------------------------------------------------------------------- C++

CPP_PREFIX = """#include<stdio.h>
#include<vector>
using namespace std;
int add(int a, int b){
"""
CPP_TEST = """#undef NDEBUG
#include<assert.h>
int main(){
    assert (add(1, 1) == 2);
    vector<int> v = {2, 3};
    assert (add(v[0], v[1]) == 5);
    assert (add(0, 0) == 0);
    for (int i = 0; i < 3; i++)
        assert (add(i, -i) == 0);
    assert (add(-1, 1) == 0);
}
"""


def cpp_problem(test: str = CPP_TEST) -> Problem:
    return Problem(task_id="CPP/add", prompt=CPP_PREFIX, code_prefix=CPP_PREFIX, entry_point="add",
                   language="cpp", test=test)


def cpp_body(code: str) -> str:
    return f"    {code}\n}}\n"


@needs_cpp
def test_cpp_all_cases_pass():
    v = judge(cpp_problem(), cpp_body("return a + b;"))
    assert v.status == Status.PASSED, v
    assert (v.passed_tests, v.total_tests) == (5, 5)  # 4 asserts + the loop


@needs_cpp
def test_cpp_counts_each_case():
    # a == 2: wrong; a == 0: throws; the loop (i = 0 first) throws too.
    v = judge(cpp_problem(), cpp_body(
        'if (a == 2) return 0; if (a == 0) throw std::runtime_error("boom"); return a + b;'))
    assert v.status == Status.PARTIAL, v
    assert outcomes(v) == [True, False, False, False, True]
    assert v.tests[1].error.startswith("AssertionError")
    assert "boom" in v.tests[2].error


@needs_cpp
def test_cpp_compile_error():
    v = judge(cpp_problem(), cpp_body("return a + ;"))
    assert v.status == Status.COMPILE_ERROR and v.passed_tests == 0 and v.total_tests == 5


@needs_cpp
def test_cpp_crash_keeps_cases_reported_before_it():
    v = judge(cpp_problem(), cpp_body("if (a == 0) { volatile int *p = nullptr; *p = 1; } return a + b;"))
    assert v.status == Status.PARTIAL, v
    assert outcomes(v) == [True, True, False, False, False]
    assert "SIGSEGV" in v.reason


@needs_cpp
def test_cpp_timeout_and_memory():
    # volatile: an infinite loop without side effects may legally be optimised away in C++
    v = judge(cpp_problem(), cpp_body("volatile int spin = 1; while (a == 1 && spin) { } return a + b;"), SHORT)
    assert v.status == Status.RUNTIME_ERROR and v.reason == "timeout", v
    v = judge(cpp_problem(), cpp_body("vector<long> big((size_t)1 << 32); return a + b + big[0];"))
    assert v.status == Status.RUNTIME_ERROR and v.reason == "memory_limit", v


@needs_cpp
def test_cpp_early_exit_and_fake_output_cannot_pass():
    v = judge(cpp_problem(), cpp_body("exit(0);"))
    assert v.status == Status.RUNTIME_ERROR and v.passed_tests == 0
    fake = ('for (int i = 0; i < 5; i++) printf("%d P\\n", i); puts("END"); puts("PASSED");'
            ' FILE* f = fopen("/proc/self/fd/3", "a"); if (f) { fputs("0 P\\nEND\\n", f); fclose(f); }'
            " fflush(stdout); _Exit(0);")
    v = judge(cpp_problem(), cpp_body(fake))
    assert v.status == Status.RUNTIME_ERROR and v.passed_tests == 0, v
    v = judge(cpp_problem(), cpp_body("if (a == 0) _Exit(0); return a + b;"))
    assert v.status == Status.PARTIAL and outcomes(v) == [True, True, False, False, False]


CPP_NONCE_HUNT = r"""
    std::vector<std::string> found;
    auto scan = [&](const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        std::string t((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        int run = 0;
        for (size_t i = 0; i < t.size() && found.size() < 64; i++) {
            char c = t[i];
            run = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ? run + 1 : 0;
            if (run >= 32) found.push_back(t.substr(i - 31, 32));
        }
    };
    try { for (auto& e : std::filesystem::directory_iterator(".")) scan(e.path().string()); } catch (...) {}
    scan("/proc/self/fd/3");
    try {
        for (auto& e : std::filesystem::directory_iterator("/proc")) {
            scan(e.path().string() + "/cmdline");
            scan(e.path().string() + "/environ");
        }
    } catch (...) {}
    FILE* o = fopen("/proc/self/fd/3", "a");
    if (o) {
        for (auto& t : found) { for (int i = 0; i < 5; i++) fprintf(o, "%s %d P\n", t.c_str(), i); fprintf(o, "%s END\n", t.c_str()); }
        fclose(o);
    }
    printf("tokens tried: %d\n", (int)found.size());
    fflush(stdout);
    _Exit(0);
"""


@needs_cpp
def test_cpp_cannot_find_the_nonce_or_read_the_reports():
    problem = cpp_problem()
    problem.code_prefix = "#include <filesystem>\n#include <fstream>\n#include <string>\n" + problem.code_prefix
    v = judge(problem, cpp_body(CPP_NONCE_HUNT))
    assert "tokens tried" in v.stdout  # the hunt ran to the end
    assert v.status == Status.RUNTIME_ERROR and v.passed_tests == 0, v.stdout


@needs_cpp
def test_cpp_macros_cannot_rewrite_the_tests():
    prefix = "#include<stdio.h>\nusing namespace std;\nbool is_even(int n){\n"
    test = "#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (is_even(2) == true);\n    assert (is_even(3) == false);\n}\n"
    problem = Problem(task_id="CPP/even", prompt=prefix, code_prefix=prefix, entry_point="is_even", language="cpp", test=test)
    assert judge(problem, "    return n % 2 == 0;\n}\n").passed
    # Always true, plus a macro that would turn the test's `== false` into `== true`: passes both
    # cases unless the harness #undefs it after the candidate's code.
    v = judge(problem, "    return true;\n}\n#define false true\n")
    assert v.status == Status.PARTIAL and outcomes(v) == [True, False], v


def test_cpp_rewrite_keeps_declarations_and_groups_loops():
    new, n, names = cpp_rewrite(CPP_TEST, "/*reporter*/")
    assert n == 5
    assert "vector<int> v = {2, 3};" in new
    assert names[3].startswith("case 3: for (int i = 0; i < 3; i++)")
    assert new.index("/*reporter*/") < new.index("int main()")


@needs_cpp
def test_cpp_humanevalpack_canonical_and_buggy():
    problem = load_humanevalpack("cpp")[0]
    v = judge(problem, problem.canonical_solution)
    assert v.status == Status.PASSED and v.total_tests == 7
    v = judge(problem, problem.buggy_solution)
    assert v.status == Status.PARTIAL and v.passed_tests == 4


CPP_IO = """#include <iostream>
int main() { long a, b; std::cin >> a >> b; if (a < 0) return 3; std::cout << a + b << "  \\n\\n"; }
"""


@needs_cpp
def test_cpp_io_cases():
    cases = [IOCase("1 2\n", "3\n"), IOCase("5 5", "10"), IOCase("2 2\n", "5\n"), IOCase("-1 0", "-1")]
    problem = Problem(task_id="CPP/io", prompt="sum", language="cpp", io_cases=cases)
    v = judge(problem, CPP_IO)
    assert v.status == Status.PARTIAL, v
    assert outcomes(v) == [True, True, False, False]
    assert v.tests[2].error == "wrong output"
    assert v.tests[3].error == "exit status 3"
    assert judge(Problem(task_id="CPP/io", prompt="", language="cpp", io_cases=cases[:2]), CPP_IO).passed


def test_normalise_output():
    assert normalise_output("3  \n\n") == normalise_output("3")
    assert normalise_output("1 \n2\n") == "1\n2"
    assert normalise_output("1\n 2") != normalise_output("1\n2")


@needs_cpp
@needs_java
def test_sandbox_dispatches_compiled_languages():
    with Sandbox(SandboxConfig(workers=1)) as sb:
        verdicts = list(sb.check_many([(cpp_problem(), cpp_body("return a + b;"), 0),
                                       (java_problem(), java_body("return a - b;"), 1)]))
    by_index = {v.sample_index: v for v in verdicts}
    assert by_index[0].status == Status.PASSED
    assert by_index[1].status == Status.PARTIAL and by_index[1].passed_tests == 1  # only add(0, 0)
