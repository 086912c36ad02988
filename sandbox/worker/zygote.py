"""The in-sandbox worker's main process. Standard library only; runs as `python -I -S` inside
bubblewrap, this package bound read-only (sandbox/workers.py starts it).

    zygote (sandbox root) -- talks to the host over fds 0/1; never reads a job itself
    |-- spawner (sandbox root) -- forked at start-up, before any job: starts and ends candidates
    |   `-- candidate (random unprivileged uid; pid 1 of its own PID namespace, own tmpfs)
    `-- harness (one per job; random unprivileged uid, no capabilities, not dumpable) -- forked
        from the zygote *before* it reads its job from the host pipe; judges that one job, exits.

A harness never outlives its job, so nothing a job did -- even one that compromised its harness --
can change how a later job is judged: each starts from the zygote's clean image. The next harness
is forked while the current one works (off the critical path) and waits for a "go" byte, so jobs
are read from the host pipe one at a time, in order. The zygote tells the host when a harness
died before finishing its job (`harness_died`, with the job's ordinal), so the host need not wait
for a deadline.

The harness runs in an empty directory it cannot write, and cannot enter the directory that holds
the candidates' work dirs (its group is shut out of it), so even a code path that tried to import
or read what a candidate wrote would find nothing.
"""
from __future__ import annotations

import builtins
import os
import random
import resource
import signal
import socket
import sys

from . import linux
from .failures import CaseTimeout, describe_status
from .job import run_job
from .protocol import HEADER, JOB_LIMIT, ProtocolError, recv_frame, send_frame, write_all
from .spawner import spawner_main
from .testns import TEST_MODULES

HARNESS_GID = 99_999  # shut out of the candidates' directory by its group permissions (0701)
HARNESS_UIDS = (100_000, 199_999)  # one random uid per harness
HARNESS_MEMORY = 4 << 30  # parses what candidates send: a hostile answer fails its job, nothing else
HARNESS_CPU_S = 600
EXIT_EOF = 4  # the host closed the pipe: the worker is being stopped
EXIT_DONE = 86  # the job was judged and "done" sent (test code calling os._exit(0) is not that)
# Imported by the spawner, so every candidate process starts with them loaded. Kept short on
# purpose: each loaded module makes every fork and exit of a candidate process slower.
CANDIDATE_PREIMPORT = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
                       "copy", "operator", "random", "resource", "encodings.idna")
# Weak isolation levels run the interpreter from where it is installed, which the candidate's uid
# may not be allowed to read (e.g. pyenv under /root): pre-load more of what programs import.
CANDIDATE_PREIMPORT_WEAK = ("hashlib", "statistics", "fractions", "decimal", "datetime", "calendar", "textwrap",
                            "array", "cmath", "numbers", "struct", "dataclasses", "enum", "queue", "unicodedata",
                            "json", "time", "collections.abc", "io", "contextlib", "types", "traceback", "abc",
                            "fnmatch", "glob", "pathlib", "tempfile", "shutil", "copyreg", "pprint")


class _Quitter:
    """`exit()` / `quit()` as the site module defines them (python -S leaves them out)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        raise SystemExit(code)


def _options(argv: list[str]) -> dict:
    opts = {"workroot": "/work", "empty": "/rrtf/empty", "tmpfs_mb": 256, "debug": False, "weak": False}
    it = iter(argv)
    for arg in it:
        if arg in ("--debug", "--weak"):
            opts[arg[2:]] = True
        elif arg in ("--workroot", "--empty", "--tmpfs-mb"):
            value = next(it)
            opts[arg[2:].replace("-", "_")] = int(value) if arg == "--tmpfs-mb" else value
    return opts


def _preimport(names) -> None:
    for name in names:
        try:
            __import__(name)
        except ImportError:
            pass


def _candidate_root(workroot: str) -> str:
    """The directory of all candidate work dirs: candidates may pass through it (0701) to their own,
    the harness's group may not even do that."""
    root = os.path.join(workroot, "c")
    os.makedirs(root, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(root, 0, HARNESS_GID)
    os.chmod(root, 0o701)
    return root


def become_harness(empty_dir: str) -> None:
    """Drop everything a harness does not need, before it sees any job."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(HARNESS_GID)
        os.setuid(random.randint(*HARNESS_UIDS))  # clears all capabilities
    linux.set_not_dumpable()
    os.chdir(empty_dir)
    # RLIMIT_NPROC 1: its uid is its own, so it cannot fork -- nothing of it outlives its job.
    for limit, value in ((resource.RLIMIT_AS, HARNESS_MEMORY), (resource.RLIMIT_CPU, HARNESS_CPU_S),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 1)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    sys.set_int_max_str_digits(0)  # test code may print factorial(2000); the boundary has its own bound
    signal.signal(signal.SIGALRM, _alarm)


def _alarm(signum, frame):
    raise CaseTimeout("timeout")


def harness_main(job_fd: int, host_out: int, spawner: socket.socket, empty_dir: str) -> None:
    """A forked harness: read its one job from its private pipe, judge it, exit. Never returns."""
    code = 1
    try:
        become_harness(empty_dir)
        try:
            job = recv_frame(job_fd, JOB_LIMIT)
        except ProtocolError:
            os._exit(2)
        if job is None:
            os._exit(EXIT_EOF)
        os.close(job_fd)
        run_job(job, host_out, spawner)
        code = EXIT_DONE
    except BaseException:  # the host sees no "done": the job is lost, never passed
        code = 1
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    opts = _options(sys.argv[1:] if argv is None else argv)
    builtins.exit, builtins.quit = _Quitter("exit"), _Quitter("quit")
    host_in, host_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if opts["debug"] else (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    root = _candidate_root(opts["workroot"])
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        os.close(host_in)
        os.close(host_out)
        ours.close()
        _preimport(CANDIDATE_PREIMPORT + (CANDIDATE_PREIMPORT_WEAK if opts["weak"] else ()))
        spawner_main(theirs, root, opts["tmpfs_mb"], mounts=not opts["weak"])
        os._exit(0)
    theirs.close()
    _preimport(TEST_MODULES)  # what a test may use, loaded before any harness forks
    send_frame(host_out, {"hello": {"pid": os.getpid(), "python": sys.version.split()[0]}})
    serve(host_in, host_out, ours, opts["empty"])


def _fork_harness(host_in: int, host_out: int, spawner: socket.socket, empty_dir: str) -> tuple[int, int]:
    job_r, job_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(job_w)
        os.close(host_in)  # a harness reads its own job only: never the host's pipe of later ones
        harness_main(job_r, host_out, spawner, empty_dir)
    os.close(job_r)
    return pid, job_w


def _pass_job(host_in: int, job_w: int, devnull: int) -> bool | None:
    """Move the next job frame from the host's pipe into a harness's private pipe, without the
    zygote ever holding its content (splice: kernel to kernel). None at EOF; False if the harness
    died before reading it all (the rest is discarded)."""
    head = b""
    while len(head) < HEADER.size:
        chunk = os.read(host_in, HEADER.size - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = HEADER.unpack(head)
    if n > JOB_LIMIT:
        os._exit(1)  # the host never sends this: the stream is broken, the host restarts us
    alive = True
    try:
        write_all(job_w, head)
    except OSError:
        alive = False
    while n:
        if alive:
            try:
                moved = os.splice(host_in, job_w, n)
            except OSError:
                alive = False
                continue
        else:
            moved = os.splice(host_in, devnull, n)
        if not moved:
            return None
        n -= moved
    return alive


def serve(host_in: int, host_out: int, spawner: socket.socket, empty_dir: str) -> None:
    ordinal = 0
    devnull = os.open(os.devnull, os.O_WRONLY)
    upcoming = _fork_harness(host_in, host_out, spawner, empty_dir)
    while True:
        pid, job_w = upcoming
        passed = _pass_job(host_in, job_w, devnull)
        os.close(job_w)
        if passed is None:
            os._exit(0)  # the host closed the pipe: the worker is being stopped
        ordinal += 1
        upcoming = _fork_harness(host_in, host_out, spawner, empty_dir)  # off the critical path
        _, status = os.waitpid(pid, 0)
        spawner.send(b'{"reap": true}')  # nothing of this job's candidates outlives its harness
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_DONE):
            try:
                send_frame(host_out, {"harness_died": ordinal, "status": describe_status(status)})
            except OSError:
                os._exit(1)


if __name__ == "__main__":
    main()
