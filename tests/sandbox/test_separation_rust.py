"""Rust in two programs (sandbox/compiled/rust_pair.py, codec sandbox/compiled/codecs/wire.rs), for real: rustc,
the real sandbox at its default isolation. The candidate's program holds no key and no test; the test's program
reaches it only through calls of plain data. Checked: the codec against the reference grammar
(sandbox/compiled/wire.py) in both directions, the attacks one process allowed, hostile replies, a candidate
that dies mid-run, and the verdict's isolation label. All samples go through one `check_many` (two workers)."""
from __future__ import annotations

import math
import os
import re

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Sandbox, SandboxConfig, Status
from sandbox.base.records import Problem
from sandbox.compiled import rust_pair, wire
from sandbox.compiled.wire import Char, Some
from sandbox.languages import rust

pytestmark = pytest.mark.skipif(not os.path.exists(rust.RUSTC), reason=f"{rust.RUSTC} not installed")

# --------------------------------------------------------------------------- the probe: every type family

PARAMS = [("a", "i8"), ("b", "i16"), ("c", "i32"), ("d", "i64"), ("e", "i128"), ("f", "isize"), ("g", "u8"), ("h", "u16"),
          ("i", "u32"), ("j", "u64"), ("k", "u128"), ("l", "usize"), ("m", "&f32"), ("n", "f64"), ("x1", "(f64,)"),
          ("o", "bool"), ("p", "char"), ("q", "String"), ("r", "&'a str"), ("s", "&[i32]"), ("t", "Vec<Vec<String>>"),
          ("u", "HashMap<String, Vec<u8>>"), ("v", "BTreeMap<char, Option<i64>>"), ("w", "Option<Option<bool>>"),
          ("x", "(i32, String)"), ("y", "&Vec<&'a str>"), ("z", "[u16; 3]"), ("hs", "HashSet<i32>"),
          ("bs", "BTreeSet<String>"), ("vd", "VecDeque<u8>"), ("bx", "Box<i64>"), ("un", "()")]
GROUPS = [6, 6, 3, 6, 6, 5]  # the result: the parameters' values, grouped in tuples of at most 12
F32 = wire.float32
SET0 = [-128, -32768, -2**31, -2**63, -2**127, -2**63, 0, 0, 0, 0, 0, 0, F32(1.5), 0.1, (-1e300,), True, Char("é"),
        "héllo wörld ✓", "", [], [[], ["a", ""]], {"k": [0, 255], "": []}, {Char("a"): Some(-1), Char("\U0010ffff"): None},
        Some(None), (7, "x\"\\"), ["ü", ""], [0, 65535, 1], [1, -1], ["b", "a"], [3], -5, None]
SET1 = [127, 32767, 2**31 - 1, 2**63 - 1, 2**127 - 1, 2**63 - 1, 255, 65535, 2**32 - 1, 2**64 - 1, 2**128 - 1, 2**64 - 1,
        math.inf, -0.0, (2.2250738585072014e-308,), False, Char("\0"), "", "tab\t\"q\"\n", [-2**31, 2**31 - 1], [],
        {}, {}, None, (-1, ""), [], [1, 2, 3], [], [], [], 2**63 - 1, None]
SET2 = [-1, 2, -3, 4, -5, 6, 7, 8, 9, 10, 11, 12, math.nan, -math.inf, (1e-7,), True, Char("\n"), "\x00日本", "😀",
        [0], [["x"]], {"z": []}, {Char("b"): Some(0)}, Some(Some(True)), (0, "0"), ["a"], [9, 9, 9], [0], ["c"], [255], 0, None]
SETS = [SET0, SET1, SET2]
TYPES = [rust_pair._type(rust_pair._Tokens(t)) for _, t in PARAMS]


def _rust_str(text: str) -> str:
    return '"' + "".join(c if c.isalnum() and c.isascii() else f"\\u{{{ord(c):x}}}" for c in text) + '"'


def lit(ty: rust_pair.Type, v) -> str:
    """A Rust expression of type `ty` for the Python value `v` (as wire.py holds it)."""
    if ty.kind == "ref":
        inner = ty.args[0]
        return _rust_str(v) if inner.kind == "path" and inner.last() == "str" else "&" + lit(inner, v)
    if ty.kind == "tuple":
        return "(" + "".join(lit(t, x) + ", " for t, x in zip(ty.args, v or (), strict=True)) + ")" if ty.args else "()"
    if ty.kind in ("slice", "array"):
        return "[" + ", ".join(lit(ty.args[0], x) for x in v) + "]"
    name, args = ty.last(), ty.args
    if name in rust_pair.INTS or name in ("f32", "f64"):
        text = str(v) if isinstance(v, int) else "nan" if math.isnan(v) else repr(v)
        return f'"{text}".parse::<{name}>().unwrap()'
    if name == "bool":
        return "true" if v else "false"
    if name == "char":
        return f"char::from_u32({ord(v)}).unwrap()"
    if name == "String":
        return f"String::from({_rust_str(v)})"
    if name == "Option":
        return "None" if v is None else f"Some({lit(args[0], v.value)})"
    if name == "Box":
        return f"Box::new({lit(args[0], v)})"
    if name in ("HashMap", "BTreeMap"):
        return "{ let mut m = <" + ty.render() + ">::new(); " + "".join(
            f"m.insert({lit(args[0], k)}, {lit(args[1], x)}); " for k, x in v.items()) + "m }"
    add = "push_back" if name == "VecDeque" else "push" if name == "Vec" else "insert"
    return "{ let mut c = <" + ty.render() + ">::new(); " + "".join(f"c.{add}({lit(args[0], x)}); " for x in v) + "c }"


def _owned(ty: rust_pair.Type) -> str:
    """The result's element for a parameter: what a `&` parameter refers to, owned (a `&str` stays)."""
    if ty.kind != "ref":
        return ty.render()
    inner = ty.args[0]
    if inner.kind == "path" and inner.last() == "str":
        return "&'a str"
    return f"Vec<{inner.args[0].render()}>" if inner.kind == "slice" else inner.render().replace("'static", "'a")


def _grouped(items: list) -> list:
    out, i = [], 0
    for n in GROUPS:
        out.append(items[i:i + n])
        i += n
    return out


RESULT = "(" + " ".join("(" + "".join(_owned(t) + ", " for t in g) + ")," for g in _grouped(TYPES)) + ")"
PROMPT = ("fn main(){}\n\nuse std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};\n\n"
          f"fn probe<'a>({', '.join(f'{n}: {t}' for n, t in PARAMS)}) -> {RESULT} {{\n")
ECHO = "    ((a, b, c, d, e, f), (g, h, i, j, k, l), (*m, n, x1), (o, p, q, r, s.to_vec(), t), (u, v, w, x, y.clone(), z),\n" \
       "     (hs, bs, vd, bx, un))\n}\n"
CALLS = [f"probe({', '.join(lit(t, x) for t, x in zip(TYPES, values, strict=True))})" for values in SETS]
EXPECTED = []
for values in SETS:
    groups = _grouped(list(zip(TYPES, values, strict=True)))
    EXPECTED.append("(" + " ".join("(" + "".join(lit(rust_pair._type(rust_pair._Tokens(_owned(t).replace("'a ", ""))), x)
                                                 + ", " for t, x in g) + ")," for g in groups) + ")")
N_BAD = 8  # hostile replies, one per case, after the three good ones (see RAW)
TEST = ("\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    fn check(k: usize) -> bool {\n"
        f"        let got = match k {{ 0 => {CALLS[0]}, 1 => {CALLS[1]}, _ => {CALLS[2]} }};\n"
        f"        let exp = match k {{ 0 => {EXPECTED[0]}, 1 => {EXPECTED[1]}, _ => {EXPECTED[2]} }};\n"
        # Floats by their Debug text: NaN is itself there, -0.0 is not 0.0.
        "        got.0 == exp.0 && got.1 == exp.1 && format!(\"{:?}\", got.2) == format!(\"{:?}\", exp.2) && got.3 == exp.3\n"
        "            && got.4 == exp.4 && got.5 == exp.5\n    }\n\n    #[test]\n    fn test_probe() {\n"
        "        assert!(check(0));\n        assert!(check(1));\n        assert!(check(2));\n"
        + "        assert!(check(0));\n" * (N_BAD + 1) + "        assert!(2 + 2 == 4);\n    }\n}\n")
PROBE = Problem(task_id="Rust/probe", prompt=PROMPT, code_prefix=PROMPT, entry_point="probe", test=TEST, language="rust")


def pyval(ty: rust_pair.Type, v):
    """What wire.py decodes for a value of `ty` (sets as sorted lists)."""
    if ty.kind == "ref":
        return pyval(ty.args[0], v)
    if ty.kind == "tuple":
        return tuple(pyval(t, x) for t, x in zip(ty.args, v, strict=True)) if ty.args else None
    name = ty.last() if ty.kind == "path" else ""
    if name in ("f32",):
        return F32(v)
    if name == "Option":
        return None if v is None else Some(pyval(ty.args[0], v.value))
    if name in ("HashMap", "BTreeMap"):
        return {pyval(ty.args[0], k): pyval(ty.args[1], x) for k, x in v.items()}
    if ty.kind in ("slice", "array") or name in ("Vec", "VecDeque", "HashSet", "BTreeSet"):
        items = [pyval(ty.args[0], x) for x in v]
        return sorted(items) if name in ("HashSet", "BTreeSet") else items
    return pyval(ty.args[0], v) if name == "Box" else v


def result_value(values: list) -> tuple:
    return tuple(tuple(pyval(t, x) for t, x in g) for g in _grouped(list(zip(TYPES, values, strict=True))))


def normalised(v):
    """Sets arrive in any order: the fifth group's first two items sorted."""
    groups = list(v)
    groups[5] = (sorted(groups[5][0]), sorted(groups[5][1]), *groups[5][2:])
    return tuple(groups)


def _bytes(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'


GOOD = [wire.frame(b"R" + wire.encode(result_value(s))) for s in SETS]
ENC0 = wire.encode(result_value(SET0))
BAD = [  # (reply, what the failed case says)
    (wire.frame(b"Rgarbage"), "bad reply from the candidate"),
    (wire.frame(b"R" + wire.encode("a string")), "expected a tuple"),
    (wire.frame(b"R" + ENC0.replace(b"i-128;", b"i300;", 1)), "does not fit i8"),
    (wire.frame(b"Rt999999:"), "length beyond the frame"),
    (wire.frame(b"R" + ENC0.replace(b"i-128;", b"i" + b"1" * 45 + b";", 1)), "number too long"),
    (wire.frame(b"R" + ENC0 + b"x"), "trailing bytes"),
    (wire.frame(b"E" + wire.encode("boom from the candidate")), "candidate raised: boom from the candidate"),
    (b"99999999\n", "over the limit"),  # > REPLY_LIMIT: the test reads no further
]
assert len(BAD) == N_BAD
# The candidate serves the calls itself on fd 3: the replies wire.py made, then hostile ones; it prints call 1's frame.
RAW = ("    rrtf_serve_raw();\n    unreachable!()\n}\nfn rrtf_serve_raw() {\n    use std::io::{Read, Write};\n"
       "    use std::os::unix::io::FromRawFd;\n    let mut f = unsafe { std::fs::File::from_raw_fd(3) };\n"
       f"    let replies: [&[u8]; {len(GOOD) + N_BAD}] = [{', '.join(_bytes(r) for r in GOOD + [b for b, _ in BAD])}];\n"
       "    for (k, reply) in replies.iter().enumerate() {\n        if k > 0 {\n"
       "            let (mut head, mut b) = (Vec::new(), [0u8; 1]);\n"
       "            loop { if f.read(&mut b).unwrap_or(0) == 0 { std::process::exit(0) } if b[0] == b'\\n' { break } head.push(b[0]); }\n"
       "            let mut data = vec![0u8; String::from_utf8(head).unwrap().parse().unwrap()];\n"
       "            f.read_exact(&mut data).unwrap();\n"
       "            if k == 1 { println!(\"CALL1 {}\", data.iter().map(|b| format!(\"{:02x}\", b)).collect::<String>()); }\n"
       "        }\n        f.write_all(reply).unwrap();\n    }\n"
       "    let mut rest = Vec::new();\n    let _ = f.read_to_end(&mut rest);\n    std::process::exit(0);\n}\n")
# The echo also prints its own encoding of set 0's result, once.
ECHO_PRINTING = ECHO.replace("    ((a,", "    let rrtf_r = ((a,").replace("un))\n}", "un));\n"
    "    static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);\n"
    "    if a == -128 && !ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {\n"
    "        let mut out = Vec::new();\n        ::rrtf_wire::Enc::enc(&rrtf_r, &mut out);\n"
    "        println!(\"RES0 {}\", out.iter().map(|b| format!(\"{:02x}\", b)).collect::<String>());\n    }\n    rrtf_r\n}")

# --------------------------------------------------------------------------- attacks on real problems

SIP = rust_pair.SIPHASH.split("    pub fn emit")[0]
# Rust/29 filter_by_prefix (compares Vec<String>s): each attack answers wrongly and tries to be judged passed anyway.
MEMORY_SCAN = ("    forge::run(); vec![]\n}\nmod forge {\n" + SIP + r"""
    fn scan(path: &str, keys: &mut Vec<[u8; 16]>) -> bool {  // 32 hex digits anywhere in readable memory: a key?
        use std::io::{Read, Seek, SeekFrom};
        let maps = match std::fs::read_to_string(format!("{}/maps", path)) { Ok(m) => m, Err(_) => return false };
        let mut mem = match std::fs::File::open(format!("{}/mem", path)) { Ok(f) => f, Err(_) => return false };
        for line in maps.lines() {
            let (range, perms) = (line.split(' ').next().unwrap(), line.split(' ').nth(1).unwrap_or(""));
            if !perms.starts_with('r') { continue; }
            let mut ends = range.split('-').map(|x| u64::from_str_radix(x, 16).unwrap_or(0));
            let (lo, hi) = (ends.next().unwrap(), ends.next().unwrap());
            let mut buf = vec![0u8; (hi - lo).min(64 << 20) as usize];
            if mem.seek(SeekFrom::Start(lo)).is_err() || mem.read_exact(&mut buf).is_err() { continue; }
            for w in buf.windows(32).filter(|w| w.iter().all(|c| c.is_ascii_hexdigit())).take(2000) {
                let mut k = [0u8; 16];
                for i in 0..16 { k[i] = u8::from_str_radix(std::str::from_utf8(&w[2 * i..2 * i + 2]).unwrap(), 16).unwrap(); }
                keys.push(k);
            }
        }
        true
    }
    pub fn run() {
        let mut keys = Vec::new();
        scan("/proc/self", &mut keys);
        let mut others = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().into_string().unwrap_or_default();
            if name.parse::<u32>().is_ok() && name != std::process::id().to_string()
                && scan(&format!("/proc/{}", name), &mut keys) { others += 1; }
        }
        let program = std::fs::read("../bin/prog").is_ok();
        println!("ATTACK keys={} others_readable={} test_program_readable={}", keys.len(), others, program);
        for k in keys.iter().take(2000) {  // forge a full pass under every candidate key, on every fd it has
            let mut lines = String::new();
            for m in (0..8).map(|i| format!("{} P", i)).chain(std::iter::once("END".to_string())) {
                lines += &format!("{:016x} {}\n", sip(k, m.as_bytes()), m);
            }
            for fd in 1..8 { unsafe { write(fd, lines.as_ptr(), lines.len()); } }
        }
    }
    extern "C" { fn write(fd: i32, buf: *const u8, n: usize) -> isize; }
}
""")
# A constructor in .init_array and #[no_mangle] C symbols: they run in, and replace symbols of, the candidate's own program.
CONSTRUCTOR = r"""    vec![]
}
#[used]
#[link_section = ".init_array"]
static RRTF_FORGE: extern "C" fn() = forge;
extern "C" fn forge() {
    let lines = b"0000000000000000 0 P\n0000000000000000 1 P\n0000000000000000 END\n";
    let reply = b"13\nRl1:s6:ab_cde";  // a reply written to fd 3 before any call
    for fd in 1..8 { unsafe { write(fd, lines.as_ptr(), lines.len()); } }
    unsafe { write(3, reply.as_ptr(), reply.len()); }
}
extern "C" { fn write(fd: i32, buf: *const u8, n: usize) -> isize; }
#[no_mangle]
pub extern "C" fn bcmp(_a: *const u8, _b: *const u8, _n: usize) -> i32 { 0 }
#[no_mangle]
pub extern "C" fn memcmp(_a: *const u8, _b: *const u8, _n: usize) -> i32 { 0 }
"""
# A type whose PartialEq is always true: the signature returns Vec<String>, so only a Vec<String> crosses.
LIAR = """    Liar.into()
}
struct Liar;
impl PartialEq for Liar { fn eq(&self, _: &Liar) -> bool { true } }
impl PartialEq<Vec<String>> for Liar { fn eq(&self, _: &Vec<String>) -> bool { true } }
impl From<Liar> for Vec<String> { fn from(_: Liar) -> Vec<String> { vec!["liar".to_string()] } }
"""
# Rust/53 add: the candidate's program ends or crashes in its first call.
EXIT0 = "    std::process::exit(0)\n}\n"
SEGV = "    unsafe { std::ptr::write_volatile(8 as *mut i32, x) };\n    x + y\n}\n"
PANIC = "    panic!(\"nope {}\", x)\n}\n"


@pytest.fixture(scope="module")
def verdicts():
    problems = load_humanevalpack("rust")
    p29, p53, p22 = problems[29], problems[53], problems[22]
    # Problems interleaved, so that a problem's test program is mostly compiled once and then reused.
    samples = {"echo": (PROBE, ECHO_PRINTING), "memory": (p29, MEMORY_SCAN), "exit0": (p53, EXIT0),
               "fallback": (p22, p22.canonical_solution), "constructor": (p29, CONSTRUCTOR), "segv": (p53, SEGV),
               "liar": (p29, LIAR), "panic": (p53, PANIC), "canonical": (p29, p29.canonical_solution), "raw": (PROBE, RAW)}
    refused = rust.REFUSED
    rust.REFUSED = re.compile(r"(?!)")  # the attacks use attributes the source check refuses: the separation alone holds
    try:
        # The probe's programs take ~7 s of CPU each to compile (32 parameter types): time for a loaded machine.
        config = SandboxConfig(workers=2, program_timeout_s=20.0, compile_timeout_s=120.0, verdict_output_chars=8000)
        with Sandbox(config) as sb:
            out = list(sb.check_many([(p, c, i) for i, (p, c) in enumerate(samples.values())]))
    finally:
        rust.REFUSED = refused
    by_index = {v.sample_index: v for v in out}
    return {name: by_index[i] for i, name in enumerate(samples)}


def test_every_type_family_round_trips_through_both_programs(verdicts):
    echo = verdicts["echo"]
    assert echo.status == Status.PASSED and echo.passed_tests == echo.total_tests == 4 + N_BAD + 1, echo
    assert echo.isolation == "bwrap", echo.isolation
    # The candidate's encoder against wire.py: its bytes decode to set 0's result.
    (hexed,) = re.findall(r"RES0 ([0-9a-f]+)", echo.stdout)
    assert normalised(wire.decode_all(bytes.fromhex(hexed))) == normalised(result_value(SET0))


def test_replies_made_by_wire_py_decode_and_hostile_replies_fail_only_their_case(verdicts):
    raw = verdicts["raw"]
    errors = [t.error for t in raw.tests]
    assert [t.passed for t in raw.tests] == [True] * 3 + [False] * (N_BAD + 1) + [True], errors
    for (_, said), error in zip(BAD, errors[3:], strict=False):
        assert said in error, (said, error)
    assert "unreadable" in errors[3 + N_BAD], errors
    assert raw.status == Status.PARTIAL, raw
    # The test's encoder against wire.py: call 1's frame holds the name and set 1's arguments.
    (hexed,) = re.findall(r"CALL1 ([0-9a-f]+)", raw.stdout)
    data = bytes.fromhex(hexed)
    name, pos = wire.decode(data)
    args = wire.decode_all(data[pos:])
    want = [pyval(t, x) for t, x in zip(TYPES, SET1, strict=True)]
    assert name == "probe" and len(args) == len(want)
    assert [sorted(a) if i in (27, 28) else a for i, a in enumerate(args)] == want
    assert math.copysign(1, args[13]) == -1 and args[12] == math.inf  # -0.0 and inf kept


def test_attacks_one_process_allowed_are_not_passed(verdicts):
    for name in ("memory", "constructor", "liar"):
        v = verdicts[name]
        assert not v.passed and v.status != Status.COMPILE_ERROR, (name, v.status, v.reason, v.stderr)
    scan = re.search(r"ATTACK keys=(\d+) others_readable=(\d+) test_program_readable=(\w+)", verdicts["memory"].stdout)
    assert scan and scan.group(2) == "0" and scan.group(3) == "false", verdicts["memory"].stdout[:500]
    assert verdicts["canonical"].passed and verdicts["canonical"].isolation == "bwrap", verdicts["canonical"]


def test_a_candidate_that_exits_crashes_or_panics_fails_with_a_reason(verdicts):
    exit0, segv, panic = verdicts["exit0"], verdicts["segv"], verdicts["panic"]
    assert exit0.status == Status.RUNTIME_ERROR and exit0.reason == "exited before the tests finished", exit0
    assert "the test stopped: the candidate's program ended" in exit0.stderr, exit0.stderr
    assert segv.status == Status.RUNTIME_ERROR and segv.reason == "crashed (SIGSEGV)", segv
    assert "the test stopped: the candidate's program ended" in segv.stderr, segv.stderr
    assert panic.status == Status.RUNTIME_ERROR and panic.reason.startswith("candidate raised: nope"), panic
    assert all(t.error.startswith("candidate raised: nope") for t in panic.tests), panic.tests


def test_a_signature_outside_the_codec_keeps_one_process_and_says_so(verdicts):
    fallback = verdicts["fallback"]
    assert fallback.isolation == "bwrap+one-process", fallback.isolation
    assert fallback.passed, fallback
    plans = [rust.pair(p) for p in load_humanevalpack("rust")]
    assert [p.one_process != "" for p in plans].count(True) == 2  # Rust/22 and Rust/137: `dyn Any` values
