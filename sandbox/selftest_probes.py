"""The selftest's probes: real attacks, each a candidate judged like any other.

A probe is (name, problem, program, expectation). Expectations: "contained" -- the probe's tests
must pass (for isolation probes: `probe()` returned "contained"; for probes of the harness itself,
its trusted test code checked the guarantee); "not passed"; "lost" -- the sample's harness was lost
(and nothing else); any other text -- a runtime error whose reason starts with it.
"""
from __future__ import annotations

from sandbox.base.records import IOCase, Problem
from sandbox.worker.protocol import JOB_LIMIT

PROBE_TEST = "def check(candidate):\n    outcome = candidate()\n    assert outcome == 'contained', outcome\n"
SECRET_VAR = "RRTF_SELFTEST_SECRET"


def probe_problem(name: str, test: str = PROBE_TEST) -> Problem:
    return Problem(task_id=f"selftest/{name}", prompt="", entry_point="probe", test=test)


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


# --------------------------------------------------------------------------- the judge's guarantees

# Trusted test code (selftest problems are the selftest's own): what the harness can reach.
HARNESS_VIEW_TEST = '''
import os, sys
def check(candidate):
    path = candidate()
    try:
        open(path).read()
        seen = "read " + path
    except OSError:
        seen = "contained"
    assert seen == "contained", seen
    assert os.listdir(".") == [], "harness cwd not empty"
    assert not any(os.access(entry or ".", os.W_OK) for entry in sys.path + ["."]), "harness can write its cwd or path"
'''
PLANT = '''
import os
def probe():
    os.chmod(".", 0o777)
    open("note.txt", "w").write("candidate data")
    os.chmod("note.txt", 0o666)
    return os.path.abspath("note.txt")
'''
# Names a module whose import runs test discovery in the importer's cwd, after planting a package
# there that would make every test pass.
NAMED_MODULE = '''
import os, types
PAYLOAD = (
    "import sys\\n"
    "for m in list(sys.modules.values()):\\n"
    "    for o in list(getattr(m, '__dict__', {}).values()):\\n"
    "        if isinstance(o, type) and hasattr(o, 'report_case'):\\n"
    "            o.report_case = lambda self, i, e, _o=o.report_case: _o(self, i, None)\\n")
open("__init__.py", "w").write(PAYLOAD)
os.chmod(".", 0o777)
discover = types.ModuleType("unittest.__main__")
def probe():
    return "escaped"
'''
# Trusted test code playing a compromised harness: garbage to every pipe it holds (one is the host's).
GARBLED_FRAME_TEST = '''
import os, stat
def check(candidate):
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, (0xFFFFFFF0).to_bytes(4, "big") + b"[" * 100000)
        except OSError:
            pass
    assert candidate() == "contained"
'''
TAINT_TEST = '''
import sys
def check(candidate):
    for m in list(sys.modules.values()):
        for o in list(getattr(m, "__dict__", {}).values()):
            if isinstance(o, type) and hasattr(o, "report_case"):
                o.report_case = lambda self, i, e, _o=o.report_case: _o(self, i, None)
    assert candidate() == "contained"
'''
FORK_CHAIN = '''
import os, time
def probe():
    if os.fork() == 0:
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            try:
                if os.fork():
                    os._exit(0)
            except OSError:
                pass
        time.sleep(60)
        os._exit(0)
    return "contained"
'''
LEFTOVERS = '''
import os, time
def probe():
    time.sleep(1.5)  # the chain would be asleep by now, if anything of it were left
    mine, others = os.getuid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open("/proc/%s/status" % pid).read()
        except OSError:
            continue
        uid = int(status.split("Uid:")[1].split()[0])
        if uid >= 200000 and uid != mine and status.split("State:")[1].split()[0] not in "ZX":
            others.append(pid)
    return "contained" if not others else "left running: %s" % others[:5]
'''


def guarantee_probes() -> list[tuple[str, Problem, str, str]]:
    big = "def probe():\n    return 'contained'\n#" + "x" * (JOB_LIMIT + 1) + "\n"
    return [
        ("processes: the candidate is alone in its own PID namespace", probe_problem("pidns"),
         "import os\ndef probe():\n    return 'contained' if os.getpid() == 1 else 'pid %d' % os.getpid()\n", "contained"),
        ("processes: no user namespaces", probe_problem("userns"),
         "import ctypes\ndef probe():\n    libc = ctypes.CDLL(None, use_errno=True)\n"
         "    return 'created one' if libc.unshare(0x10000000) == 0 else 'contained'\n", "contained"),
        ("harness: cannot read candidate files; empty, read-only cwd", probe_problem("view", HARNESS_VIEW_TEST), PLANT,
         "contained"),
        ("harness: modules a candidate names are never imported", probe_problem("named"), NAMED_MODULE, "not passed"),
        ("host: a garbled frame costs only its own sample", probe_problem("frame", GARBLED_FRAME_TEST),
         "def probe():\n    return 'contained'\n", "lost"),
        ("host: an oversized sample is a verdict", probe_problem("big"), big, "input_too_large"),
        ("fidelity: big integers and in-place changes cross the boundary",
         Problem(task_id="selftest/fidelity", prompt="", entry_point="f", test_list=[
             "import math\nassert f(2000) == math.factorial(2000)", "xs = [3, 1, 2]\nsort_it(xs)\nassert xs == [1, 2, 3]",
             "assert kind(1) is int"]),
         "import math\ndef f(n):\n    return math.factorial(n)\ndef sort_it(xs):\n    xs.sort()\ndef kind(x):\n"
         "    return type(x)\n", "contained"),
    ]


def one_worker_probes() -> list[tuple[str, list[tuple[Problem, str, str]]]]:
    """Probes whose steps must run in order in the same worker."""
    wrong = probe_problem("wrong")
    return [
        ("processes: nothing of a fork chain outlives its candidate",
         [(probe_problem("chain"), FORK_CHAIN, "contained"), (probe_problem("leftovers"), LEFTOVERS, "contained")]),
        ("harness: a tainted harness never judges the next job",
         [(probe_problem("taint", TAINT_TEST), "def probe():\n    return 'contained'\n", "contained"),
          (wrong, "def probe():\n    return 'wrong'\n", "not passed")]),
    ]


CPP_PREFIX = "#include<unistd.h>\n#include<fcntl.h>\n#include<string>\nusing namespace std;\nbool is_even(int n){\n"
# Moves the report channel under its own pipe before the harness starts, captures the harness's lines,
# and forges reports from them on the real channel.
CPP_REDIRECT = r"""    extern int real_fd, captured[2];
    char buf[4096];
    ssize_t k = read(captured[0], buf, sizeof buf);
    if (k > 0) {
        std::string text(buf, (size_t)k), tag = text.substr(0, text.find(' ')), out;
        for (int i = 0; i < 4; i++) out += tag + " " + std::to_string(i) + " P\n";
        out += tag + " END\n" + text;
        ssize_t w = write(real_fd, out.data(), out.size());
        (void)w;
        _exit(0);
    }
    return false;
}
int real_fd = -1, captured[2] = {-1, -1};
__attribute__((constructor(100))) static void grab() {
    real_fd = dup(3);
    if (pipe(captured) == 0) { dup2(captured[1], 3); fcntl(captured[0], F_SETFL, O_NONBLOCK); }
}
"""
JAVA_EQUALS_PREFIX = "import java.util.*;\n\nclass Solution {\n    public List<Integer> evens(int n) {\n"
JAVA_EQUALS_TEST = """public class Main {
    public static void main(String[] args) {
        Solution s = new Solution();
        List<Boolean> correct = Arrays.asList(s.evens(5).equals(Arrays.asList(0, 2, 4)), s.evens(1).equals(Arrays.asList(0)));
        if (correct.contains(false)) {
            throw new AssertionError();
        }
    }
}
"""


def compiled_probes(languages: set[str]) -> list[tuple[str, Problem, str, str]]:
    out = []
    if "cpp" in languages:
        even = Problem(task_id="selftest/cpp", prompt=CPP_PREFIX, code_prefix=CPP_PREFIX, entry_point="is_even", language="cpp",
                       test="#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (is_even(2));\n    assert (!is_even(3));\n}\n")
        out.append(("C++: reports cannot be forged by capturing the harness's channel", even, CPP_REDIRECT, "not passed"))
        stdio = Problem(task_id="selftest/cpp-io", prompt="", language="cpp", io_cases=[IOCase("", "3\n")])
        out.append(("C++: forged stdin/stdout report lines are only output", stdio,
                    '#include <cstdio>\nint main() { printf("3\\n@@rrtf- CASE zz 0 0\\n"); }\n', "not passed"))
    if "java" in languages:
        java = Problem(task_id="selftest/java", prompt=JAVA_EQUALS_PREFIX, code_prefix=JAVA_EQUALS_PREFIX, entry_point="evens",
                       language="java", test=JAVA_EQUALS_TEST)
        forged = ("        return new ArrayList<Integer>() {\n            @Override public boolean equals(Object o) { return true; }\n"
                  "        };\n    }\n}\n")
        out.append(("Java: a returned object's own equals() never answers for it", java, forged, "not passed"))
    return out
