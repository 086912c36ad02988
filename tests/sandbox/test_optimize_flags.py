"""The host under `python -O` / `PYTHONOPTIMIZE`: the trusted test code must keep its asserts.

The host compiles the tests once and sends the harness marshalled code. A plain `compile` follows the
interpreter's optimisation level, so a host started with -O dropped every assert of the tests and any
program passed (a real judge in a real subprocess started that way, judging real programs).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

JUDGE = """
import json
from sandbox import Problem, Sandbox, SandboxConfig
add = Problem(task_id="t/add", prompt="", entry_point="add",
              test="def check(candidate):\\n    assert candidate(1, 2) == 3\\n    assert candidate(2, 2) == 4\\n")
# The harness runs the test code; the candidate reports its own process's flags.
flags = Problem(task_id="t/flags", prompt="", entry_point="flags", test=(
    "import sys\\ndef check(candidate):\\n    assert sys.flags.optimize == 0 and __debug__\\n"
    "    assert candidate() == [0, True]\\n"))
out = {"host_optimize": __import__("sys").flags.optimize}
with Sandbox(SandboxConfig(workers=1, timeout_s=10.0)) as sb:
    for name, problem, program in (
            ("wrong", add, "def add(a, b):\\n    return 'wrong'\\n"),
            ("right", add, "def add(a, b):\\n    return a + b\\n"),
            ("flags", flags, "import sys\\ndef flags():\\n    return [sys.flags.optimize, __debug__]\\n")):
        v = sb.check(problem, program)
        out[name] = [v.status.name, v.passed_tests, v.total_tests, [t.error for t in v.tests]]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("flags, env", [(["-O"], {}), (["-OO"], {}), ([], {"PYTHONOPTIMIZE": "1"}),
                                        ([], {"PYTHONOPTIMIZE": "2"})], ids=["-O", "-OO", "PYTHONOPTIMIZE=1", "PYTHONOPTIMIZE=2"])
def test_an_optimised_host_still_runs_the_tests_asserts(flags, env):
    r = subprocess.run([sys.executable, *flags, "-c", JUDGE], cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.rsplit("RESULT ", 1)[1])
    assert out["host_optimize"] >= 1  # the host really ran optimised
    status, passed, total, errors = out["wrong"]
    assert status != "PASSED" and (passed, total) == (0, 2), out
    assert all(e.startswith("AssertionError") for e in errors), out  # failed by the test's own asserts
    assert out["right"][:3] == ["PASSED", 2, 2], out
    # Neither the harness (test code) nor the candidate inherited the host's optimisation.
    assert out["flags"][:3] == ["PASSED", 2, 2], out
