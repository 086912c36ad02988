"""A candidate's processes and files end with it: real attacks on the worker's clean-up, run in the
real sandbox with one worker so that the next candidates land where the attack happened."""
from __future__ import annotations

import time

import pytest
from sandboxkit import DEEP_CHAIN, FORK_CHAIN

from sandbox import Problem, Sandbox, SandboxConfig, Status

ADD = Problem(task_id="t/add", prompt="", entry_point="add",
              test="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n")
GOOD = "def add(a, b):\n    return a + b\n"
PROBE = Problem(task_id="t/probe", prompt="", entry_point="probe",
                test="def check(candidate):\n    assert candidate() == 'contained'\n")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0, program_timeout_s=5.0)) as sb:
        yield sb




def test_a_deep_directory_chain_does_not_break_the_clean_up(sandbox):
    sandbox.check(ADD, DEEP_CHAIN)
    verdicts = list(sandbox.check_many([(ADD, GOOD, i) for i in range(3)]))
    assert all(v.passed for v in verdicts), verdicts
    chains = list(sandbox.check_many([(ADD, DEEP_CHAIN, i) for i in range(3)]))
    assert all(v.passed for v in chains), chains  # a legal program: it passes, and its dirs go with it
    assert sandbox.check(ADD, GOOD).passed


# Counts live processes in the worker that run under a candidate uid: only the probe's own.
COUNT = '''
import os
def probe():
    mine = os.getuid()
    others = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = open("/proc/%s/status" % pid).read()
        except OSError:
            continue
        state = status.split("State:")[1].split()[0]
        uid = int(status.split("Uid:")[1].split()[0])
        if uid >= 200000 and uid != mine and state not in ("Z", "X"):
            others.append((pid, uid, state))
    return "contained" if not others else "left running: %s" % others[:5]
'''


CHAIN_FORKS_S = 2.0  # how long FORK_CHAIN's survivor keeps changing pid before it sleeps for a minute
assert f"< {CHAIN_FORKS_S}" in FORK_CHAIN


def test_a_fork_chain_does_not_outlive_its_candidate(sandbox):
    for i in range(2):
        sandbox.check(ADD, FORK_CHAIN, i)
    # The one fixed wait: while a survivor changes pid, a scan of /proc can miss it, so "contained"
    # counts only once the chain (started before check returned) has stopped forking.
    time.sleep(CHAIN_FORKS_S)
    # Then poll: a namespace still going down on a loaded machine is retried, but a survivor sleeps at
    # one pid for a minute, so one still there at the deadline is a leak, not slowness.
    deadline = time.monotonic() + 15
    while not (v := sandbox.check(PROBE, COUNT)).passed and time.monotonic() < deadline:
        time.sleep(0.2)
    assert v.passed, v.tests[0].error
    assert sandbox.check(ADD, GOOD).passed


USERNS = '''
import ctypes, os
def probe():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
        return "created a user namespace"
    pid = os.fork()
    if pid == 0:
        os._exit(0 if libc.unshare(0x10000000 | 0x00020000) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return "contained" if os.WEXITSTATUS(status) == 1 else "created a user namespace in a child"
'''


def test_candidates_cannot_create_user_namespaces(sandbox):
    v = sandbox.check(PROBE, USERNS)
    assert v.passed, v


def test_candidate_is_alone_in_its_process_namespace(sandbox):
    # The spawner, harness and zygote are invisible to signals; the candidate sees only its own tree.
    v = sandbox.check(PROBE, "import os\ndef probe():\n    return 'contained' if os.getpid() == 1 else 'pid %d' % os.getpid()\n")
    assert v.passed, v
    assert sandbox.check(ADD, GOOD).status == Status.PASSED
