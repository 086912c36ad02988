"""JavaScript's candidate in a node process of its own (issue 17, sandbox/compiled/js_pair.py), through real
runs of the sandbox (default isolation): the codec against sandbox/compiled/wire.py in both directions, the
attacks that passed while the candidate shared the test's process, replies a candidate forges on its socket,
a candidate that crashes, exits or loops, and the verdict's isolation label. One batch of runs for most of it."""
from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Problem, Sandbox, SandboxConfig, Status
from sandbox.compiled import wire
from sandbox.compiled.js_pair import LIMITS, WIRE_JS, called_names, split_prompt
from sandbox.languages import js

pytestmark = pytest.mark.skipif(not os.path.exists(js.NODE), reason=f"{js.NODE} not installed")

# ------------------------------------------------------------------ values, in Python and as JavaScript source


def nested(n: int) -> list:
    value: list = []
    for _ in range(n):
        value = [value]
    return value


VALUES = [None, wire.UNDEFINED, True, False, 0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
          -0.1, 1e21, 1.2345678901234568e20, 1e-7, 2.0 ** 53 + 2, -1.5, 2 ** 127, -(2 ** 127), 0, 10 ** 39, -9 * 10 ** 38,
          "", "héllo ☃ 😀", "\0\n\"'\\", "x" * 100, [], [[], [[]]], [1.5, "x", None, True, wire.UNDEFINED], {},
          {"a": [1.0, {"b": None}], "ключ": "значение", "": 0.0}, {"__proto__": 1.0}, nested(50)]


def js_source(v) -> str:
    """A JavaScript expression for a Python value (ints are bigints: the wire's `i`)."""
    if v is None:
        return "null"
    if v is wire.UNDEFINED:
        return "undefined"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}n"
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity") if math.isinf(v) else (
            "-0" if v == 0 and math.copysign(1, v) < 0 else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(js_source, v)) + "]"
    # fromEntries: a "__proto__" key is an own property, as the wire's `m` makes it
    return "Object.fromEntries([" + ", ".join(f"[{json.dumps(k)}, {js_source(x)}]" for k, x in v.items()) + "])"


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


SAME_JS = """  const same = (a, b) => {
    if (typeof a !== typeof b) return false;
    if (typeof a === 'number') return Object.is(a, b);
    if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
    if (a && typeof a === 'object') {
      const ka = Object.keys(a), kb = Object.keys(b);
      return Object.getPrototypeOf(a) === Object.prototype
        && ka.length === kb.length && ka.every((k, i) => k === kb[i] && same(a[k], b[k]));
    }
    return a === b;
  };
"""


def problem(name: str, entry: str, statements: list[str], setup: str = "", prompt: str | None = None) -> Problem:
    body = "".join(f"  {s}\n" for s in statements)
    prompt = f"const {entry} = (x) => {{\n" if prompt is None else prompt
    return Problem(task_id=f"JavaScript/sep-{name}", prompt=prompt, code_prefix=prompt, entry_point=entry, language="js",
                   test=f"const testIt = () => {{\n{setup}{body}}}\n\ntestIt()\n")


def replace_replies(frames: dict[int, bytes]) -> str:
    """Candidate code that makes its own dispatcher's reply to call k the bytes frames[k] (fd 3 is its socket)."""
    table = json.dumps({k: v.hex() for k, v in frames.items()})
    return (f"const __fs = require('fs'), __write = __fs.writeSync, __forged = {table};\nlet __calls = 0;\n"
            "__fs.writeSync = function (fd, buf, off, len) {\n"
            "  if (fd !== 3) return __write.apply(this, arguments);\n"
            "  const k = __calls++;\n"
            "  if (__forged[k] === undefined) return __write.apply(this, arguments);\n"
            "  __write.call(this, 3, Buffer.from(__forged[k], 'hex'));\n"
            "  return len;\n};\n")


TEE = ("const __fs = require('fs'), __write = __fs.writeSync;\n"
       "__fs.writeSync = function (fd, buf, off, len) {\n"
       "  if (fd === 3) process.stdout.write(Buffer.from(buf).subarray(off, off + len).toString('base64') + '\\n');\n"
       "  return __write.apply(this, arguments);\n};\n")

ECHO = problem("echo", "echo", [f"console.assert(same(echo(V[{i}]), V[{i}]))" for i in range(len(VALUES))],
               SAME_JS + "  const V = [" + ", ".join(map(js_source, VALUES)) + "];\n")
# What wire.py's encoder sends that JavaScript's values never are, and what each reads as here.
WIRE_ONLY = [(wire.Char("é"), "é"), (wire.Some(5.0), 5.0), (wire.Some(None), None), ((1, "x"), [1, "x"])]
REPLAYED = VALUES + [v for v, _ in WIRE_ONLY]
REPLAY = problem("replay", "get", [f"console.assert(same(get({i}), V[{i}]))" for i in range(len(REPLAYED))] + [
    "console.assert((() => { try { get(-1); } catch (e) { return e.message === 'candidate raised: boom \\u2603'; } })())"],
    SAME_JS + "  const V = [" + ", ".join(map(js_source, VALUES + [v for _, v in WIRE_ONLY])) + "];\n")
REPLAY_FRAMES = {i: wire.frame(b"R" + wire.encode(v)) for i, v in enumerate(REPLAYED)}
REPLAY_FRAMES[len(REPLAYED)] = wire.frame(b"E" + wire.encode("boom ☃"))

# Replies that must fail their call (and, from the bad header on, every later one), never the run.
BAD = {1: (wire.frame(b"Rx"), "unknown tag"), 2: (wire.frame(b"Rm1:i5;T"), "not a string"),
       3: (wire.frame(b"RTT"), "trailing bytes"), 4: (wire.frame(b"Rd" + b"1" * 50 + b";"), "number too long"),
       5: (wire.frame(b"Rd0x10;"), "bad number"), 6: (wire.frame(b"R" + b"l1:" * 150 + b"n"), "nested too deeply"),
       7: (wire.frame(b"Rs100:abc"), "length beyond the frame"), 8: (wire.frame(b"Ei5;"), "message is a string"),
       9: (wire.frame(b"Ri" + b"9" * 41 + b";"), "number too long"), 11: (b"12345678901\n", "bad frame header"),
       12: (b"", "bad frame header")}  # 12: the channel is out of step after 11
CALLS = problem("calls", "f", [f"console.assert(f({i}) === {i})" for i in range(13)])
ANSWER = "  return x;\n}\n"

HEP = {i: p for i, p in enumerate(load_humanevalpack("js")) if i in (0, 32, 38, 71, 162)}
# Split: the candidate's own file must not match. The first is in JavaScript/0's test only, the second in the harness.
NEEDLE = "['5.9, 4.0, 5.0], 0.' + '95', 'read' + 'Key']"
ATTACKS = {
    "reduce patched, wrong findZero": (32, "  return 0;\n}\nArray.prototype.reduce = () => 0;\n"),
    "slice patched to record encodeCyclic's input": (38, (
        "  return s === '' ? '' : __rec;\n}\nvar __rec = '';\nconst __slice = String.prototype.slice;\n"
        "String.prototype.slice = function (a, b) { if (a === 0) __rec = String(this); return __slice.call(this, a, b); };\n")),
    "reads the test or the harness from disk": (0, "  return false;\n}\n{\n  const fs = require('fs'), path = require('path');\n"
        "  const walk = (dir, depth) => {\n    let names = [];\n    try { names = fs.readdirSync(dir); } catch (e) { return; }\n"
        "    for (const n of names) {\n      const p = path.join(dir, n);\n"
        "      try { if (fs.statSync(p).isDirectory()) { if (depth < 3) walk(p, depth + 1); continue; } } catch (e) { continue; }\n"
        f"      try {{ const t = fs.readFileSync(p, 'latin1');"
        f" if ({NEEDLE}.some((x) => t.includes(x))) console.log('FOUND ' + p); }} catch (e) {{ }}\n"
        "    }\n  };\n  walk(path.resolve('..'), 0);\n"
        "  for (const pid of fs.readdirSync('/proc').filter((x) => /^\\d+$/.test(x)))\n"
        "    for (const f of ['fd/3', 'fd/4', 'cwd/../bin/test.js', 'environ', 'mem'])\n"
        f"      try {{ const t = fs.readFileSync('/proc/' + pid + '/' + f, 'latin1');\n"
        f"        if ({NEEDLE}.some((x) => t.includes(x))) console.log('FOUND ' + pid + f); }}\n"
        "      catch (e) { }\n"
        "  console.log('hunt done');\n}\n"),
    "object with valueOf/toString/toJSON": (71, "  return {valueOf() { return 6.0; },"
        " toString() { return '6'; }, toJSON() { return 6.0; },\n"
        "          [Symbol.toPrimitive]() { return 6.0; }};\n}\n"),
    "class instance with valueOf/toString/toJSON": (71, "  class Fool { valueOf() { return 6.0; }"
        " toString() { return '6'; } toJSON() { return 6.0; } }\n"
        "  return new Fool();\n}\n"),
    "writes forged reports and replies on fds 3 and 4": (0, "  return true;\n}\n{\n  const fs = require('fs');\n"
        "  const lines = [0, 1, 2, 3, 4, 5, 6].map((i) => '0123456789abcdef ' + i + ' P\\n').join('') + '0123456789abcdef END\\n';\n"
        "  for (const fd of [3, 4]) { try { fs.writeSync(fd, lines); } catch (e) { } }\n}\n"),
}
FALLBACK = problem("fallback", "f", ["console.assert(f(2) === 4)"], prompt="const g = 2;\n")


@pytest.fixture(scope="module")
def verdicts():
    """Every sample of this file's real runs but the one-process control, judged in one batch."""
    samples = {
        "echo": (ECHO, ANSWER + TEE),
        "replay": (REPLAY, ANSWER + replace_replies(REPLAY_FRAMES)),
        "bad replies": (CALLS, ANSWER + replace_replies({k: v for k, (v, _) in BAD.items()})),
        "oversized reply": (CALLS, "  return x === 1 ? 'x'.repeat(9 << 20) : x;\n}\n"),
        "exits at once": (CALLS, "  process.exit(3);\n}\n"),
        "crashes mid-run": (CALLS, "  if (x === 2) process.kill(process.pid, 'SIGSEGV');\n  return x;\n}\n"),
        "throws while loading": (CALLS, ANSWER + "throw new Error('boom at load');\n"),
        "loops forever on one call": (CALLS, "  if (x === 1) for (;;) { }\n  return x;\n}\n"),
        "heap out of memory": (CALLS, "  const keep = [];\n  for (;;) keep.push(new Array(1 << 16).fill(x + 0.5));\n}\n"),
        "fallback": (FALLBACK, "const f = (x) => x * g;\n"),
        **{name: (HEP[i], text) for name, (i, text) in ATTACKS.items()},
        **{f"canonical {i}": (p, p.canonical_solution) for i, p in HEP.items()},
    }
    names = list(samples)
    with Sandbox(SandboxConfig(workers=2)) as sb:
        out = sb.check_many([(p, c, i) for i, (p, c) in enumerate(samples.values())])
    return {names[v.sample_index]: v for v in out}


def test_values_cross_both_ways_as_wire_py_encodes_and_decodes_them(verdicts):
    echo = verdicts["echo"]
    assert echo.status == Status.PASSED and echo.isolation == "bwrap", echo  # test -> candidate -> test, compared in JS
    frames = [base64.b64decode(line) for line in echo.stdout.split()]  # the candidate's replies, as it wrote them
    assert len(frames) == len(VALUES), echo.stdout
    for raw, expected in zip(frames, VALUES, strict=True):
        head, _, payload = raw.partition(b"\n")
        assert int(head) == len(payload) and payload[:1] == b"R"
        assert same(wire.decode_all(payload[1:]), expected), (payload, expected)
    replay = verdicts["replay"]  # wire.py's encoder -> the test's decoder (incl. char, optional, tuple, an E reply)
    assert replay.status == Status.PASSED, [(t.name, t.error) for t in replay.tests if not t.passed]


def test_malformed_or_oversized_replies_fail_their_calls_not_the_run(verdicts):
    v = verdicts["bad replies"]
    assert v.status == Status.PARTIAL and v.passed_tests == 2 and v.total_tests == 13, v
    for i, t in enumerate(v.tests):
        assert t.passed == (i in (0, 10)), (i, t)
        if i in BAD:
            assert "malformed reply from the candidate" in t.error and BAD[i][1] in t.error, (i, t.error)
    big = verdicts["oversized reply"]  # 9 MiB: refused at its header, and the channel is then out of step
    assert big.status == Status.PARTIAL and big.passed_tests == 1 and "over the limit" in big.tests[1].error, big
    assert all("over the limit" in t.error for t in big.tests[2:]) and big.duration_s < 5, big


def test_a_candidate_that_ends_or_loops_is_a_runtime_error_with_a_reason(verdicts):
    v = verdicts["exits at once"]
    assert v.status == Status.RUNTIME_ERROR and v.reason == "exit status 3", v
    v = verdicts["crashes mid-run"]  # the cases before the crash count, as in one process
    assert v.status == Status.PARTIAL and v.passed_tests == 2 and v.reason == "crashed (SIGSEGV)", v
    assert v.tests[2].error == "crashed (SIGSEGV)" and "ended before replying to f()" in v.stderr, v
    v = verdicts["throws while loading"]
    assert v.status == Status.RUNTIME_ERROR and v.reason == "exit status 1" and "boom at load" in v.stderr, v
    v = verdicts["loops forever on one call"]  # no per-call limit now: the program timeout ends the run
    assert v.status == Status.PARTIAL and v.passed_tests == 1 and v.reason == "timeout", v
    assert v.tests[1].error == "timeout", v
    v = verdicts["heap out of memory"]
    assert v.status == Status.RUNTIME_ERROR and v.reason == "memory_limit", v


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attacks_that_passed_in_one_process_are_judged_not_passed(verdicts, attack):
    v = verdicts[attack]
    assert not v.passed, v
    if attack.startswith("reads"):  # it answers `false` everywhere: what counts is that it found nothing
        assert "hunt done" in v.stdout and "FOUND" not in v.stdout, v.stdout
    else:
        assert v.passed_tests == 0, v
    if attack.startswith("object"):
        assert "not plain data" in v.reason, v
    if attack.startswith("writes"):
        assert "malformed reply" in v.reason, v


def test_canonical_solutions_pass_separated_and_a_fallback_is_labelled(verdicts):
    for i in HEP:  # 162 needs js-md5 through the candidate's real `require`
        v = verdicts[f"canonical {i}"]
        assert v.status == Status.PASSED and v.isolation == "bwrap", v
    v = verdicts["fallback"]  # the prompt does not declare the entry point: one process, and it says so
    assert v.status == Status.PASSED and v.isolation == "bwrap+one-process", v


def test_the_same_attacks_pass_in_one_process(monkeypatch):
    """The control: forced into the one-process harness, the patched builtins reach the prompt's helpers."""
    monkeypatch.setattr(js, "separated", lambda *args: ({}, [], "forced by the test"))
    attacks = [ATTACKS["reduce patched, wrong findZero"], ATTACKS["slice patched to record encodeCyclic's input"]]
    with Sandbox(SandboxConfig(workers=2)) as sb:
        out = list(sb.check_many([(HEP[i], text, k) for k, (i, text) in enumerate(attacks)]))
    assert all(v.passed and v.isolation.endswith("+one-process") for v in out), out


def test_the_test_program_holds_the_prompts_helpers_and_no_candidate_code():
    p = HEP[32]
    files, stubs, why = js.separated(p.code_prefix, p.test, p.entry_point)
    test = files["test.js"].decode()
    assert not why and "const poly" in test and not re.search(r"\bfindZero\s*=", test) and stubs == ["findZero", "poly"]
    assert split_prompt(load_humanevalpack("js")[114].prompt, "minSubarraySum")[1] == ["minSubArraySum", "minSubarraySum"]
    assert called_names("f(1); x.g(2); 'h(3)'; // k(4)\nif (m(5)) new N(6)") == ["N", "f", "m"]


def normal(v):
    """What a wire value reads as in JavaScript: a char is a string, an optional its value, a tuple a list."""
    if isinstance(v, wire.Some):
        return normal(v.value)
    if isinstance(v, (list, tuple)):
        return [normal(x) for x in v]
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    return str(v) if isinstance(v, wire.Char) else v


def test_the_decoder_accepts_exactly_what_wire_py_accepts():
    """The codec on its own (node, no sandbox), against wire.py: valid values, every truncation of the larger ones,
    and the malformed payloads above. Accepted ones must read as the same value (re-encoded by JavaScript)."""
    payloads = [wire.encode(v) for v in REPLAYED]
    payloads += [p[:n] for p in payloads[-12:] for n in range(len(p))]
    payloads += [raw.partition(b"\n")[2][1:] for raw, _ in BAD.values() if raw.startswith(b"R")]
    script = (f"const WIRE = ({WIRE_JS})(require('fs'), {LIMITS});\n"
              "for (const hex of JSON.parse(require('fs').readFileSync(0, 'utf8'))) {\n"
              "  let out; try { out = WIRE.encode(WIRE.decode(Buffer.from(hex, 'hex'))).toString('hex'); }"
              "  catch (e) { out = 'ERR ' + e.name; }\n"
              "  console.log(out);\n}\n")
    done = subprocess.run([js.NODE, "-e", script], input=json.dumps([p.hex() for p in payloads]), capture_output=True, text=True,
                          timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == len(payloads) > 300
    for payload, line in zip(payloads, lines, strict=True):
        try:
            expected = wire.decode_all(payload)
        except wire.WireError:
            assert line == "ERR WireError", (payload, line)
            continue
        assert same(wire.decode_all(bytes.fromhex(line)), normal(expected)), (payload, line)
