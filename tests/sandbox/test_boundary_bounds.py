"""Numbers and lengths a candidate sends the trusted Python harness, attacked for real: a value
chosen to stall the harness in C code (where its per-case alarm cannot interrupt it) must cost only
that sample a quick, clear verdict -- never `harness_lost` and a worker restart.

Each attack is a real candidate program judged by a real sandbox; the candidate writes its own
frames on its connection to the harness (fd 3), as any program can.
"""
from __future__ import annotations

import time

import pytest

from sandbox import Problem, Sandbox, SandboxConfig, Status
from sandbox.worker.plaindata import literal

ADD = Problem(task_id="t/add", prompt="", entry_point="add",
              test="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n")
GOOD = "def add(a, b):\n    return a + b\n"
# Sends one reply frame of its own making for the first call, then ends.
FORGED_REPLY = """
import json, os, socket
def add(a, b):
    reply = {reply}
    frame = json.dumps(reply).encode()
    socket.socket(fileno=3).sendall(len(frame).to_bytes(4, "big") + frame)
    os._exit(0)
"""
# Sends its own "ready" message (its globals as the harness sees them) at import, then ends.
FORGED_READY = """
import json, os, socket
ready = {ready}
frame = json.dumps({{"ready": ready}}).encode()
socket.socket(fileno=3).sendall(len(frame).to_bytes(4, "big") + frame)
os._exit(0)
"""
FAST_S = 10  # the stalls these attacks caused took the host's whole job deadline (~40 s) or far longer


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0, program_timeout_s=4.0)) as sb:
        yield sb


def judge(sb: Sandbox, problem: Problem, program: str, fast_s: float = FAST_S):
    restarts, start = sb.workers[0].restarts, time.monotonic()
    v = sb.check(problem, program)
    elapsed = time.monotonic() - start
    assert not v.passed and not v.reason.startswith("harness_lost"), v
    assert elapsed < fast_s, f"{elapsed:.1f} s"
    assert sb.workers[0].restarts == restarts  # the worker judged on: only this sample paid
    good = sb.check(problem, GOOD)
    assert good.passed, good
    return v


def test_a_huge_write_back_key_is_a_quick_verdict_not_a_lost_harness(sandbox):
    """The harness once called `int()` on the keys of a reply's `changed` (arguments the call changed
    in place): a 15-million-digit key stalled it in quadratic decimal conversion."""
    reply = '{"changed": {"1" * 15_000_000: "\\x01[]"}, "ok": "\\x01" + str(a + b)}'
    v = judge(sandbox, ADD, FORGED_REPLY.format(reply=reply))
    assert v.status == Status.RUNTIME_ERROR and "changed an argument the call did not pass" in v.tests[0].error, v


def test_write_back_keys_that_only_look_like_indices_are_refused(sandbox):
    # '00' and '²' (isdigit, yet not what str(index) gives) once reached int() too.
    for key in ("00", "\u00b2", "k:" + "x" * 1000):
        reply = '{"changed": {' + repr(key) + ': "\\x01[]"}, "ok": "\\x01" + str(a + b)}'
        v = judge(sandbox, ADD, FORGED_REPLY.format(reply=reply))
        assert "changed an argument the call did not pass" in v.tests[0].error, (key, v)


def test_trusted_test_code_converting_a_huge_returned_string_fails_fast(sandbox):
    """The harness disabled CPython's limit on decimal conversions for test code (`str(f(2000))`
    of a big factorial); test code doing `int(candidate(...))` on an 8-million-digit string then
    stalled in C. The harness now keeps a limit (HARNESS_INT_DIGITS) far above such tests' needs."""
    problem = Problem(task_id="t/int", prompt="", entry_point="digits",
                      test="def check(candidate):\n    assert int(candidate(3)) == 3\n    assert int(candidate(4)) == 4\n")
    v = sandbox.check(problem, "def digits(n):\n    return str(n)\n")
    assert v.passed, v
    restarts, start = sandbox.workers[0].restarts, time.monotonic()
    v = sandbox.check(problem, "def digits(n):\n    return '1' * 8_000_000\n")
    assert not v.passed and "Exceeds the limit" in v.tests[0].error, v
    assert time.monotonic() - start < FAST_S and sandbox.workers[0].restarts == restarts


def test_a_reply_of_millions_of_literal_tokens_is_refused_before_parsing(sandbox):
    """Literal text (the form of values JSON cannot carry: tuples, sets, ...) is parsed by ast.parse,
    ~1-3 us per token in C: 6 MB of `0,` stalled the harness ~19 s past its per-case alarm."""
    reply = '{"ok": "[" + "0," * (3 << 20) + "]"}'
    v = judge(sandbox, ADD, FORGED_REPLY.format(reply=reply), fast_s=4)
    assert "returned a value that is not plain data (value too large" in v.tests[0].error, v


def test_huge_literal_globals_at_start_are_bounded(sandbox):
    """The candidate's globals come as literal text the harness parses before any test case (no
    per-case alarm yet): twelve 2 MiB literals of small items cost ast.parse ~80 s in C."""
    big = '"[" + "0," * (1 << 20) + "]"'
    ready = f"[['g' + str(i), 'data', {big}] for i in range(12)] + [['add', 'callable', '']]"
    v = judge(sandbox, ADD, FORGED_READY.format(ready=ready))
    assert v.status == Status.RUNTIME_ERROR, v


def test_right_answers_still_cross_within_the_bounds(sandbox):
    """In-place changes (positional and keyword), data globals and big integers in both directions,
    as before the bounds."""
    problem = Problem(task_id="t/inplace", prompt="", entry_point="fill", test=(
        "def check(candidate):\n    xs, ys = [3, 1], {'a': 1}\n    candidate(xs, ys=ys)\n"
        "    assert xs == [1, 3, 0] and ys == {'a': 1, 'b': (2, 3)}\n    assert TABLE == {1: (2, 3)} and len(BIG) == 100_000\n"
        "    assert str(candidate(None, n=3000)).startswith('41493596034378540855568670930866')\n"
        "    assert len(str(7 ** 20000)) == 16902\n"))
    program = ("import math\nTABLE = {1: (2, 3)}\nBIG = list(range(100_000))\n"
               "def fill(xs, ys=None, n=0):\n    if xs is None:\n        return math.factorial(n)\n"
               "    xs.sort()\n    xs.append(0)\n    ys['b'] = (2, 3)\n")
    v = sandbox.check(problem, program)
    assert v.passed, v


def test_oversized_numbers_in_literals_are_not_plain_data():
    # deque's maxlen too large for C: OverflowError, which is not plain data either.
    for text in ("deque([], maxlen=" + "9" * 4000 + ")", "1" * 5000, "\x01" + "1" * 5000, "\x01" + "1." + "0" * 2000):
        with pytest.raises(ValueError):
            literal(text)
