"""Hostile candidate programs, run for real in the sandbox: none may be judged passed, the host and
the pool must survive, and the next honest candidate must still be judged correctly."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from sandboxkit import CHEATS

from sandbox import Problem, Sandbox, SandboxConfig, Status

ADD = Problem(task_id="t/add", prompt="", entry_point="add",
              test="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n"
                   "    assert candidate(-1, 1) == 0 and candidate(1, 1)\n")
GOOD = "def add(a, b):\n    return a + b\n"
# Probes: `probe()` returns "escaped" if the attack worked; the test passes only in that case.
PROBE = Problem(task_id="t/probe", prompt="", entry_point="probe",
                test="def check(candidate):\n    assert candidate() == 'escaped', 'zqxj-test-only-marker'\n")
SECRET = "rrtf-adversarial-secret-value"


EXPECTED_REASON = {
    "fork bomb": "timeout",
    "infinite loop": "timeout",
    "infinite loop at import": "timeout",
    "memory bomb (one huge block)": "memory_limit",
    "huge output": "output limit exceeded",
    "output flood at import": "program failed at import: output limit exceeded",
}

PROBES = {
    "write outside the work dir": """
import os
def probe():
    for path in ("/tmp/pwn", "/pwn", os.path.dirname(os.getcwd()) + "/pwn", "/dev/shm/pwn", "/etc/pwn", "/usr/pwn",
                 "/root/pwn", %r):
        try:
            with open(path, "w") as fh:
                fh.write("x")
            return "escaped"
        except OSError:
            pass
    return "contained"
""",
    "network connect to a host socket": """
import socket
def probe():
    for host in ("127.0.0.1", "10.0.2.2", "172.17.0.1"):
        try:
            socket.create_connection((host, %d), timeout=0.5)
            return "escaped"
        except OSError:
            pass
    return "contained"
""",
    "read host environment": """
import os
def probe():
    if any(%r in v for v in os.environ.values()):
        return "escaped"
    for pid in os.listdir("/proc"):
        try:
            if %r.encode() in open("/proc/%%s/environ" %% pid, "rb").read():
                return "escaped"
        except OSError:
            pass
    return "contained"
""",
    "find the test code in its own memory": """
import gc
def probe():
    needles = ("zqxj-test-" + "only-marker", "check(__rrtf_" + "entry__)")  # only in the test's code
    for obj in gc.get_objects():
        if obj is needles:
            continue
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
        try:
            for item in items:
                if isinstance(item, str) and any(n in item for n in needles):
                    return "escaped"
        except Exception:
            pass
    return "contained"
""",
    "become root again": """
import os
def probe():
    for fn in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.seteuid(0)):
        try:
            fn()
            return "escaped"
        except OSError:
            pass
    return "contained"
""",
}


@pytest.fixture(scope="module")
def host_listener():
    sock = socket.socket()
    sock.bind(("0.0.0.0", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def sandbox():
    os.environ["RRTF_ADVERSARIAL_SECRET"] = SECRET  # must not reach any candidate
    with Sandbox(SandboxConfig(workers=2, timeout_s=1.0, program_timeout_s=2.5, output_limit_bytes=1 << 16)) as sb:
        yield sb
    del os.environ["RRTF_ADVERSARIAL_SECRET"]


def assert_pool_healthy(sb: Sandbox) -> None:
    v = sb.check(ADD, GOOD)
    assert v.passed, f"pool no longer judges correctly: {v}"


@pytest.mark.parametrize("name", list(CHEATS))
def test_cheats_are_never_judged_passed(sandbox, name):
    v = sandbox.check(ADD, CHEATS[name])
    assert v.status != Status.PASSED, v
    assert v.passed_tests < v.total_tests == 3
    if name in EXPECTED_REASON:
        assert v.status == Status.RUNTIME_ERROR and v.reason.startswith(EXPECTED_REASON[name]), v
    if name == "memory bomb (growing)":
        assert v.status == Status.RUNTIME_ERROR and v.reason in ("memory_limit", "timeout"), v
    assert_pool_healthy(sandbox)


def test_kill_minus_one_does_not_hurt_an_honest_answer(sandbox):
    v = sandbox.check(ADD, "import os\ndef add(a, b):\n    try:\n        os.kill(-1, 9)\n    except OSError:\n"
                           "        pass\n    return a + b\n")
    assert v.passed  # it only killed itself-less nothing: the harness is out of its reach


@pytest.mark.parametrize("name", list(PROBES))
def test_isolation_probes_are_contained(sandbox, host_listener, tmp_path, name):
    host_file = str(tmp_path / "pwn")
    program = PROBES[name]
    if name == "write outside the work dir":
        program %= host_file
    elif name == "network connect to a host socket":
        program %= host_listener.getsockname()[1]
    elif name == "read host environment":
        program %= (SECRET, SECRET)
    v = sandbox.check(PROBE, program)
    assert v.status == Status.PARTIAL and v.tests[0].error.startswith("AssertionError"), v  # ran, was contained
    assert not os.path.exists(host_file) and not os.path.exists("/pwn")
    assert_pool_healthy(sandbox)


def test_redefining_what_the_test_relies_on_does_not_help(sandbox):
    from rrtf.datasets.humaneval import load_humaneval
    problems = load_humaneval()
    # HumanEval/32 checks find_zero with the prompt's poly(); /38 decodes the prompt's encode_cyclic().
    forged_poly = sandbox.check(problems[32], "    return 0.0\n\ndef poly(xs, x):\n    return 0\n")
    forged_encode = sandbox.check(problems[38], "    return s\n\ndef encode_cyclic(s):\n    return s\n")
    assert not forged_poly.passed and not forged_encode.passed
    square = Problem(task_id="t/sq", prompt="", entry_point="sq", test=(
        "import math\ndef check(candidate):\n    assert abs(candidate(2) - 4) < 1e-9\n"
        "    assert sorted([candidate(3)]) == [9] and math.isclose(candidate(1), 1.0)\n"))
    shadowing = "import cmath as math\ndef sq(x):\n    return 0\ndef abs(x):\n    return 0\ndef sorted(x):\n    return [9]\n"
    assert sandbox.check(square, shadowing).passed_tests == 0
    assert sandbox.check(square, "def sq(x):\n    return x * x\n").passed


def test_lost_harness_keeps_reported_cases_and_fails_the_rest():
    # Trusted test code that kills the harness mid-run stands in for a harness crash.
    problem = Problem(task_id="t/die", prompt="", entry_point="add", test=(
        "def check(candidate):\n    import time\n    time.sleep(0.3)\n    assert candidate(1, 2) == 3\n"
        "    import os\n    os._exit(0)\n    assert candidate(2, 2) == 4\n"))
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0)) as sb:
        v = sb.check(problem, GOOD)
        assert (v.status, v.passed_tests, v.total_tests) == (Status.PARTIAL, 1, 2), v
        assert v.reason.startswith("harness_lost") and v.tests[1].error.startswith("harness_lost")
        # Only that job's harness was lost: the worker, with a fresh harness per job, carries on.
        assert sb.workers[0].restarts == 0
        assert_pool_healthy(sb)


def test_worker_killed_from_outside_is_replaced():
    with Sandbox(SandboxConfig(workers=1, timeout_s=3.0)) as sb:
        worker = sb.workers[0]
        first_pid = worker.proc.pid
        threading.Timer(0.5, lambda: os.killpg(first_pid, signal.SIGKILL)).start()
        start = time.monotonic()
        v = sb.check(ADD, "import time\ndef add(a, b):\n    time.sleep(2)\n    return a + b\n")
        assert not v.passed and v.reason.startswith("harness_lost"), v
        assert time.monotonic() - start < 2.5  # noticed at once, not after the timeout
        assert_pool_healthy(sb)
        assert worker.proc.pid != first_pid


def test_many_hostile_candidates_in_one_batch(sandbox):
    items = [(ADD, code, i) for i, code in enumerate(CHEATS.values())] + [(ADD, GOOD, 100), (ADD, GOOD, 101)]
    verdicts = {v.sample_index: v for v in sandbox.check_many(items)}
    assert len(verdicts) == len(items)
    assert {i for i, v in verdicts.items() if v.passed} == {100, 101}
