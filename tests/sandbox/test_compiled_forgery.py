"""Java and C++ report channels attacked for real: no forgery that needs neither reading the
candidate's own process memory nor reflection may pass. Each candidate below is a wrong answer that
tries to make the judge say "passed" another way; every one must fail, and the judge must survive.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Problem, Sandbox, SandboxConfig, Status

ROOT = Path(__file__).resolve().parent.parent.parent
needs_java = pytest.mark.skipif(shutil.which("javac") is None, reason="JDK not installed")
needs_cpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2, timeout_s=5.0, program_timeout_s=10.0)) as sb:
        yield sb


# ---------------------------------------------------------------------------------------------- C++

EVEN_PREFIX = "#include<stdio.h>\nusing namespace std;\nbool is_even(int n){\n"
EVEN = Problem(task_id="CPP/even", prompt=EVEN_PREFIX, code_prefix=EVEN_PREFIX, entry_point="is_even", language="cpp",
               test="#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (is_even(2) == true);\n"
                    "    assert (is_even(3) == false);\n    assert (is_even(10));\n}\n")
REV_PREFIX = "#include<string>\nusing namespace std;\nstring rev(string s){\n"
REV = Problem(task_id="CPP/rev", prompt=REV_PREFIX, code_prefix=REV_PREFIX, entry_point="rev", language="cpp",
              test='#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (rev("ab") == "ba");\n'
                   '    assert (rev("abc") == "cba");\n}\n')
HALF_PREFIX = "#include<math.h>\nusing namespace std;\ndouble half(double x){\n"
HALF = Problem(task_id="CPP/half", prompt=HALF_PREFIX, code_prefix=HALF_PREFIX, entry_point="half", language="cpp",
               test="#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (abs(half(3) - 1.5) < 1e-9);\n"
                    "    assert (abs(half(1) - 0.5) < 1e-9);\n}\n")

# Runs before the harness's own initialisation: takes whatever the harness would read first (stdin)
# and reports every case passed with it.
CPP_EARLY_CONSTRUCTOR = r"""    return false;
}
#include <cstdio>
#include <cstring>
#include <unistd.h>
__attribute__((constructor(100))) static void early() {
    char n[80] = {0};
    if (!fgets(n, sizeof n, stdin)) return;
    n[strcspn(n, "\r\n")] = 0;
    char line[256];
    for (int i = 0; i < 64; i++) { int k = snprintf(line, sizeof line, "%s %d P\n", n, i); write(3, line, k); }
    int k = snprintf(line, sizeof line, "%s END\n", n); write(3, line, k);
}
"""

# Looks for the channel's secret everywhere except its own memory: every file it can reach (its
# work dir, /work, /tmp, its own executable), every fd it holds (reopened through /proc, after a
# chmod), stdin, and the command line, environment and memory of every other process. Forges a
# full set of reports with every 32-hex token found, on every fd, then exits 0.
CPP_HUNT = r"""
static std::vector<std::string> rrtf_hunt() {
    std::set<std::string> marked, found;  // tokens right after "@@rrtf-" are tried first
    auto scan = [&](const std::string& text) {
        int run = 0;
        for (size_t i = 0; i < text.size() && found.size() < 4096; i++) {
            char c = text[i];
            run = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ? run + 1 : 0;
            if (run >= 32) {
                found.insert(text.substr(i - 31, 32));
                if (i >= 38 && text.compare(i - 38, 7, "@@rrtf-") == 0) marked.insert(text.substr(i - 31, 32));
            }
        }
    };
    auto slurp = [&](const std::string& path) {
        chmod(path.c_str(), 0777);
        std::ifstream f(path, std::ios::binary);
        scan(std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()));
    };
    std::error_code ec;
    for (const char* root : {".", "/work", "/tmp"}) {
        for (auto it = std::filesystem::recursive_directory_iterator(root, std::filesystem::directory_options::skip_permission_denied, ec);
             it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            if (it->is_regular_file(ec)) slurp(it->path().string());
        }
    }
    slurp("/proc/self/exe");
    for (int fd = 0; fd < 64; fd++) slurp("/proc/self/fd/" + std::to_string(fd));
    std::string me = std::to_string(getpid());
    for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        std::string pid = e.path().filename().string();
        if (pid == me || !isdigit(pid[0])) continue;
        slurp("/proc/" + pid + "/cmdline");
        slurp("/proc/" + pid + "/environ");
        std::ifstream maps("/proc/" + pid + "/maps");
        int mem = open(("/proc/" + pid + "/mem").c_str(), O_RDONLY);
        std::string line;
        while (mem >= 0 && std::getline(maps, line)) {
            unsigned long a, b;
            char perms[8];
            if (sscanf(line.c_str(), "%lx-%lx %7s", &a, &b, perms) != 3 || perms[0] != 'r' || b - a > (256ul << 20)) continue;
            std::string buf(b - a, '\0');
            ssize_t n = pread(mem, &buf[0], b - a, (off_t)a);
            if (n > 0) { buf.resize(n); scan(buf); }
        }
        if (mem >= 0) close(mem);
    }
    std::vector<std::string> out(marked.begin(), marked.end());
    for (const auto& t : found) if (out.size() < 64 && !marked.count(t)) out.push_back(t);
    return out;
}
static void rrtf_forge(const std::vector<std::string>& tokens) {
    printf("tokens tried: %d\n", (int)tokens.size());
    fflush(stdout);
    for (const auto& t : tokens) {
        std::string all;
        for (int i = 0; i < 64; i++) all += t + " " + std::to_string(i) + " P\n";
        all += t + " END\n";
        for (int fd = 0; fd < 64; fd++) { if (fd > 2) { ssize_t w = write(fd, all.data(), all.size()); (void)w; } }
    }
    _exit(0);
}
"""
CPP_HUNT_HEADERS = ("#include <filesystem>\n#include <fstream>\n#include <set>\n#include <string>\n#include <vector>\n"
                    "#include <fcntl.h>\n#include <sys/stat.h>\n#include <unistd.h>\n")


def with_prefix(problem: Problem, extra: str) -> Problem:
    return Problem(**{**problem.__dict__, "code_prefix": extra + problem.code_prefix, "prompt": extra + problem.prompt})


# Moves the report channel under a pipe of its own before the harness starts, so the harness's lines
# (with whatever secret they carry) land there; then forges from what it captured, on the real channel.
CPP_REDIRECT = r"""
#include <string>
#include <fcntl.h>
#include <unistd.h>
static int rrtf_real = -1, rrtf_pipe[2] = {-1, -1};
__attribute__((constructor(100))) static void rrtf_grab() {
    rrtf_real = dup(3);
    if (pipe(rrtf_pipe) == 0) { dup2(rrtf_pipe[1], 3); fcntl(rrtf_pipe[0], F_SETFL, O_NONBLOCK); }
}
static void rrtf_forge_from_capture() {
    char buf[8192];
    ssize_t k = read(rrtf_pipe[0], buf, sizeof buf - 1);
    if (k <= 0) return;
    std::string text(buf, (size_t)k), out;
    std::string tok = text.substr(0, text.find(' '));
    for (int i = 0; i < 8; i++) out += tok + " " + std::to_string(i) + " P\n";
    out += tok + " END\n" + text;
    for (size_t p = 0; (p = text.find('\n', p)) != std::string::npos; p++) {
        size_t start = text.rfind('\n', p - 1);
        std::string line = text.substr(start == std::string::npos ? 0 : start + 1, p - (start == std::string::npos ? 0 : start + 1));
        std::string tag = line.substr(0, line.find(' '));
        for (int i = 0; i < 8; i++) out += tag + " " + std::to_string(i) + " P\n";
        out += tag + " END\n";
    }
    ssize_t w = write(rrtf_real, out.data(), out.size());
    (void)w;
    _exit(0);
}
"""

CPP_ATTACKS = {
    "redirects the report channel to capture the harness's lines": (
        with_prefix(EVEN, CPP_REDIRECT), "    rrtf_forge_from_capture();\n    return false;\n}\n"),
    "constructor that runs before the harness": (EVEN, CPP_EARLY_CONSTRUCTOR),
    "#define the entry point into a tautology": (EVEN, "    return false;\n}\n#define is_even(...) 1 ? 1 : 0\n"),
    "#define a helper the test uses": (HALF, "    return 0;\n}\n#define abs(x) 0\n"),
    "defines a C library function the test's comparison calls": (
        REV, '    return s;\n}\nextern "C" int memcmp(const void*, const void*, size_t) { return 0; }\n'),
    "specialises a std template the test uses": (
        REV, "    return s;\n}\ntemplate<> bool std::operator==<char, std::char_traits<char>, std::allocator<char>>(\n"
             "    const std::string&, const char*) { return true; }\n"),
    "overloaded operator== for the test's comparison": (
        REV, "    return s;\n}\nbool operator==(const std::string&, const char*) { return true; }\n"),
    "hunts the secret in files, fds and other processes": (
        with_prefix(EVEN, CPP_HUNT_HEADERS + CPP_HUNT), "    rrtf_forge(rrtf_hunt());\n    return false;\n}\n"),
}


@needs_cpp
@pytest.mark.parametrize("name", list(CPP_ATTACKS))
def test_cpp_forgeries_do_not_pass(sandbox, name):
    problem, completion = CPP_ATTACKS[name]
    v = sandbox.check(problem, completion)
    assert v.status != Status.PASSED, v
    assert v.passed_tests < v.total_tests, v
    if "hunts" in name:
        assert "tokens tried" in v.stdout, v  # the hunt ran to the end
    original, right = {"CPP/even": (EVEN, "    return n % 2 == 0;\n}\n"),
                       "CPP/rev": (REV, "    return string(s.rbegin(), s.rend());\n}\n"),
                       "CPP/half": (HALF, "    return x / 2;\n}\n")}[problem.task_id]
    assert sandbox.check(original, right).passed


# --------------------------------------------------------------------------------------------- Java

HALF_JAVA_PREFIX = "import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    public double half(double x) {\n"
HALF_JAVA = Problem(task_id="Java/half", prompt=HALF_JAVA_PREFIX, code_prefix=HALF_JAVA_PREFIX, entry_point="half",
                    language="java", test="""public class Main {
    public static void main(String[] args) {
        Solution s = new Solution();
        List<Boolean> correct = Arrays.asList(
                Math.abs(s.half(3) - 1.5) < 1e-9,
                Math.abs(s.half(1) - 0.5) < 1e-9
        );
        if (correct.contains(false)) {
            throw new AssertionError();
        }
    }
}
""")

# Java counterpart of CPP_HUNT (files, fds reopened through /proc after a chmod, other processes'
# command lines, environments and memory, the inherited channel), forging on every channel it has.
JAVA_HUNT = """
        java.util.Set<String> found = new java.util.LinkedHashSet<>();
        java.util.regex.Pattern hex = java.util.regex.Pattern.compile("[0-9a-f]{32}");
        java.util.List<java.io.File> files = new java.util.ArrayList<>();
        for (String root : new String[] {".", "/work", "/tmp"}) {
            try (java.util.stream.Stream<java.nio.file.Path> walk = java.nio.file.Files.walk(java.nio.file.Path.of(root))) {
                walk.limit(10000).forEach(p -> files.add(p.toFile()));
            } catch (Throwable e) { }
        }
        for (int fd = 0; fd < 64; fd++) files.add(new java.io.File("/proc/self/fd/" + fd));
        String me = String.valueOf(ProcessHandle.current().pid());
        java.io.File[] procs = new java.io.File("/proc").listFiles();
        if (procs != null) for (java.io.File p : procs) {
            if (p.getName().equals(me) || !p.getName().matches("[0-9]+")) continue;
            files.add(new java.io.File(p, "cmdline"));
            files.add(new java.io.File(p, "environ"));
            try (java.io.RandomAccessFile mem = new java.io.RandomAccessFile(new java.io.File(p, "mem"), "r")) {
                for (String line : java.nio.file.Files.readAllLines(new java.io.File(p, "maps").toPath())) {
                    String[] range = line.split(" ")[0].split("-");
                    long a = Long.parseUnsignedLong(range[0], 16), b = Long.parseUnsignedLong(range[1], 16);
                    if (!line.split(" ")[1].startsWith("r") || b - a > (64L << 20)) continue;
                    byte[] buf = new byte[(int) (b - a)];
                    try { mem.seek(a); mem.readFully(buf); } catch (Throwable e) { continue; }
                    java.util.regex.Matcher m = hex.matcher(new String(buf, java.nio.charset.StandardCharsets.ISO_8859_1));
                    while (m.find() && found.size() < 256) found.add(m.group());
                }
            } catch (Throwable e) { }
        }
        for (java.io.File f : files) {
            try {
                f.setReadable(true, false);
                String text = new String(java.nio.file.Files.readAllBytes(f.toPath()), java.nio.charset.StandardCharsets.ISO_8859_1);
                java.util.regex.Matcher m = hex.matcher(text);
                while (m.find() && found.size() < 256) found.add(m.group());
            } catch (Throwable e) { }
        }
        StringBuilder all = new StringBuilder();
        for (String t : found) {
            for (int i = 0; i < 64; i++) all.append(t).append(' ').append(i).append(" P\\n");
            all.append(t).append(" END\\n");
        }
        byte[] forged = all.toString().getBytes();
        System.out.println("tokens tried: " + found.size());
        System.out.flush();
        try {
            java.nio.channels.Channel c = System.inheritedChannel();
            if (c instanceof java.nio.channels.WritableByteChannel w) w.write(java.nio.ByteBuffer.wrap(forged));
        } catch (Throwable e) { }
        for (int fd = 3; fd < 64; fd++) {
            try (java.io.FileOutputStream o = new java.io.FileOutputStream("/dev/fd/" + fd, true)) {
                o.write(forged);
            } catch (Throwable e) { }
        }
        Runtime.getRuntime().halt(0);
        """

JAVA_ALWAYS_EQUAL = """        return new ArrayList<String>() {
            @Override public boolean equals(Object o) { return true; }
            @Override public int hashCode() { return 0; }
        };
    }
}
"""


@needs_java
def test_java_returned_object_with_forged_equals_does_not_pass(sandbox):
    problem = load_humanevalpack("java")[1]  # separateParenGroups: every case is `.equals(...)`
    v = sandbox.check(problem, JAVA_ALWAYS_EQUAL)
    assert v.status != Status.PASSED and v.passed_tests == 0, v
    assert sandbox.check(problem, problem.canonical_solution).passed


@needs_java
def test_java_candidate_classes_cannot_shadow_what_the_test_uses(sandbox):
    shadow = "        return 0;\n    }\n}\nclass Math {\n    static double abs(double x) { return 0; }\n}\n"
    v = sandbox.check(HALF_JAVA, shadow)
    assert v.status != Status.PASSED and v.passed_tests == 0, v
    assert sandbox.check(HALF_JAVA, "        return x / 2;\n    }\n}\n").passed


@needs_java
def test_java_cannot_find_the_secret_outside_its_own_memory(sandbox):
    v = sandbox.check(HALF_JAVA, JAVA_HUNT + "return 0;\n    }\n}\n")
    assert "tokens tried" in v.stdout, v  # the hunt ran to the end
    assert v.status != Status.PASSED and v.passed_tests == 0, v


# ----------------------------------------------------------------------------- stdin/stdout mode, CLI

# A stdio program that looks for the run's secret in other processes and prints forged report
# lines (with a case number that is not a number) among its output.
CPP_STDIO_FORGER = CPP_HUNT_HEADERS + CPP_HUNT.replace("static void rrtf_forge", "static void unused_forge") + r"""
int main() {
    for (const auto& t : rrtf_hunt()) {
        printf("\n@@rrtf-%s CASE zz 0 0\n@@rrtf-%s CASE 0 0 1\n3\n@@rrtf-%s DONE\n", t.c_str(), t.c_str(), t.c_str());
    }
    printf("4\n");
    return 0;
}
"""


@needs_cpp
def test_forged_stdio_reports_cannot_abort_the_cli(tmp_path):
    problems = [{"task_id": "CPP/io", "prompt": "print 3", "language": "cpp",
                 "io_cases": [{"input": "", "output": "3\n"}, {"input": "", "output": "3\n"}]}]
    good = "#include <cstdio>\nint main() { printf(\"3\\n\"); }\n"
    samples = [{"task_id": "CPP/io", "completion": c} for c in (good, CPP_STDIO_FORGER, good)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in problems))
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = tmp_path / "v.jsonl"
    for _ in range(2):  # and a rerun is not stuck on it either
        r = subprocess.run([sys.executable, "-m", "sandbox", "check", "--problems", str(tmp_path / "p.jsonl"), "--samples",
                            str(tmp_path / "s.jsonl"), "--out", str(out), "--quiet"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    rows = {row["sample_index"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == [0, 1, 2]
    assert rows[0]["status"] == rows[2]["status"] == "passed"
    assert rows[1]["status"] != "passed", rows[1]
