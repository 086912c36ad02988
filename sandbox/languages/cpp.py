"""C++17: HumanEvalPack test mains rewritten into per-case reports, built so the test is out of the
candidate's reach, and stdin/stdout programs.

A HumanEvalPack C++ test is `#undef NDEBUG / #include<assert.h> / helpers / int main(){ ... }` where
main is a sequence of `assert (...)` lines, declarations, and a few loops containing asserts. Each
top-level `assert (e);` becomes its own reported case, each top-level statement containing an assert
(a loop) one case with a throwing `assert`; other statements stay. Tests of another shape are one case.

The candidate and the test are two programs (sandbox/compiled/cpp_pair.py, codec sandbox/compiled/codecs/wire.hpp):
- the candidate's program is the prompt + completion and a generated dispatcher `main`; it runs as its own uid and
  holds neither the key nor the test. Whatever it does to its own process -- macros, an `operator==` or a libc
  function of its own, constructors, reading its memory, writing on any fd -- stays there;
- the test's program is the prompt's helpers (e.g. CPP/32's `poly`) with the entry point replaced by a stub of the
  same signature, the rewritten test and the reporter. The stub sends each call as plain data and decodes the reply
  as the declared type, so the test compares values of std types with std code. The reporter tags each line with
  SipHash-2-4 under the run's key, which the runner writes on the report socket first; the program holds no key of
  its own, so it is compiled once per problem and reused.
A signature outside the codec (boost::any, the prompt's `list_any`) keeps the one-process build: the candidate's
code as a shared library exporting exactly the entry point (a version script decides it at link time), the key a
hidden symbol of an object assembled per run; where the prompt does not declare the entry point, one unit.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.cache import BytesCache
from sandbox.compiled.clike import code_matches, match_bracket, split_statements, strip_comments
from sandbox.compiled.cpp_headers import CXXFLAGS, PCH_HEADER, header_preamble, pch_text, support_files, usable_pch
from sandbox.compiled.cpp_pair import Signature, candidate_source, signature_or_reason, test_prefix
from sandbox.compiled.run import Build, Settings
from sandbox.compiled.run import judge as compiled_judge
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError

LANGUAGE = Language(
    name="cpp", display_name="C++", runs_in="isolated", task_id_prefixes=("cpp", "c++"), humanevalpack=True,
    debian_packages=("g++", "binutils"),  # g++ and its linkers (ld.gold when present)
    tools=("g++", "ld.gold"),  # executables it runs (names: found on the sandbox PATH)
    selftest={"entry_point": "add", "prompt": "#include<stdio.h>\nint add(int x,int y){\n",
              "canonical_solution": "    return x+y;\n}\n", "buggy_solution": "    return x-y;\n}\n",
              "test": "#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (add(2, 3) == 5);\n    assert (add(7, 5) == 12);\n}\n"})
MAIN_RE = re.compile(r"\bint\s+main\s*\([^)]*\)\s*\{")
ASSERT_RE = re.compile(r"\s*assert\s*\(")
HAS_ASSERT_RE = re.compile(r"\bassert\s*\(")
LINKER = ["-fuse-ld=gold"] if shutil.which("ld.gold") else []  # about half the time of bfd
# The library is linked with bfd: gold keeps symbols that override a shared library's exported
# whatever the version script says (measured), and that is exactly what must not happen here.
SHARED_LINKER = ["-fuse-ld=bfd"]
KEY_SOURCE = """\t.section .rodata
\t.globl rrtf_report_key
\t.hidden rrtf_report_key
rrtf_report_key:
\t.byte {key_bytes}
\t.section .note.GNU-stack,"",@progbits
"""
REPORTER = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <unistd.h>
/*RRTF_KEY*/
namespace {
namespace rrtf_report {
struct AssertFail { const char* expr; };
uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
uint64_t siphash(const std::string& m) {  // SipHash-2-4 (sandbox/worker/siphash.py)
    rrtf_load_key();
    uint64_t k0, k1;
    std::memcpy(&k0, rrtf_report_key, 8);
    std::memcpy(&k1, rrtf_report_key + 8, 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    auto round = [&]() {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    };
    size_t n = m.size(), end = n - n % 8;
    for (size_t i = 0; i < end; i += 8) {
        uint64_t w;
        std::memcpy(&w, m.data() + i, 8);
        v3 ^= w; round(); round(); v0 ^= w;
    }
    uint64_t b = (uint64_t)(n & 0xff) << 56;
    for (size_t j = 0; j < n % 8; j++) b |= (uint64_t)(unsigned char)m[end + j] << (8 * j);
    v3 ^= b; round(); round(); v0 ^= b; v2 ^= 0xff; round(); round(); round(); round();
    return v0 ^ v1 ^ v2 ^ v3;
}
void emit(const std::string& message) {  // one write per line: what was reported before a crash is kept
    char tag[17];
    std::snprintf(tag, sizeof tag, "%016llx", (unsigned long long)siphash(message));
    std::string line = std::string(tag) + " " + message + "\n";
    for (size_t off = 0; off < line.size();) {
        ssize_t w = ::write(3, line.data() + off, line.size() - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}
std::string clean(std::string s) {
    for (auto& c : s) if (c == '\n' || c == '\r') c = ' ';
    return s.size() > 300 ? s.substr(0, 300) : s;
}
void check(int i, bool ok) { emit(std::to_string(i) + (ok ? " P" : " F AssertionError: false")); }
void error(int i, const std::string& what) { emit(std::to_string(i) + " F " + clean(what)); }
}  // namespace rrtf_report
}  // namespace
#undef assert
#define assert(...) ((__VA_ARGS__) ? (void)0 : throw ::rrtf_report::AssertFail{#__VA_ARGS__})
"""
# Where the reporter finds the key: a hidden symbol of an object assembled per run (one-process builds), or the
# report socket, where the runner writes it before the program starts (`send_key`: the test's program then does not
# depend on the run and is compiled once per problem; no candidate code runs in it).
KEY_IN_OBJECT = """extern "C" __attribute__((visibility("hidden"))) const unsigned char rrtf_report_key[16];
namespace { inline void rrtf_load_key() {} }"""
KEY_FROM_SOCKET = """namespace {
unsigned char rrtf_report_key[16];
void rrtf_load_key() {  // once, before the first report: 32 hex digits and a newline
    static bool done = false;
    if (done) return;
    done = true;
    char hex[33];
    size_t got = 0;
    while (got < sizeof hex) {
        ssize_t k = ::read(3, hex + got, sizeof hex - got);
        if (k <= 0) return;  // no key: every line is rejected by the runner
        got += (size_t)k;
    }
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (int i = 0; i < 16; i++) rrtf_report_key[i] = (unsigned char)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
}
}"""


def reporter_with(key: str) -> str:
    return REPORTER.replace("/*RRTF_KEY*/", key)


# Single-unit fallback only: names the reporter uses, #undef'd after the candidate's code.
HARNESS_NAMES = ("check", "error", "emit", "clean", "siphash", "rotl", "round", "AssertFail", "rrtf_report", "true",
                 "false", "bool", "static_cast", "try", "catch", "throw", "std", "string", "to_string", "write",
                 "memcpy", "snprintf", "size", "data", "substr", "exception", "what", "int", "main", "return",
                 "void", "char", "const", "static", "namespace", "struct", "auto", "for", "if", "sizeof")


# --------------------------------------------------------------------------- the test main

def _guarded(i: int, code: str) -> str:
    return (f"try {{ {code} }}"
            f" catch (const ::rrtf_report::AssertFail& e__) {{ ::rrtf_report::error({i}, std::string(\"AssertionError: \") + e__.expr); }}"
            f" catch (const std::exception& e__) {{ ::rrtf_report::error({i}, std::string(\"exception: \") + e__.what()); }}"
            f" catch (...) {{ ::rrtf_report::error({i}, \"exception\"); }}")


def rewrite_test(test: str, reporter: str = reporter_with(KEY_IN_OBJECT)) -> tuple[str, int, list[str]]:
    """(new test source with the reporter inserted before main, number of cases, case names)."""
    m = MAIN_RE.search(test)
    if not m:
        raise PlanError("no `int main()` in the C++ test")
    body_open = m.end() - 1
    body_close = match_bracket(test, body_open)
    if body_close < 0:
        raise PlanError("unbalanced braces in the C++ test's main")
    body = strip_comments(test[body_open + 1: body_close])
    out: list[str] = []
    names: list[str] = []
    for stmt in split_statements(body):
        i = len(names)
        a = ASSERT_RE.match(stmt)
        close = match_bracket(stmt, a.end() - 1) if a else -1
        if a and close > 0 and stmt[close + 1:].strip() == ";":
            expr = stmt[a.end(): close]
            out.append(_guarded(i, f"::rrtf_report::check({i}, static_cast<bool>({expr}));"))
            names.append(f"case {i}: {_short(expr)}")
        elif HAS_ASSERT_RE.search(stmt):
            out.append(_guarded(i, f"{stmt}\n::rrtf_report::check({i}, true);"))
            names.append(f"case {i}: {_short(stmt)}")
        else:
            out.append(stmt)
    if not names:  # no assert at top level: the whole body is one case
        out, names = [_guarded(0, f"{body}\n::rrtf_report::check(0, true);")], ["main"]
    n = len(names)
    new_main = "\n".join(["int main() {", f'::rrtf_report::emit("BEGIN {n}");', *out, '::rrtf_report::emit("END");',
                          "return 0;", "}"])
    return test[: m.start()] + reporter + "\n" + new_main + test[body_close + 1:], n, names


def _short(expr: str, limit: int = 120) -> str:
    s = " ".join(expr.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def entry_declaration(prefix: str, entry: str) -> str | None:
    """The prompt with the entry point's definition turned into a declaration (everything before it,
    helpers included, kept): what the test's unit needs. None if the prompt does not define it."""
    if not re.fullmatch(r"[A-Za-z_]\w*", entry or ""):
        return None
    for m in reversed(code_matches(prefix, re.compile(rf"\b{entry}\s*\("))):
        close = match_bracket(prefix, m.end() - 1)
        rest = prefix[close + 1:] if close > 0 else ""
        brace = re.match(r"\s*(?:const\s*)?(?:noexcept\s*)?\{", rest)
        if brace:
            return prefix[: close + 1] + ";\n"
    return None


# --------------------------------------------------------------------------- building

def _compile(source: str, out: str, pch: Path | None) -> list[str]:
    include = ["-I.", f"-I{pch}", "-include", PCH_HEADER] if pch else ["-I."]
    return ["g++", *CXXFLAGS, "-pipe", *include, "-c", source, "-o", out]


def _libs(source: str) -> list[str]:
    return ["-lcrypto"] if "openssl/" in source else []


def build(problem: Problem, completion: str, isolation: str) -> Build:
    program = problem.program(completion)
    if problem.io_cases:  # a whole program per stdin/stdout case
        cmd = ["g++", *CXXFLAGS, "-pipe", *LINKER, "-I.", "-o", "prog", "main.cpp"] + _libs(program)
        return Build(units={"cand": {"main.cpp": program.encode(), **support_files()}},
                     steps=[["run", "cand", cmd, 0]], install=[["cand/prog", "prog", "exec"]], run_argv=["../bin/prog"])
    pch = usable_pch(isolation)
    sig, why = signature_or_reason(problem.code_prefix, problem.entry_point)
    if sig is not None:
        return _two_programs(problem, program, sig, pch, "" if pch else pch_text())
    b = _one_process(problem, program, pch, "" if pch else header_preamble())
    b.one_process = why  # never silent: the verdict's isolation reads "<level>+one-process"
    return b


def _two_programs(problem: Problem, program: str, sig: Signature, pch: Path | None, preamble: str) -> Build:
    """The candidate's program (its code and a dispatcher) and the test's (the test, the prompt's helpers, a stub):
    sandbox/compiled/cpp_pair.py. The test's program does not depend on the candidate nor on the run (the key comes
    on the report socket), so it is compiled and linked once per problem, kept, and reused for later samples."""
    test, _, names = rewrite_test(problem.test, reporter_with(KEY_FROM_SOCKET))
    test_source = preamble + test_prefix(problem.code_prefix, sig) + "\n" + test + "\n"
    cand_source = candidate_source(preamble, program, sig)
    cand_build = ["run", "cand", _compile_and_link("main.cpp", "cand", pch, _libs(cand_source)), 0]
    test_link = ["-s", *_libs(test_source)]  # stripped: a smaller cached program
    cache_key = hashlib.sha256(f"{CXXFLAGS}|{LINKER}|{test_link}|{pch}|{test_source}".encode()).hexdigest()
    cached = _TEST_PROGRAMS.get(cache_key)
    test_files = {"prog": cached} if cached else {"test.cpp": test_source.encode(), **support_files()}
    # Both programs compile at once, each as its own uid (neither can touch the other's files).
    steps = [cand_build] if cached else [["parallel", [cand_build,
                                                          ["run", "test", _compile_and_link("test.cpp", "prog", pch, test_link), 0]]],
                                         ["keep", "test/prog"]]
    return Build(
        units={"cand": {"main.cpp": cand_source.encode(), **support_files()}, "test": test_files}, steps=steps,
        install=[["test/prog", "prog", "exec", "run"], ["cand/cand", "cand", "exec", "cand"]],
        run_argv=["../bin/prog"], candidate_argv=["../bin/cand"], send_key=True, case_names=names,
        ro_binds=[str(pch)] if pch else [],
        on_kept=None if cached else (lambda kept: _TEST_PROGRAMS.put(cache_key, kept.get("test/prog"))))


def _compile_and_link(source: str, out: str, pch: Path | None, extra: list[str]) -> list[str]:
    include = ["-I.", f"-I{pch}", "-include", PCH_HEADER] if pch else ["-I."]
    return ["g++", *CXXFLAGS, "-pipe", *include, *LINKER, "-o", out, source, *extra]


def _one_process(problem: Problem, program: str, pch: Path | None, preamble: str) -> Build:
    """The candidate's code in the test's process (a signature outside the wire's codec): as a shared library
    exporting only the entry point, or, where the prompt does not declare it, in the test's own unit."""
    binds = [str(pch)] if pch else []
    declaration = entry_declaration(problem.code_prefix, problem.entry_point)
    if declaration is None:  # fallback: one unit (the candidate's macros can reach the test)
        undefs = "".join(f"#undef {name}\n" for name in HARNESS_NAMES)
        test, _, names = rewrite_test(problem.test, undefs + reporter_with(KEY_IN_OBJECT))
        source = preamble + program + "\n" + test + "\n"
        link = ["g++", *LINKER, "-o", "prog", "main.o", "key.o", *_libs(source)]
        return Build(units={"test": {"main.cpp": source.encode(), **support_files()}}, case_names=names,
                     steps=[["run", "test", ["as", "-o", "key.o", "key.s"], 0], ["run", "test", _compile("main.cpp", "main.o", pch), 0],
                            ["run", "test", link, 0]],
                     install=[["test/prog", "prog", "exec"]], run_argv=["../bin/prog"], key_file="test/key.s",
                     key_source=KEY_SOURCE, ro_binds=binds)
    test, _, names = rewrite_test(problem.test)
    test_source = preamble + declaration + test + "\n"
    cand_source = preamble + program + "\n"
    # The test's object depends on the problem only (the key is its own object): compiled once, by the
    # test's uid, kept before anything of the candidate runs, and reused for later samples.
    cache_key = hashlib.sha256(f"{CXXFLAGS}|{pch}|{test_source}".encode()).hexdigest()
    cached = _TEST_OBJECTS.get(cache_key)
    test_files = {"test.o": cached} if cached else {"test.cpp": test_source.encode(), **support_files()}
    cand_compile = ["run", "cand", _compile("main.cpp", "cand.o", pch), 0]
    # Both units compile at once, each as its own uid (neither can touch the other's files).
    compiles = [cand_compile] if cached else [["parallel", [cand_compile, ["run", "test", _compile("test.cpp", "test.o", pch), 0]]],
                                              ["keep", "test/test.o"]]
    shared = ["g++", "-shared", "-nodefaultlibs", *SHARED_LINKER, "-Wl,--version-script=exports.map", "-o", "libcand.so", "cand.o"]
    link = ["g++", *LINKER, "-o", "prog", "test.o", "key.o", "-L.", "-lcand", "-Wl,-rpath,$ORIGIN", "-Wl,--no-as-needed",
            "-lm", *_libs(cand_source + test_source)]
    return Build(
        units={"cand": {"main.cpp": cand_source.encode(), **support_files()}, "test": test_files},
        steps=[*compiles,
               ["exports", "cand", "cand.o", problem.entry_point, "exports.map"],
               ["run", "cand", shared, 0],
               ["move", "cand/libcand.so", "test/libcand.so"],
               ["run", "test", ["as", "-o", "key.o", "key.s"], 0],
               ["run", "test", link, 0]],
        install=[["test/prog", "prog", "exec"], ["test/libcand.so", "libcand.so", "read"]],
        run_argv=["../bin/prog"], case_names=names, key_file="test/key.s", key_source=KEY_SOURCE, ro_binds=binds,
        on_kept=None if cached else (lambda kept: _TEST_OBJECTS.put(cache_key, kept.get("test/test.o"))))


_TEST_OBJECTS = BytesCache(256)  # about 50 KB each: ~13 MB at most
_TEST_PROGRAMS = BytesCache(256)  # stripped test programs, tens of KB each


PROGRAM_NPROC = 32  # a C++ program needs no threads


def validate(problem: Problem) -> None:
    if not problem.io_cases:
        rewrite_test(problem.test)


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig) -> Verdict:
    b = build(problem, completion, Settings.from_config(config).isolation)
    b.memory_mb, b.nproc = config.memory_mb, PROGRAM_NPROC
    return compiled_judge(problem, completion, sample_index, config, b)
