"""The zygote's side of the jobs: one fresh harness per job, jobs handed over in order.

Each harness is forked before its job exists and gets, as its own: a pipe its job arrives on (the
zygote moves the frame there with splice, never holding its content) and a connection to the
spawner (when it closes -- the harness exited, whatever way -- the spawner kills every candidate it
started). The next job goes to the next harness only when the previous one has exited: only one
harness exists that can report, so frames on the host's pipe never interleave, whatever a harness
does. A harness that exits without having judged its jobs is reported to the host with their
ordinals (`harness_died`).

`SandboxConfig.jobs_per_harness` (default 1) lets one harness judge several jobs in a row, for
speed: then a harness compromised by a job could misjudge the next ones it is given (and read them
from its pipe), up to that number -- a trade the default does not make (docs/sandbox.md, Costs).
"""
from __future__ import annotations

import os
import resource
import select
import signal
import socket
import sys
import traceback

from . import linux
from .failures import CaseTimeout, describe_status
from .job import run_job
from .protocol import HEADER, JOB_LIMIT, ProtocolError, recv_frame, send_frame, write_all

HARNESS_GID = 99_999  # shut out of the candidates' directory by its group permissions (0701)
HARNESS_UIDS = (100_000, 199_999)  # one random uid per harness
HARNESS_MEMORY = 4 << 30  # parses what candidates send: a hostile answer fails its job, nothing else
HARNESS_CPU_S = 600
# Decimal digits an int <-> str conversion may have in the harness (CPython's default is 4,300). Test
# code needs more (`str(candidate(3000))` of a factorial: ~9,000 digits), but not unbounded: the
# conversion is quadratic C code the per-case alarm cannot interrupt, and test code may convert what a
# candidate returned (`int(candidate(x))` of an 8-million-digit string took minutes). At this bound
# one conversion costs ~0.1 s.
HARNESS_INT_DIGITS = 100_000
EXIT_EOF = 4  # the host closed the pipe: the worker is being stopped
EXIT_DONE = 86  # the job was judged and "done" sent (test code calling os._exit(0) is not that)


def uid_change_makes_undumpable() -> bool:
    """After a uid change the kernel resets the dumpable flag to fs.suid_dumpable: 0 and 2 both
    keep same-uid processes from tracing it or reading its memory; only 1 (a debugging setting)
    would not, and then the harness says so itself (a prctl per harness otherwise saved)."""
    try:
        with open("/proc/sys/fs/suid_dumpable") as fh:
            return fh.read().strip() in ("0", "2")
    except OSError:
        return False


def become_harness(empty_dir: str, undumpable_by_setuid: bool) -> None:
    """Drop everything a harness does not need, before it sees any job."""
    changed_uid = os.geteuid() == 0
    if changed_uid:
        os.setgroups([])
        os.setgid(HARNESS_GID)
        span = HARNESS_UIDS[1] - HARNESS_UIDS[0]
        os.setuid(HARNESS_UIDS[0] + int.from_bytes(os.urandom(4), "big") % span)  # clears all capabilities
    if not (changed_uid and undumpable_by_setuid):
        linux.set_not_dumpable()
    os.chdir(empty_dir)
    # RLIMIT_NPROC 1: its uid is its own, so it cannot fork -- nothing of it outlives its job.
    for limit, value in ((resource.RLIMIT_AS, HARNESS_MEMORY), (resource.RLIMIT_CPU, HARNESS_CPU_S),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 1)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    sys.set_int_max_str_digits(HARNESS_INT_DIGITS)
    signal.signal(signal.SIGALRM, _alarm)


def _alarm(signum, frame):
    raise CaseTimeout("timeout")


def harness_main(job_fd: int, host_out: int, spawner: socket.socket, become) -> None:
    """A forked harness: read its job (by default one; more if the zygote gives it more) from its
    private pipe, judge it, exit at the pipe's end."""
    code = 1
    try:
        become()
        try:
            job = recv_frame(job_fd, JOB_LIMIT)
            if job is None:
                os._exit(EXIT_EOF)
            while job is not None:
                run_job(job, host_out, spawner)
                job = recv_frame(job_fd, JOB_LIMIT)
        except ProtocolError:
            os._exit(2)
        code = EXIT_DONE
    except BaseException:  # the host sees no "done": the job is lost, never passed
        traceback.print_exc()  # shown with SandboxConfig(debug=True)
        code = 1
    os._exit(code)


class Jobs:
    def __init__(self, host_in: int, host_out: int, spawner: socket.socket, empty_dir: str, undumpable: bool,
                 spawner_pid: int, per_harness: int = 1):
        self.host_in, self.host_out, self.spawner, self.spawner_pid = host_in, host_out, spawner, spawner_pid
        self.per_harness = max(1, per_harness)  # 1: a fresh harness per job
        self.empty_dir, self.undumpable = empty_dir, undumpable
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        self.running: dict[int, list[int]] = {}  # pid -> ordinals of the jobs given to it
        self.exited: dict[int, int] = {}  # pid -> status, of harnesses gone before their job
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)

    def fork_harness(self) -> tuple[int, int]:
        job_r, job_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        socket.send_fds(self.spawner, [b'{"harness": true}'], [theirs.fileno()])  # its own connection
        theirs.close()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            # Nothing of other jobs or of the zygote: not the host's job pipe, no other harness's pipe.
            linux.close_all_but({0, 1, 2, job_r, self.host_out, mine.fileno()})
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            harness_main(job_r, self.host_out, mine, lambda: become_harness(self.empty_dir, self.undumpable))
        os.close(job_r)
        mine.close()
        return pid, job_w

    def pass_job(self, job_w: int) -> bool | None:
        """Move the next job frame from the host's pipe into a harness's private pipe (splice:
        kernel to kernel). None at EOF; False if the harness died before reading it all."""
        head = b""
        while len(head) < HEADER.size:
            chunk = os.read(self.host_in, HEADER.size - len(head))
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
            try:
                moved = os.splice(self.host_in, job_w if alive else self.devnull, n)
            except OSError:
                alive = False
                continue
            if not moved:
                return None
            n -= moved
        return alive

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.spawner_pid:
                os._exit(1)  # no candidate can start any more: the host replaces this worker
            if pid not in self.running:
                self.exited[pid] = status  # a harness that died before it was given its job
                continue
            ordinals = self.running.pop(pid)
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_DONE):
                for ordinal in ordinals:
                    self.died(ordinal, status)

    def died(self, ordinal: int, status: int) -> None:
        try:
            send_frame(self.host_out, {"harness_died": ordinal, "status": describe_status(status)})
        except OSError:
            os._exit(1)

    def serve(self) -> None:
        ordinal = 0
        upcoming = self.fork_harness()
        while True:
            pid, job_w = upcoming
            self.reap()
            if pid in self.exited:  # it died while waiting for its turn: no job was lost with it
                del self.exited[pid]
                os.close(job_w)
                upcoming = self.fork_harness()
                continue
            given: list[int] = []
            self.running[pid] = given
            upcoming = None
            while len(given) < self.per_harness and pid in self.running:
                ready, _, _ = select.select([self.host_in, self.wake_r], [], [])
                if self.wake_r in ready:
                    self._drain_wake()
                    self.reap()
                    continue
                passed = self.pass_job(job_w)
                if passed is None:
                    os.close(job_w)
                    self.wait_exit(pid)
                    sys.exit(0)  # the host closed the pipe: the worker is being stopped
                ordinal += 1
                given.append(ordinal)
                if upcoming is None:
                    upcoming = self.fork_harness()  # off the critical path
                if not passed:
                    break
            os.close(job_w)  # the harness exits after its last job
            if upcoming is None:
                upcoming = self.fork_harness()
            self.wait_exit(pid)

    def wait_exit(self, pid: int) -> None:
        while pid in self.running:
            select.select([self.wake_r], [], [])
            self._drain_wake()
            self.reap()

    def _drain_wake(self) -> None:
        try:
            while os.read(self.wake_r, 256):
                pass
        except BlockingIOError:
            pass
