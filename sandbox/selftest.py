"""`python -m sandbox selftest`: print the isolation level in force and attack it for real.

Each probe is a candidate program judged by the sandbox like any other: it attempts an escape
(connect to a socket the host listens on, write outside its work dir, fork past the limit, ...) and
the probe PASSes only if the sandbox contained it (for most probes: the program's `probe()` returned
"contained"; for resource probes: the verdict names the limit that stopped it).
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

from sandbox.config import SandboxConfig
from sandbox.isolation import STRENGTH, detect_isolation
from sandbox.records import Problem, Status

PROBE_TEST = "def check(candidate):\n    outcome = candidate()\n    assert outcome == 'contained', outcome\n"
SECRET_VAR = "RRTF_SELFTEST_SECRET"


def _probe_problem(name: str) -> Problem:
    return Problem(task_id=f"selftest/{name}", prompt="", entry_point="probe", test=PROBE_TEST)


def escape_paths(name: str, workroot: str = "") -> list[str]:
    """Where the write probe tries to create `name` (cleaned up afterwards at weak levels)."""
    return [f"/tmp/{name}", f"/{name}", f"/dev/shm/{name}", f"/etc/{name}", f"/usr/{name}", f"/root/{name}",
            "/proc/sys/kernel/hostname"]


def probes(port: int, host_file: str, nproc: int, name: str = "x") -> list[tuple[str, str, str]]:
    """(name, program, expectation): expectation "contained" = must pass the probe test;
    otherwise the verdict reason the limit must produce."""
    return [
        ("network: connect to a host socket", f"""
import socket
def probe():
    for host in ("127.0.0.1", "10.0.2.2", "172.17.0.1", "8.8.8.8"):
        try:
            socket.create_connection((host, {port}), timeout=0.5)
            return "connected to " + host
        except OSError:
            pass
    return "contained"
""", "contained"),
        ("network: DNS lookup", """
import socket
def probe():
    try:
        socket.getaddrinfo("pypi.org", 443)
        return "resolved"
    except OSError:
        return "contained"
""", "contained"),
        ("filesystem: write outside the work dir", f"""
import os
def probe():
    for path in [os.path.dirname(os.getcwd()) + "/{name}"] + {escape_paths(name)!r}:
        try:
            with open(path, "w") as fh:
                fh.write("x")
            return "wrote " + path
        except OSError:
            pass
    return "contained"
""", "contained"),
        ("filesystem: host files are not visible", f"""
def probe():
    try:
        open({host_file!r}).read()
        return "read the host file"
    except OSError:
        return "contained"
""", "contained"),
        ("filesystem: private empty work dir", """
import os
def probe():
    if os.listdir("."):
        return "work dir not empty"
    open("mine.txt", "w").write("ok")
    return "contained" if open("mine.txt").read() == "ok" else "cannot use the work dir"
""", "contained"),
        ("processes: fork beyond the limit", f"""
import os
def probe():
    kids = []
    try:
        for _ in range({nproc} + 8):
            pid = os.fork()
            if pid == 0:
                import time
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
    except OSError:
        return "contained"
    return "forked %d processes" % len(kids)
""", "contained"),
        ("processes: cannot signal the harness / worker", """
import os, signal
def probe():
    hit = []
    # getppid() is 0 here: the parent is outside the candidate's PID namespace
    for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid in (0, os.getpid()):
            continue
        try:
            os.kill(pid, 0)
            hit.append(pid)
        except OSError:
            pass
    return "can signal %s" % hit if hit else "contained"
""", "contained"),
        ("privileges: cannot become root", """
import os
def probe():
    try:
        os.setuid(0)
        return "became root"
    except OSError:
        return "contained" if os.getuid() != 0 else "runs as root"
""", "contained"),
        ("environment: host variables do not leak", f"""
import os
def probe():
    leaked = [k for k in os.environ if k == {SECRET_VAR!r} or "TOKEN" in k or "KEY" in k or "SECRET" in k]
    return "leaked %s" % leaked if leaked else "contained"
""", "contained"),
        ("verdict: exit(0) at import is not a pass", "import os\nos._exit(0)\ndef probe():\n    return 'contained'\n",
         "not passed"),
        ("limits: memory bomb", "def probe():\n    x = []\n    while True:\n        x.append(bytearray(50 << 20))\n",
         "memory_limit"),
        ("limits: infinite loop", "def probe():\n    while True:\n        pass\n", "timeout"),
        ("limits: output flood", "import sys\ndef probe():\n    while True:\n        sys.stdout.write('x' * 65536)\n",
         "output limit exceeded"),
    ]


def run_selftest(config: SandboxConfig, out=sys.stdout) -> int:
    from sandbox.pool import Sandbox

    detected = detect_isolation()
    print(f"isolation available on this machine: {detected} ({STRENGTH[detected]})", file=out)
    os.environ[SECRET_VAR] = "should-not-leak"
    config = SandboxConfig(**{**config.__dict__, "timeout_s": min(config.timeout_s, 2.0),
                              "program_timeout_s": min(config.program_timeout_s, 4.0)})
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    with tempfile.NamedTemporaryFile("w", prefix="rrtf-selftest-", suffix=".txt") as host_file:
        host_file.write("host secret")
        host_file.flush()
        os.chmod(host_file.name, 0o644)
        with Sandbox(config) as sb:
            print(f"isolation in force: {sb.isolation} ({STRENGTH[sb.isolation]})", file=out)
            failures = 0
            escape_name = f"rrtf-selftest-{os.getpid()}"
            table = probes(listener.getsockname()[1], host_file.name, config.nproc, escape_name)
            items = [(_probe_problem(str(i)), program, i) for i, (_, program, _) in enumerate(table)]
            verdicts = {v.sample_index: v for v in sb.check_many(items)}
            for i, (probe_name, _, expect) in enumerate(table):
                v = verdicts[i]
                if expect == "contained":
                    ok = v.passed
                    detail = "" if ok else (v.tests[0].error if v.tests else v.reason)
                elif expect == "not passed":
                    ok = v.status != Status.PASSED
                    detail = f"{v.status.label}: {v.reason}"
                else:
                    ok = v.status == Status.RUNTIME_ERROR and v.reason.startswith(expect)
                    detail = f"{v.status.label}: {v.reason}"
                failures += not ok
                print(f"{'PASS' if ok else 'FAIL'}  {probe_name}{'' if ok and expect == 'contained' else '  (' + detail[:120] + ')'}",
                      file=out)
            # The pool survives all of the above and still judges correctly.
            good = Problem(task_id="selftest/sanity", prompt="", entry_point="add",
                           test="def check(candidate):\n    assert candidate(2, 3) == 5\n")
            start = time.monotonic()
            v = sb.check(good, "def add(a, b):\n    return a + b\n")
            ok = v.passed
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'}  pool still judges correctly afterwards "
                  f"({(time.monotonic() - start) * 1000:.0f} ms)", file=out)
    listener.close()
    for path in escape_paths(escape_name):  # what a weak level let the probe write
        if os.path.isfile(path) and os.stat(path).st_uid != 0:
            os.unlink(path)
    print(f"{'all probes passed' if not failures else f'{failures} probe(s) FAILED'}", file=out)
    return 0 if not failures else 1
