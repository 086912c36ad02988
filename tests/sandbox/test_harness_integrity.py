"""The trusted Python harness, attacked for real: nothing a candidate names or writes may be imported,
executed or read by the harness, and no job can change how a later job of the same worker is judged.

Every test here runs real candidates in the real bubblewrap sandbox (one worker, so later jobs land
in the same worker as the attack). Problem test code is trusted: where a test needs "a compromised
harness", trusted test code plays it.
"""
from __future__ import annotations

import pytest
from sandboxkit import PAYLOAD, PLANTER

from sandbox import Problem, Sandbox, SandboxConfig, Status

ADD = Problem(task_id="t/add", prompt="", entry_point="add",
              test="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n")
WRONG = "def add(a, b):\n    return 0\n"
GOOD = "def add(a, b):\n    return a + b\n"




@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0, program_timeout_s=6.0)) as sb:
        yield sb


def test_modules_named_and_files_written_by_a_candidate_never_run_in_the_harness(sandbox):
    v = sandbox.check(ADD, PLANTER)
    assert v.status != Status.PASSED and v.passed_tests == 0, v
    for i in range(3):  # later jobs of the same worker are judged by an untouched harness
        assert not sandbox.check(ADD, WRONG, i).passed
    probe = Problem(task_id="t/marker", prompt="", entry_point="probe",
                    test="def check(candidate):\n    assert candidate() == 'clean'\n")
    marker = ("import os\ndef probe():\n    for p in ('/work/rrtf-pwned', '/tmp/rrtf-pwned', '/work/c/rrtf-pwned'):\n"
              "        if os.path.exists(p):\n            return 'found ' + p\n    return 'clean'\n")
    assert sandbox.check(probe, marker).passed


HARNESS_VIEW = Problem(task_id="t/view", prompt="", entry_point="plant", test='''
import os, sys
def check(candidate):
    path = candidate()
    assert path.startswith("/"), path
    try:
        with open(path) as fh:
            fh.read()
        readable = "read " + path
    except OSError:
        readable = "no"
    assert readable == "no", readable
    try:
        listing = os.listdir(os.path.dirname(path))
    except OSError:
        listing = None
    assert listing is None, listing
    assert os.listdir(".") == [], os.listdir(".")
    try:
        open("planted.py", "w").close()
        writable = True
    except OSError:
        writable = False
    assert not writable
    for entry in sys.path:
        assert not os.access(entry or ".", os.W_OK), entry
''')
PLANT = '''
import os
def plant():
    os.chmod(".", 0o777)
    with open("secret.txt", "w") as fh:
        fh.write("candidate data")
    os.chmod("secret.txt", 0o666)
    return os.path.abspath("secret.txt")
'''


def test_the_harness_can_neither_read_candidate_dirs_nor_write_its_own_cwd(sandbox):
    v = sandbox.check(HARNESS_VIEW, PLANT)
    assert v.passed, v  # every assert in HARNESS_VIEW's trusted test code holds


# Trusted test code standing in for a harness an earlier job compromised: it patches every class
# in its process that reports test cases, so that everything passes from then on.
TAINT = Problem(task_id="t/taint", prompt="", entry_point="add",
                test="def check(candidate):\n" + "".join("    " + line + "\n" for line in PAYLOAD.strip().splitlines())
                     + "    assert candidate(1, 2) == 3\n")


def test_a_tainted_harness_does_not_judge_the_next_job(sandbox):
    assert sandbox.check(TAINT, GOOD).passed
    later = list(sandbox.check_many([(ADD, WRONG, i) for i in range(4)]))
    assert [v.status for v in later] == [Status.PARTIAL] * 4, later
    assert all(v.passed_tests == 0 for v in later)
    assert sandbox.check(ADD, GOOD).passed


# Trusted test code playing a compromised harness that reaches for later jobs: it reads whatever it
# can from every pipe it holds (the next job, if it were there) and writes, to every pipe, frames
# claiming "all passed" for the next few hundred job ids.
REACH = Problem(task_id="t/reach", prompt="", entry_point="add", test='''
import json, os, stat
def check(candidate):
    forged = b""
    for job_id in range(1, 400):
        for frame in ({"id": job_id, "msgs": [{"case": c, "passed": True, "error": ""} for c in range(4)] + [{"end": True}]},
                      {"id": job_id, "done": True, "duration_s": 0.0}):
            data = json.dumps(frame).encode()
            forged += len(data).to_bytes(4, "big") + data
    for fd in range(3, 256):
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                continue
            os.set_blocking(fd, False)
            try:
                os.read(fd, 1 << 20)
            except OSError:
                pass
            os.set_blocking(fd, True)
            os.write(fd, forged)
        except OSError:
            pass
    assert candidate(1, 2) == 3
''')


def test_a_tainted_harness_cannot_reach_later_jobs():
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0, program_timeout_s=6.0)) as sb:
        items = [(REACH, GOOD, 0)] + [(ADD, WRONG, i) for i in range(1, 5)] + [(ADD, GOOD, 5)]
        verdicts = {v.sample_index: v for v in sb.check_many(items)}
        assert len(verdicts) == 6
        assert [verdicts[i].passed for i in range(1, 5)] == [False] * 4, verdicts
        assert verdicts[5].passed


def test_a_fresh_harness_per_job_is_the_default_and_reuse_still_judges():
    assert SandboxConfig().jobs_per_harness == 1
    with Sandbox(SandboxConfig(workers=1, jobs_per_harness=4, timeout_s=2.0)) as sb:  # the speed trade, when chosen
        items = [(ADD, GOOD if i % 2 else WRONG, i) for i in range(10)]
        verdicts = {v.sample_index: v.passed for v in sb.check_many(items)}
        assert verdicts == {i: bool(i % 2) for i in range(10)}
