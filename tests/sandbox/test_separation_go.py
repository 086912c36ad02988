"""Go in two programs (sandbox/compiled/go_pair.py, codec sandbox/compiled/codecs/wire*.go), for real: the
`go` toolchain, the real sandbox at its default isolation. The candidate's program holds no key and no test;
the test's program reaches it only through calls of plain data. Checked: the codec against the reference
grammar (sandbox/compiled/wire.py) in both directions, the attacks that one process allowed, hostile replies,
a candidate that dies mid-run, and the verdict's isolation label."""
from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
import sys

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig, Status
from sandbox.base.records import Problem
from sandbox.compiled import go_source, wire
from sandbox.compiled.wire import Char
from sandbox.languages import go

pytestmark = pytest.mark.skipif(not os.path.exists(go.GO), reason=f"{go.GO} not installed")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2, program_timeout_s=20.0, verdict_output_chars=8000)) as sb:
        yield sb


@pytest.fixture(scope="module")
def problems():
    return load_humanevalpack("go")


def whole(problem):
    return dataclasses.replace(problem, code_prefix="")


def judge(sandbox, samples):
    return sorted(sandbox.check_many(samples), key=lambda v: v.sample_index)


# --------------------------------------------------------------------------- the codec, both ways

PARAMS = [("a", "int"), ("b", "int8"), ("c", "int16"), ("d", "int32"), ("e", "int64"), ("f", "uint"), ("g", "uint8"),
          ("h", "uint16"), ("i", "uint32"), ("j", "uint64"), ("k", "float32"), ("l", "float64"), ("m", "bool"),
          ("n", "string"), ("o", "rune"), ("p", "[]int"), ("q", "[2]string"), ("r", "map[string][]float64"),
          ("s", "interface{}"), ("u", "[]interface{}"), ("v", "map[rune]int"), ("w", "[][]bool"),
          ("x", "map[interface{}]interface{}")]
ZERO = ["0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "false", '""', "0", "[]int{}", "[2]string{}",
        "map[string][]float64{}", "nil", "[]interface{}{}", "map[rune]int{}", "[][]bool{}", "map[interface{}]interface{}{}"]
ZERO_PY = [0, 0, 0, Char("\0"), 0, 0, 0, 0, 0, 0, 0.0, 0.0, False, "", Char("\0"), [], ["", ""], {}, None, [], {}, [], {}]
F32_MAX, F32_MIN = wire.float32(3.4028234663852886e38), wire.float32(1.401298464324817e-45)
DEEP = 60  # nested []interface{} in an interface{}: within DYNAMIC_DEPTH
NESTED: list = []
for _ in range(DEEP - 1):
    NESTED = [NESTED]
# (Go literal, the value wire.py reads) per parameter, per case: zeros, maxima, minima and special floats, nesting.
CASES = [
    list(zip(ZERO, ZERO_PY, strict=True)),
    [("math.MaxInt64", 2**63 - 1), ("127", 127), ("32767", 32767), ("math.MaxInt32", 2**31 - 1), ("math.MaxInt64", 2**63 - 1),
     ("math.MaxUint64", 2**64 - 1), ("255", 255), ("65535", 65535), ("math.MaxUint32", 2**32 - 1),
     ("math.MaxUint64", 2**64 - 1), ("math.MaxFloat32", F32_MAX), ("math.MaxFloat64", sys.float_info.max),
     ("true", True), ('"héllo ✓\\n\\"\\x00"', 'héllo ✓\n"\0'), ("'✓'", Char("✓")), ("[]int{-1, 0, 1}", [-1, 0, 1]),
     ('[2]string{"a", "ü"}', ["a", "ü"]), ('map[string][]float64{"x": {1.5, -2}, "": nil}', {"x": [1.5, -2.0], "": None}),
     ('[]string{"a", "b"}', ["a", "b"]),
     ('[]interface{}{1, "x", 2.5, true, nil, \'c\', []interface{}{}, map[string]int{"k": 1}, [][]int{{1}, {2, 3}}}',
      [1, "x", 2.5, True, None, Char("c"), [], {"k": 1}, [[1], [2, 3]]]),
     ("map[rune]int{'a': 2, 'é': -1}", {Char("a"): 2, Char("é"): -1}), ("[][]bool{{true}, {}, nil}", [[True], [], None]),
     ("map[interface{}]interface{}{\"p\": \"q\", 5: []int{1}, 'r': 2.5}", {"p": "q", 5: [1], Char("r"): 2.5})],
    [("math.MinInt64", -2**63), ("-128", -128), ("-32768", -32768), ("math.MinInt32", -2**31), ("math.MinInt64", -2**63),
     ("1", 1), ("1", 1), ("1", 1), ("1", 1), ("1", 1), ("math.SmallestNonzeroFloat32", F32_MIN),
     ("-math.SmallestNonzeroFloat64", -5e-324), ("false", False), ('"\\u00e9\\U0001F600"', "é😀"),
     ("0x10FFFF", Char(chr(0x10FFFF))), ("nil", None), ('[2]string{"x", "y"}', ["x", "y"]), ("nil", None),
     ("math.NaN()", math.nan), ("[]interface{}{math.Inf(1), math.Inf(-1), math.Copysign(0, -1)}", [math.inf, -math.inf, -0.0]),
     ("nil", None), ("nil", None), ("nil", None)],
    [*zip(ZERO[:18], ZERO_PY[:18], strict=True), ("[]interface{}{" * DEEP + "}" * DEEP, NESTED),
     *zip(ZERO[19:], ZERO_PY[19:], strict=True)],
]
SIGNATURE = ", ".join(f"{n} {t}" for n, t in PARAMS)
RESULTS = ", ".join(t for _, t in PARAMS)
ECHO_TEST = """func show(xs ...interface{}) string { // types and values, NaN and -0 included
    var b strings.Builder
    for _, x := range xs {
        fmt.Fprintf(&b, "%T=%#v;", x, x)
    }
    return b.String()
}

func pack(""" + SIGNATURE + """) string { // the arguments as typed as Echo's parameters
    return show(""" + ", ".join(n for n, _ in PARAMS) + """)
}

func TestEcho(t *testing.T) {
    assert := assert.New(t)
""" + "".join(f"    assert.Equal(pack({a}), show(Echo({a})))\n" for a in (", ".join(g for g, _ in case) for case in CASES)) + "}\n"
ECHO = Problem(task_id="Go/echo", language="go", entry_point="Echo", prompt=f"func Echo({SIGNATURE}) ({RESULTS}) {{\n",
               test=ECHO_TEST, test_setup_code='package main\n\nimport (\n    "fmt"\n    "math"\n    "strings"\n    "testing"\n'
                                                '    "github.com/stretchr/testify/assert"\n)\n')
ECHO = dataclasses.replace(ECHO, code_prefix=ECHO.prompt)
ECHO_BODY = f"    return {', '.join(n for n, _ in PARAMS)}\n}}\n"


def go_bytes(data: bytes) -> str:
    return '"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def raw_server(replies: list[bytes], signature: str, entry: str) -> str:
    """A whole-file candidate that answers fd 3 itself from init(): each call's frame is printed (base64), and
    answered with the next of `replies` (raw frames, hostile or not); then it waits for the test to end."""
    return f"""package main

import (
    "encoding/base64"
    "fmt"
    "os"
    "syscall"
)

var replies = []string{{{", ".join(go_bytes(r) for r in replies)}}}

func readFull(buf []byte) bool {{
    for got := 0; got < len(buf); {{
        n, err := syscall.Read(3, buf[got:])
        if n <= 0 || err != nil {{
            return false
        }}
        got += n
    }}
    return true
}}

func init() {{
    for _, reply := range replies {{
        n, b := 0, make([]byte, 1)
        for readFull(b) && b[0] != '\\n' {{
            n = n*10 + int(b[0]-'0')
        }}
        call := make([]byte, n)
        if !readFull(call) {{
            os.Exit(0)
        }}
        fmt.Printf("CALL %s\\n", base64.StdEncoding.EncodeToString(call))
        syscall.Write(3, []byte(reply))
    }}
    for b := make([]byte, 1); readFull(b); {{
    }}
    os.Exit(0)
}}

func {entry}({signature}) {{
    panic("never called")
}}
"""


def same(a, b) -> bool:
    """Equal values of the same Python types (Char is not str, NaN is NaN, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(any(same(k, k2) and same(v, b[k2]) for k2 in b) for k, v in a.items())
    return a == b


def test_the_codec_round_trips_every_type_family_and_matches_the_reference_grammar(sandbox):
    """Go -> Go (an echo: the test's encoder, the candidate's decoder and encoder, the test's decoder), and
    against wire.py: the calls the test's Go encoder wrote decode with wire.py to the expected values, and
    replies wire.py encoded decode in the test's typed decoder to the Go values (the test's own asserts)."""
    replies = [wire.frame(b"R" + wire.encode(tuple(py for _, py in case))) for case in CASES]
    raw = raw_server(replies, f"{SIGNATURE}) ({RESULTS}", "Echo")
    echo, reference = judge(sandbox, [(ECHO, ECHO_BODY, 0), (whole(ECHO), raw, 1)])
    for v in (echo, reference):
        assert v.status == Status.PASSED and v.total_tests == len(CASES), (v.reason, v.tests, v.stderr)
        assert v.isolation == "bwrap", v.isolation
    calls = re.findall(r"CALL (\S+)", reference.stdout)
    assert len(calls) == len(CASES), reference.stdout
    for call, case in zip(calls, CASES, strict=True):
        data = base64.b64decode(call)
        name, pos = wire.decode(data)
        args, pos = wire.decode(data, pos)
        assert name == "Echo" and pos == len(data)
        args[10] = wire.float32(args[10])  # a float32 crosses as its shortest decimal (9 digits at most)
        for (param, go_type), got, (_, want) in zip(PARAMS, args, case, strict=True):
            assert same(got, want), (param, go_type, got, want)


# --------------------------------------------------------------------------- attacks that one process allowed

LINKNAME = '''package main

import (
    "os"
    _ "unsafe"
)

//go:linkname emit main.rrtfEmit
var emit func(string)

//go:linkname key main.rrtfKey
func key() [16]byte

func HasCloseElements(numbers []float64, threshold float64) bool {
    _ = key()
    for i := 0; i < 64; i++ {
        emit(fmt.Sprintf("%d P", i))
    }
    emit("END")
    os.Exit(0)
    return false
}
'''
# Builds (it binds a runtime symbol that exists) and forges reports on every fd it has, with every key-like
# hex string found in its own memory, and tries every other process's memory too.
SCAN = '''package main

import (
    "bufio"
    "encoding/binary"
    "encoding/hex"
    "fmt"
    "math/bits"
    "os"
    "regexp"
    "strconv"
    "strings"
    _ "unsafe"
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

func sip(k []byte, m []byte) uint64 {
    k0, k1 := binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])
    v0, v1, v2, v3 := k0^0x736f6d6570736575, k1^0x646f72616e646f6d, k0^0x6c7967656e657261, k1^0x7465646279746573
    round := func() {
        v0 += v1; v1 = bits.RotateLeft64(v1, 13); v1 ^= v0; v0 = bits.RotateLeft64(v0, 32)
        v2 += v3; v3 = bits.RotateLeft64(v3, 16); v3 ^= v2
        v0 += v3; v3 = bits.RotateLeft64(v3, 21); v3 ^= v0
        v2 += v1; v1 = bits.RotateLeft64(v1, 17); v1 ^= v2; v2 = bits.RotateLeft64(v2, 32)
    }
    end := len(m) - len(m)%8
    for i := 0; i < end; i += 8 {
        w := binary.LittleEndian.Uint64(m[i:]); v3 ^= w; round(); round(); v0 ^= w
    }
    b := uint64(len(m)&0xff) << 56
    for j := 0; j < len(m)%8; j++ { b |= uint64(m[end+j]) << (8 * uint(j)) }
    v3 ^= b; round(); round(); v0 ^= b; v2 ^= 0xff; round(); round(); round(); round()
    return v0 ^ v1 ^ v2 ^ v3
}

func scan(pid string) (keys [][]byte, readable bool) {
    maps, err := os.Open("/proc/" + pid + "/maps")
    if err != nil { return nil, false }
    defer maps.Close()
    mem, err := os.Open("/proc/" + pid + "/mem")
    if err != nil { return nil, false }
    defer mem.Close()
    hexRe := regexp.MustCompile("[0-9a-f]{32}")
    s := bufio.NewScanner(maps)
    for s.Scan() {
        f := strings.Fields(s.Text())
        if len(f) < 2 || f[1][0] != 'r' { continue }
        r := strings.SplitN(f[0], "-", 2)
        lo, _ := strconv.ParseUint(r[0], 16, 64)
        hi, _ := strconv.ParseUint(r[1], 16, 64)
        if hi-lo > 64<<20 { continue }
        buf := make([]byte, hi-lo)
        if n, _ := mem.ReadAt(buf, int64(lo)); n > 0 {
            readable = true
            for _, m := range hexRe.FindAll(buf[:n], 2000) {
                if k, err := hex.DecodeString(string(m)); err == nil { keys = append(keys, k) }
            }
        }
    }
    return keys, readable
}

func HasCloseElements(numbers []float64, threshold float64) bool {
    _ = nanotime()
    keys, _ := scan("self")
    others := 0
    entries, _ := os.ReadDir("/proc")
    for _, e := range entries {
        if _, err := strconv.Atoi(e.Name()); err == nil && e.Name() != strconv.Itoa(os.Getpid()) {
            more, readable := scan(e.Name())
            keys = append(keys, more...)
            if readable { others++ }
        }
    }
    fmt.Printf("keys tried: %d, other processes readable: %d\\n", len(keys), others)
    for fd := uintptr(0); fd < 10; fd++ {
        f := os.NewFile(fd, "x")
        for _, k := range keys {
            for i := 0; i < 8; i++ {
                line := fmt.Sprintf("%d P", i)
                fmt.Fprintf(f, "%016x %s\\n", sip(k, []byte(line)), line)
            }
            fmt.Fprintf(f, "%016x END\\n", sip(k, []byte("END")))
        }
    }
    os.Exit(0)
    return false
}
'''
INIT_FORGERY = '''package main

import "syscall"

func init() { // fake reports on fd 3, then seven forged replies "true" ahead of any call
    syscall.Write(3, []byte("0000000000000000 0 P\\n0000000000000000 END\\n"))
    for i := 0; i < 7; i++ {
        syscall.Write(3, []byte("2\\nRT"))
    }
}

func HasCloseElements(numbers []float64, threshold float64) bool {
    return true
}
'''
EXIT_AT_ONCE = ('package main\n\nimport "os"\n\nfunc HasCloseElements(numbers []float64, threshold float64) bool {\n'
                '    os.Exit(0)\n    return false\n}\n')
# Go/12 returns interface{}: values whose type says "equal" to anything, and prints as the answer.
FORGED_EQUAL = '''package main

type forged string

func (forged) Equal(interface{}) bool { return true }
func (forged) String() string          { return "x" }

type box struct{ s string }

func (box) Equal(interface{}) bool { return true }
func (box) String() string          { return "x" }

func Longest(strings []string) interface{} {
    if len(strings) == 1 {
        return box{}
    }
    longest := ""
    for _, s := range strings {
        if len(s) > len(longest) { longest = s }
    }
    if len(strings) == 0 { return forged("") }
    return forged(longest)
}
'''


def test_attacks_that_one_process_allowed_do_not_pass(sandbox, problems, monkeypatch):
    """With the directive/unsafe refusal switched off (only go_source.refusal): binding the harness's emitter
    and key by linkname (7/7 passed in one process) finds no such symbols in the candidate's program; a
    memory scan finds no key (the key lives in the test's program: another uid, not dumpable); an init()
    writing reports and forged replies on fd 3 reaches only the test's calls, as answers; os.Exit(0) in the
    first call is a crash; a result type with its own Equal/String never reaches the test."""
    monkeypatch.setattr(go_source, "refusal", lambda program: "")
    p0, p12 = whole(problems[0]), whole(problems[12])
    samples = [(p0, LINKNAME, 0), (p0, SCAN, 1), (p0, INIT_FORGERY, 2), (p0, EXIT_AT_ONCE, 3), (p12, FORGED_EQUAL, 4)]
    linkname, scan, forged_init, exit_at_once, forged_equal = judge(sandbox, samples)
    for v in (linkname, scan, forged_init, exit_at_once, forged_equal):
        assert not v.passed and v.isolation == "bwrap", (v.sample_index, v.status, v.reason, v.isolation)
    assert linkname.status == Status.COMPILE_ERROR and "rrtf" in linkname.reason, linkname.reason  # no such symbol
    assert scan.passed_tests == 0, (scan.reason, scan.tests)
    assert "other processes readable: 0" in scan.stdout, scan.stdout
    assert forged_init.passed_tests < forged_init.total_tests, forged_init.tests  # "true" for every case
    assert exit_at_once.status == Status.RUNTIME_ERROR and exit_at_once.passed_tests == 0, exit_at_once
    assert exit_at_once.reason == "exited before the tests finished", exit_at_once
    assert forged_equal.passed_tests == 0, forged_equal.tests
    assert all("candidate raised" in t.error and ("would reach the test as a string" in t.error or "plain-data" in t.error)
               for t in forged_equal.tests), forged_equal.tests


# --------------------------------------------------------------------------- hostile replies, crashes

def test_malformed_oversized_and_wrong_typed_replies_fail_their_cases_only(sandbox, problems):
    """A candidate writing its own replies on fd 3: each bad one fails its case (with a reason) and the run
    goes on; a frame over REPLY_LIMIT is not read, and the calls after it fail too (the stream is out of step)."""
    p0, p12 = whole(problems[0]), whole(problems[12])
    bool_replies = [wire.frame(b"Rs3:abc"), wire.frame(b"R?"), wire.frame(b"E" + wire.encode("boom")),
                    wire.frame(b"Ri5;"), wire.frame(b"RTT"), wire.frame(b"RT"), b"%d\nRT" % (wire.REPLY_LIMIT + 1)]
    deep = b"l1:" * (wire.DYNAMIC_DEPTH + 5) + b"n"
    any_replies = [wire.frame(b"R" + deep), wire.frame(b"Ri" + b"9" * 50 + b";"), wire.frame(b"Rl999999999:")]
    sig0, sig12 = "numbers []float64, threshold float64) (bool", "strings []string) (interface{}"
    v0, v12 = judge(sandbox, [(p0, raw_server(bool_replies, sig0, "HasCloseElements"), 0),
                              (p12, raw_server(any_replies, sig12, "Longest"), 1)])
    errors = [t.error for t in v0.tests]
    assert v0.total_tests == 7 and v0.passed_tests == 1 and errors[5] == "", errors  # case 5 is answered true, rightly
    assert "malformed reply" in errors[0] and "expected a bool" in errors[0], errors
    assert "malformed reply" in errors[1] and "malformed reply" in errors[3] and "trailing" in errors[4], errors
    assert errors[2] == "candidate raised: boom", errors
    assert "over the limit" in errors[6], errors
    assert v0.status == Status.PARTIAL, (v0.status, v0.reason)
    assert [("nested too deeply" in e, "too long" in e, "beyond the frame" in e) for e in (t.error for t in v12.tests)] == [
        (True, False, False), (False, True, False), (False, False, True)], v12.tests


CRASHES = [  # Go/0's cases answer true, false, true, false, true, true, false
    # an unrecoverable panic (a goroutine's) at the third call: two cases passed, then the program is gone
    'package main\n\nvar calls int\n\nfunc HasCloseElements(numbers []float64, threshold float64) bool {\n'
    '    calls++\n    if calls == 3 {\n        done := make(chan bool)\n        go func() { panic("from a goroutine") }()\n'
    '        <-done\n    }\n    return calls == 1\n}\n',
    'package main\n\nimport "os"\n\nfunc HasCloseElements(numbers []float64, threshold float64) bool {\n    os.Exit(3)\n'
    '    return true\n}\n',
    # a recovered panic is one failed call, as in one process: each case fails with its message
    'package main\n\nfunc HasCloseElements(numbers []float64, threshold float64) bool {\n    return numbers[100] > threshold\n}\n',
]


def test_a_candidate_that_dies_mid_run_is_a_runtime_error_with_its_reason(sandbox, problems):
    """The test stops where the candidate's program ended, as a crash of the one program did: the runner's
    reason for that end is the verdict's and every remaining case's."""
    goroutine, exit3, panicked = judge(sandbox, [(whole(problems[0]), src, i) for i, src in enumerate(CRASHES)])
    assert goroutine.status == Status.PARTIAL and goroutine.reason == "exit status 2", goroutine
    assert goroutine.passed_tests == 2 and [t.error for t in goroutine.tests[2:]] == ["exit status 2"] * 5, goroutine.tests
    assert "from a goroutine" in goroutine.stderr and "candidate's program has ended" in goroutine.stderr, goroutine.stderr
    assert exit3.status == Status.RUNTIME_ERROR and exit3.reason == "exit status 3" and exit3.passed_tests == 0, exit3
    assert panicked.status == Status.RUNTIME_ERROR and panicked.passed_tests == 0, panicked
    assert all(t.error.startswith("candidate raised: runtime error: index out of range") for t in panicked.tests), panicked.tests


def test_isolation_label_separated_and_fallback(sandbox, problems):
    """HumanEvalPack Go problems are all separated; a signature the wire has no form for (a pointer) keeps the
    one-process build, labelled, and still judges right."""
    pointer = Problem(task_id="Go/pointer", language="go", entry_point="Inc", prompt="func Inc(x *int) int {\n",
                      code_prefix="func Inc(x *int) int {\n", test_setup_code=problems[13].test_setup_code,
                      test="func TestInc(t *testing.T) {\n    assert := assert.New(t)\n    x := 4\n    assert.Equal(5, Inc(&x))\n}\n")
    samples = [(problems[13], problems[13].canonical_solution, 0), (pointer, "    return *x + 1\n}\n", 1),
               (pointer, "    return *x\n}\n", 2)]
    separated, fallback, fallback_wrong = judge(sandbox, samples)
    assert separated.passed and separated.isolation == "bwrap", separated
    assert fallback.passed and fallback.isolation == "bwrap+one-process", fallback
    assert not fallback_wrong.passed and fallback_wrong.isolation == "bwrap+one-process", fallback_wrong
    for p in problems:  # every HumanEvalPack signature has a plain-data form (no fallback)
        go.test_program_files(p)
