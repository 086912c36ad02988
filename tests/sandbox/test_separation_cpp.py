"""C++ judged as two programs (sandbox/compiled/cpp_pair.py, codec sandbox/compiled/codecs/wire.hpp): real g++,
the real sandbox, default isolation. The candidate's program holds no key and no test; the test's program reaches it
only through calls of plain data. Checked here: the codec against the reference (sandbox/compiled/wire.py) in both
directions, attacks that the old one-process build had to defend one by one, hostile replies, a candidate that dies,
and the verdict's isolation label.
"""
from __future__ import annotations

import math
import shutil

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Problem, Sandbox, SandboxConfig, Status
from sandbox.compiled import wire
from sandbox.compiled.cpp_pair import find_signature, outside_codec

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2, timeout_s=5.0, program_timeout_s=10.0)) as sb:
        yield sb


def problem(task_id: str, prefix: str, entry: str, asserts: str, helpers: str = "") -> Problem:
    test = f"#undef NDEBUG\n#include<assert.h>\n{helpers}\nint main(){{\n{asserts}}}\n"
    return Problem(task_id=task_id, prompt=prefix, code_prefix=prefix, entry_point=entry, language="cpp", test=test)


def literal(data: bytes) -> str:
    """A C++ string literal of exactly these bytes (octal escapes: never merge with the next character)."""
    return '"' + "".join(f"\\{b:03o}" for b in data) + '"'


def cstr(data: bytes) -> str:
    return f"std::string({literal(data)}, {len(data)})"


def outcomes(verdict) -> list[bool]:
    return [t.passed for t in verdict.tests]


def hex_lines(stdout: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in stdout.split() if line and all(c in "0123456789abcdef" for c in line)]


# ------------------------------------------------------------------------------------ (i) the codec, both ways
TYPES = ("int, long long, unsigned long long, short, float, double, bool, char, string, vector<int>, map<string,int>, "
         "pair<int,string>, optional<int>, vector<vector<string>>")
ECHO_PREFIX = f"#include<string>\n#include<vector>\n#include<map>\n#include<tuple>\n#include<optional>\nusing namespace std;\n" \
              f"tuple<{TYPES}> echo(tuple<{TYPES}> x){{\n"
TEXT = "héllo ✓\n\x00x".encode()
KEY = "ké".encode()
F32_MIN_DENORMAL = wire.float32(1e-45)
# The values (Python, wire.py's reading) and the same values written in C++.
VALUES = [
    ((-2**31, -2**63, 2**64 - 1, -2**15, -0.0, -0.0, False, wire.Char("\x00"), TEXT.decode(), [], {}, (-1, ""), None, []),
     f"T{{INT_MIN, LLONG_MIN, ULLONG_MAX, SHRT_MIN, -0.0f, -0.0, false, '\\0', {cstr(TEXT)}, {{}}, {{}}, {{-1, \"\"}}, nullopt, {{}}}}"),
    ((2**31 - 1, 2**63 - 1, 0, 2**15 - 1, wire.float32(3.4028234663852886e38), 1.7976931348623157e308, True, wire.Char("\xff"),
      "", [-2**31, 0, 2**31 - 1], {"": -1, KEY.decode(): 2}, (7, "3:ab"), wire.Some(42), [[], ["", "x"]]),
     f"T{{INT_MAX, LLONG_MAX, 0, SHRT_MAX, FLT_MAX, DBL_MAX, true, '\\377', \"\", {{INT_MIN, 0, INT_MAX}}, "
     f"{{{{\"\", -1}}, {{{cstr(KEY)}, 2}}}}, {{7, \"3:ab\"}}, 42, {{{{}}, {{\"\", \"x\"}}}}}}"),
    ((-1, -1, 1, 0, F32_MIN_DENORMAL, 5e-324, False, wire.Char("a"), "a", [5], {"z": 0}, (0, "\n"), wire.Some(0), [["q"]]),
     "T{-1, -1, 1, 0, 1e-45f, 5e-324, false, 'a', \"a\", {5}, {{\"z\", 0}}, {0, \"\\n\"}, 0, {{\"q\"}}}"),
    ((0, 0, 0, 0, math.inf, -math.inf, True, wire.Char(" "), "", [], {}, (0, ""), None, [[]]),
     "T{0, 0, 0, 0, INFINITY, -INFINITY, true, ' ', \"\", {}, {}, {0, \"\"}, nullopt, {{}}}"),
    ((0, 0, 0, 0, math.nan, math.nan, True, wire.Char("b"), "", [], {}, (0, ""), None, []),
     "T{0, 0, 0, 0, NAN, NAN, true, 'b', \"\", {}, {}, {0, \"\"}, nullopt, {}}"),
]
ECHO_HELPERS = f"#include<climits>\n#include<cfloat>\n#include<cmath>\nusing T = tuple<{TYPES}>;\n" + "".join(
    f"T v{k}() {{ return {cpp}; }}\n" for k, (_, cpp) in enumerate(VALUES))
ECHO_ASSERTS = (
    "    assert (echo(v0()) == v0());\n"
    "    { T r = echo(v0()); assert (signbit(get<4>(r)) && signbit(get<5>(r))); }\n"
    "    assert (echo(v1()) == v1());\n"
    "    assert (echo(v2()) == v2());\n"
    "    assert (echo(v3()) == v3());\n"
    "    { T r = echo(v4()); assert (isnan(get<4>(r)) && isnan(get<5>(r)) && get<7>(r) == 'b'); }\n")
CALLED = [0, 0, 1, 2, 3, 4]  # which value each call carries
ECHO = problem("CPP/echo", ECHO_PREFIX, "echo", ECHO_ASSERTS, ECHO_HELPERS)
# The real dispatcher, and what the candidate's side encodes (printed, then read with wire.py).
ECHO_CANDIDATE = ("    std::string r = ::rrtf_wire::reply(x);\n    for (unsigned char c : r) printf(\"%02x\", c);\n"
                  "    printf(\"\\n\");\n    return x;\n}\n")


def raw_server(replies: list[bytes]) -> str:
    """A candidate that answers fd 3 itself, before the dispatcher starts: prints each call's payload (hex) and
    writes the given bytes as its reply; after the last one, exits."""
    table = ", ".join(literal(r) for r in replies)
    sizes = ", ".join(str(len(r)) for r in replies)
    return f"""    return {{}};
}}
#include <cstdio>
#include <unistd.h>
static const char* const rrtf_replies[] = {{{table}}};
static const unsigned long rrtf_sizes[] = {{{sizes}}};
__attribute__((constructor)) static void rrtf_raw_server() {{
    std::string call;
    for (unsigned i = 0; i < sizeof rrtf_sizes / sizeof rrtf_sizes[0]; i++) {{
        bool got = false;
        try {{ got = ::rrtf_wire::read_frame(3, 1 << 26, call); }} catch (...) {{}}
        if (!got) break;
        for (unsigned char c : call) printf("%02x", c);
        printf("\\n");
        ::rrtf_wire::write_all(3, std::string(rrtf_replies[i], rrtf_sizes[i]));
    }}
    fflush(stdout);
    _exit(0);
}}
"""


def same(a, b, float_slot: bool = False) -> bool:
    """Equal as wire values: floats by bits (NaN equals NaN, -0.0 is not 0.0), a C++ float read at float precision."""
    if isinstance(a, float) and isinstance(b, float):
        a, b = (wire.float32(a), wire.float32(b)) if float_slot else (a, b)
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def same_tuple(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(same(x, y, float_slot=(i == 4)) for i, (x, y) in enumerate(zip(a, b, strict=True)))


def test_codec_round_trip_against_the_reference(sandbox):
    raw = raw_server([wire.frame(b"R" + wire.encode(VALUES[k][0])) for k in CALLED])
    echo, served = sorted(sandbox.check_many([(ECHO, ECHO_CANDIDATE, 0), (ECHO, raw, 1)]), key=lambda v: v.sample_index)
    # C++ to C++ through the real dispatcher: every edge value comes back exactly.
    assert echo.status == Status.PASSED and echo.isolation == "bwrap", echo
    # The candidate's encoder, read with wire.py.
    replies = hex_lines(echo.stdout)
    assert len(replies) == len(CALLED), echo.stdout
    for k, payload in zip(CALLED, replies, strict=True):
        assert payload[:1] == b"R" and same_tuple(wire.decode_all(payload[1:]), VALUES[k][0]), (k, payload)
    # wire.py's encoding, read by the test's decoder (the cases pass), and the test's encoder, read with wire.py.
    assert served.status == Status.PASSED, served
    calls = hex_lines(served.stdout)
    assert len(calls) == len(CALLED), served.stdout
    for k, payload in zip(CALLED, calls, strict=True):
        name, pos = wire.decode(payload)  # a call is two values: the name, then the arguments' list
        args, pos = wire.decode(payload, pos)
        assert pos == len(payload), payload
        assert name == "echo" and len(args) == 1 and same_tuple(args[0], VALUES[k][0]), (k, payload)


def test_signatures_of_every_codec_family_are_recognised():
    sig = find_signature(ECHO_PREFIX, "echo")
    assert sig is not None and sig.name == "echo" and len(sig.params) == 1 and not outside_codec(sig)
    for ok in ("int f(const vector<int>& v, unsigned long n){", "void f(std::map<std::string, std::optional<double>> m){",
               "set<long long> f(deque<char> d, list<bool> l, unordered_map<int,int> u){"):
        assert not outside_codec(find_signature("using namespace std;\n" + ok, "f")), ok
    for bad in ("int f(vector<int>& v){", "int* f(int n){", "long double f(int n){", "int f(list_any v){",
                "boost::any f(boost::any a){"):
        assert outside_codec(find_signature("using namespace std;\n" + bad, "f")), bad


# ------------------------------------------------------------------------------------ (ii) attacks
EVEN_PREFIX = "#include<stdio.h>\n#include<string>\n#include<vector>\nusing namespace std;\nbool is_even(int n){\n"
EVENS_PREFIX = "#include<vector>\nusing namespace std;\nvector<int> evens(int n){\n"
EVENS = problem("CPP/evens", EVENS_PREFIX, "evens", "    assert (evens(5) == vector<int>{0, 2, 4});\n"
                "    assert (evens(1) == vector<int>{0});\n")
REV_PREFIX = "#include<string>\n#include<cmath>\nusing namespace std;\nstring rev(string s){\n"
REV = problem("CPP/rev", REV_PREFIX, "rev", '    assert (rev("ab") == "ba");\n    assert (abs(-2) == 2 && rev("abc") == "cba");\n')
FORGE_EVERYWHERE = r"""
void rrtf_forge(const std::vector<std::string>& tokens) {  // every token as a tag, on every fd, never blocking
    std::string all;
    for (const auto& t : tokens) {
        all += t + " BEGIN 3\n";
        for (int i = 0; i < 3; i++) all += t + " " + std::to_string(i) + " P\n";
        all += t + " END\n";
        if (all.size() > 16000) break;
    }
    all += "4\nRT;\n6\nRi1;\n";
    for (int fd = 0; fd < 64; fd++) ::send(fd, all.data(), all.size(), MSG_DONTWAIT | MSG_NOSIGNAL),
        (void)::write(fd == 3 ? -1 : fd, all.data(), all.size());
}
"""
MEMORY_HUNT = r"""
std::vector<std::string> rrtf_hunt() {  // 32-hex tokens in this process's memory and every other it can read
    std::vector<std::string> found;
    std::set<std::string> seen;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        std::string pid = e.path().filename().string();
        if (!isdigit(pid[0]) && pid != "self") continue;
        std::ifstream maps("/proc/" + pid + "/maps");
        int mem = open(("/proc/" + pid + "/mem").c_str(), O_RDONLY);
        std::string line;
        while (mem >= 0 && std::getline(maps, line)) {
            unsigned long a, b;
            char perms[8];
            if (sscanf(line.c_str(), "%lx-%lx %7s", &a, &b, perms) != 3 || perms[0] != 'r' || b - a > (64ul << 20)) continue;
            std::string buf(b - a, '\0');
            ssize_t n = pread(mem, &buf[0], b - a, (off_t)a);
            for (ssize_t i = 0, run = 0; i < n; i++) {
                char c = buf[i];
                run = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ? run + 1 : 0;
                if (run >= 32 && found.size() < 200 && seen.insert(buf.substr(i - 31, 32)).second) found.push_back(buf.substr(i - 31, 32));
            }
        }
        if (mem >= 0) close(mem);
    }
    return found;
}
"""
HUNT_HEADERS = ("#include <filesystem>\n#include <fstream>\n#include <set>\n#include <string>\n#include <vector>\n"
                "#include <fcntl.h>\n#include <sys/socket.h>\n#include <unistd.h>\n")
# is_even, with the headers the attacks need (the prompt is the problem's: it reaches the test's program too)
HUNT_PROBLEM = problem("CPP/even", HUNT_HEADERS + EVEN_PREFIX, "is_even",
                       "    assert (is_even(2) == true);\n    assert (is_even(3) == false);\n    assert (is_even(10));\n")
ATTACKS = {
    "scans its own memory for the key and forges reports": (
        HUNT_PROBLEM, "    std::vector<std::string> rrtf_hunt();\n    void rrtf_forge(const std::vector<std::string>&);\n"
                      "    std::vector<std::string> t = rrtf_hunt();\n    printf(\"tokens tried: %d\\n\", (int)t.size());\n"
                      "    fflush(stdout);\n    rrtf_forge(t);\n    _exit(0);\n}\n" + MEMORY_HUNT + FORGE_EVERYWHERE),
    "operator== for the returned vector always true": (
        EVENS, "    return {};\n}\nbool operator==(const vector<int>&, const vector<int>&) { return true; }\n"
               "namespace std { template<> bool operator==(const vector<int>&, const vector<int>&) { return true; } }\n"),
    "constructor that writes fake reports": (
        HUNT_PROBLEM, "    return false;\n}\n" + FORGE_EVERYWHERE
        + "__attribute__((constructor(101))) static void rrtf_early() { rrtf_forge({\"0000000000000000\", \"\"}); }\n"),
    "#define assert and redefines std functions the test uses": (
        REV, "    return s;\n}\n#define assert(...) ((void)0)\n#define abs(x) 2\n"
             "extern \"C\" int memcmp(const void*, const void*, size_t) { return 0; }\n"
             "template<> bool std::operator==<char, std::char_traits<char>, std::allocator<char>>(\n"
             "    const std::string&, const char*) { return true; }\n"),
    "writes a forged reply and reports on fd 3": (
        HUNT_PROBLEM, "    static const char forged[] = \"2\\nRT5\\nRi1;\\n2\\nRT0123456789abcdef 0 P\\nEND\\n\";\n"
                      "    (void)::write(3, forged, sizeof forged - 1);\n    return n == 3;\n}\n"),
    "exit(0) in the first call": (HUNT_PROBLEM, "    exit(0);\n}\n"),
}
RIGHT = {"CPP/even": "    return n % 2 == 0;\n}\n", "CPP/evens": "    vector<int> v;\n    for (int i = 0; i < n; i += 2) v.push_back(i);\n"
         "    return v;\n}\n", "CPP/rev": "    return string(s.rbegin(), s.rend());\n}\n"}


def test_attacks_on_the_test_process_are_not_passed(sandbox):
    jobs = [(p, c, i) for i, (p, c) in enumerate(ATTACKS.values())]
    jobs += [(p, RIGHT[p.task_id], len(jobs) + i) for i, p in enumerate((EVENS, REV, HUNT_PROBLEM))]
    verdicts = {v.sample_index: v for v in sandbox.check_many(jobs)}
    for i, name in enumerate(ATTACKS):
        v = verdicts[i]
        assert v.status != Status.PASSED and v.passed_tests < v.total_tests, (name, v)
        assert v.isolation == "bwrap", (name, v.isolation)
    assert "tokens tried" in verdicts[0].stdout, verdicts[0]  # the hunt ran to the end
    assert verdicts[len(ATTACKS) - 1].status == Status.RUNTIME_ERROR, verdicts[len(ATTACKS) - 1]  # exit(0)
    for i in range(len(ATTACKS), len(jobs)):
        assert verdicts[i].status == Status.PASSED, verdicts[i]  # the same problems, answered right


# ------------------------------------------------------------------------------------ (iii) hostile replies, (iv) deaths
ID_PREFIX = "#include<string>\nusing namespace std;\nint id(int k){\n"
ID = problem("CPP/id", ID_PREFIX, "id", "".join(f"    assert (id({k}) == {k});\n" for k in range(10)))
HOSTILE = [  # (reply bytes, what the failed case says)
    (wire.frame(b"Ri0;"), ""),
    (wire.frame(b"RT"), "expected tag 'i'"),
    (wire.frame(b"Ri2147483648;"), "integer out of range"),
    (wire.frame(b"Ri" + b"0" * 50 + b"3;"), "number too long"),
    (wire.frame(b"Ri4"), "number too long or unterminated"),
    (wire.frame(b"Ri5;x"), "trailing bytes"),
    (wire.frame(b"E" + wire.encode("boom")), "candidate raised: boom"),
    (b"9999999999\n", "over the limit"),
    (b"x", "malformed frame header"),  # then the candidate exits: the test's program ends, case 9 unreported
]


def test_hostile_replies_and_dying_candidates_fail_their_cases_only(sandbox):
    hostile = raw_server([r for r, _ in HOSTILE])
    jobs = [(ID, hostile, 0),
            (ID, "    if (k == 0) { volatile int* p = nullptr; *p = 1; }\n    return k;\n}\n", 1),
            (ID, "    if (k == 2) exit(3);\n    return k;\n}\n", 2),
            (ID, "    return k;\n}\n", 3)]
    verdicts = {v.sample_index: v for v in sandbox.check_many(jobs)}
    v = verdicts[0]
    assert v.status == Status.PARTIAL and v.passed_tests == 1 and v.tests[0].passed, v
    for test, (_, says) in zip(v.tests[1:], HOSTILE[1:], strict=False):
        assert not test.passed and says in test.error, (test, says)
    assert v.tests[-1].error == "exited before the tests finished", v.tests[-1]
    # The test's program ends with the candidate's, reporting nothing more: the run's reason is the candidate's end.
    # GENERIC: when the candidate died first, sandbox/worker/runner.py does not reap it before reporting (its wait loop
    # ends on the closed pipes without `end_everything`, and run_harness drops the status of its own waitpid), so the
    # reason is the generic one until that is fixed there.
    generic = "exited before the tests finished"
    crash = verdicts[1]
    assert crash.status == Status.RUNTIME_ERROR and crash.passed_tests == 0, crash
    assert "SIGSEGV" in crash.reason or crash.reason == generic, crash
    assert all(t.error == crash.tests[0].error for t in crash.tests), crash
    exited = verdicts[2]
    assert exited.status == Status.PARTIAL and exited.passed_tests == 2 and outcomes(exited)[:3] == [True, True, False], exited
    assert "exit status 3" in exited.reason or exited.reason == generic, exited
    assert verdicts[3].status == Status.PASSED, verdicts[3]


# ------------------------------------------------------------------------------------ (v) the isolation label
def test_isolation_label_says_which_runs_keep_one_process(sandbox):
    pack = {p.task_id: p for p in load_humanevalpack("cpp")}
    separated, fallback = pack["CPP/53"], pack["CPP/137"]  # int add(int, int); boost::any compare_one(boost::any, ...)
    verdicts = {v.sample_index: v for v in sandbox.check_many([(separated, separated.canonical_solution, 0),
                                                                (fallback, fallback.canonical_solution, 1)])}
    assert verdicts[0].status == Status.PASSED and verdicts[0].isolation == "bwrap", verdicts[0]
    assert verdicts[1].isolation == "bwrap+one-process", verdicts[1]
    assert verdicts[1].status == Status.PASSED, verdicts[1]
