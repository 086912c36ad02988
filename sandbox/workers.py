"""Host side of one warm worker: the in-sandbox package sandbox/worker/ running in bubblewrap.

Everything that comes back from a worker is parsed as hostile input, with the same protocol module
the worker uses (sandbox/worker/protocol.py): frames are bounded (`REPORT_LIMIT`) before anything is
buffered, any malformed, oversized or unexpected frame is a `WorkerLost`, and what a job reports is
folded at once into a bounded `Tally`. So the host's memory per worker is bounded by one frame
(1 MiB raw, plus its decoded form, transiently) and one tally, whatever a worker sends; a worker that
sends garbage costs its job (`harness_lost`) and is replaced.
"""
from __future__ import annotations

import fcntl
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox import seccomp
from sandbox.config import SandboxConfig
from sandbox.isolation import bwrap_argv, drop_privileges_argv, python_executable, unshare_prefix
from sandbox.packages import SITE, make_site_dir, site_binds
from sandbox.supervise import cpu_and_wall, stop_server
from sandbox.verdicts import Tally
from sandbox.worker.protocol import JOB_LIMIT, REPORT_LIMIT, FrameReader, ProtocolError, encode

PACKAGE = Path(__file__).with_name("worker")
IN_SANDBOX = "/rrtf"  # the package is bound read-only at /rrtf/worker
EMPTY_DIR = "/rrtf/empty"  # the harness's working directory: empty, nobody can write it
BOOT = "import sys; sys.path.append({root!r}); from worker.zygote import main; main()"
# The sandbox's root keeps only these: CAP_SYS_ADMIN for the spawner's per-candidate PID namespace
# and tmpfs, CAP_SETUID/SETGID to start harnesses and candidates under their own uids, the rest to
# set up and clean up directories. Harnesses and candidates drop all of them.
WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SYS_ADMIN")
PIPE_SIZE = 1 << 20  # jobs up to this size queue in the pipe without blocking the host thread
MAX_JOBS_PER_WORKER = 2000  # recycle a worker now and then: bounds whatever state builds up
F_SETPIPE_SZ = 1031
MAX_HARNESS_DEATHS = 3  # harnesses lost in a row before the worker itself is replaced
PENDING_REPORTS_LIMIT = 4 * REPORT_LIMIT  # reports read ahead while a job is written (honest ones: ~100 KB per job)
WORKER_SLACK_S = 30  # a (re)started worker, its harness's fork and the job's frames, beyond the job's own time


def job_deadline(job: dict) -> float:
    """When the host stops waiting on a worker for one job: after the job's program budget (the harness's
    own deadline), one case's timeout (per-case timers may still be running when that budget ends) and the
    worker's slack."""
    _, wall_s = cpu_and_wall(job["program_timeout_s"], slack_s=job["timeout_s"] + WORKER_SLACK_S)
    return time.monotonic() + wall_s


class WorkerLost(RuntimeError):
    pass


class Worker:
    """One worker process. `submit(job)` queues a job, `collect(job, tally)` reads its reports."""

    def __init__(self, config: SandboxConfig, isolation: str, index: int):
        self.config, self.isolation, self.index = config, isolation, index
        self.proc: subprocess.Popen | None = None
        self.reader: FrameReader | None = None
        self.host_dir: str | None = None
        self.restarts = 0
        self.jobs = 0  # submitted since start: the n-th job is judged by the n-th harness
        self.harness_deaths = 0  # in a row

    def argv(self) -> tuple[list[str], list[int]]:
        py = [python_executable(), "-I", "-S", "-B", "-c"]
        opts = ["--tmpfs-mb", str(self.config.work_tmpfs_mb), "--jobs-per-harness", str(self.config.jobs_per_harness)]
        opts += ["--debug"] if self.config.debug else []
        if self.isolation == "bwrap":
            fd = seccomp.filter_fd()
            # The work area belongs to root inside (0711): candidates write only in their own tmpfs.
            packages = site_binds()
            prefix = bwrap_argv(tmpfs_mb=self.config.work_tmpfs_mb, caps=WORKER_CAPS, bind_python=True,
                                work_perms="0711", bind_to={str(PACKAGE): f"{IN_SANDBOX}/worker", **packages},
                                empty_dirs=[EMPTY_DIR], seccomp_fd=fd)
            opts += ["--site", SITE] if packages else []
            return prefix + py + [BOOT.format(root=IN_SANDBOX), "--workroot", "/work", "--empty", EMPTY_DIR] + opts, (
                [fd] if fd is not None else [])
        self.host_dir = tempfile.mkdtemp(prefix="rrtf-worker-")
        os.chmod(self.host_dir, 0o711)
        empty = os.path.join(self.host_dir, "empty")
        os.mkdir(empty, 0o555)
        opts += ["--site", make_site_dir(self.host_dir)]
        prefix = unshare_prefix() if self.isolation == "unshare" else []
        boot = BOOT.format(root=str(PACKAGE.parent))
        return prefix + py + [boot, "--workroot", self.host_dir, "--empty", empty, "--weak"] + opts, []

    def start(self) -> None:
        argv, fds = self.argv()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=None if self.config.debug else subprocess.DEVNULL, pass_fds=fds,
                                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True,
                                         cwd=self.host_dir or "/")
        finally:
            for fd in fds:
                os.close(fd)
        try:
            fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        self.reader = FrameReader(self.proc.stdout.fileno(), REPORT_LIMIT)
        self.jobs = 0
        try:
            hello = self._next_frame(time.monotonic() + 60)
        except (WorkerLost, ProtocolError) as exc:
            self.stop()
            raise WorkerLost(f"worker {self.index} did not start: {exc}") from None
        if "hello" not in hello:
            self.stop()
            raise WorkerLost(f"worker {self.index} did not start: {str(hello)[:200]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None
        if self.host_dir:
            _reap_strays(self.host_dir)
            shutil.rmtree(self.host_dir, ignore_errors=True)
            self.host_dir = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _next_frame(self, deadline: float) -> dict:
        if self.proc is None:
            raise WorkerLost("worker stopped")
        fd = self.proc.stdout.fileno()
        while True:
            frame = self.reader.pop()  # ProtocolError on anything malformed or oversized
            if frame is not None:
                return frame
            if self.reader.eof:
                raise WorkerLost(f"worker exited (code {self.proc.poll()})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerLost("worker stopped answering")
            if select.select([fd], [], [], remaining)[0]:
                self.reader.feed()

    def submit(self, job: dict) -> int:
        """Queue a job (the worker is started or restarted as needed); returns its ordinal. The
        frame is built first: ValueError if it is over the limit (nothing is sent then)."""
        frame = encode(job, JOB_LIMIT)
        if not self.alive or self.jobs >= MAX_JOBS_PER_WORKER:
            self.stop()
            self.start()
        self.jobs += 1
        self._write(frame, job_deadline(job))
        return self.jobs

    def _write(self, data: bytes, deadline: float) -> None:
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        try:
            os.set_blocking(fd, False)
            while view:
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WorkerLost("worker does not read its jobs") from None
                    # The worker reads the next job only once the running one is done, and that one
                    # may be blocked writing reports (an evalplus job reports ~1,000 cases) that nobody
                    # reads while we wait here: read them meanwhile, up to a bound.
                    out = [self.proc.stdout.fileno()] if len(self.reader.buf) < PENDING_REPORTS_LIMIT else []
                    readable, _, _ = select.select(out, [fd], [], remaining)
                    if readable:
                        self.reader.feed()
        except OSError as exc:  # BrokenPipeError: the worker is gone
            raise WorkerLost(f"worker gone ({exc})") from None

    def collect(self, job: dict, ordinal: int, tally: Tally) -> None:
        """Fold the job's reports into `tally` until its "done". If the worker dies, stops answering
        or sends anything malformed, it is stopped (restarted on the next submit) and the job is lost
        with what was reported so far -- it can never count as passed."""
        deadline = job_deadline(job)
        try:
            while True:
                frame = self._next_frame(deadline)
                if frame.get("harness_died") == ordinal:  # the worker itself is fine: keep it
                    tally.lose(f"harness died: {str(frame.get('status'))[:100]}")
                    self.harness_deaths += 1
                    if self.harness_deaths >= MAX_HARNESS_DEATHS:  # unless it keeps happening
                        self.restarts += 1
                        self.stop()
                    return
                if frame.get("id") != job["id"]:
                    continue
                if frame.get("done") is True:
                    self.harness_deaths = 0
                    duration = frame.get("duration_s")
                    tally.duration_s = float(duration) if type(duration) in (int, float) else 0.0
                    return
                msgs = frame.get("msgs")
                for msg in msgs if isinstance(msgs, list) else ():
                    tally.absorb(msg)
        except (WorkerLost, ProtocolError, OSError) as exc:
            self.restarts += 1
            self.stop()
            tally.lose(f"worker: {exc}")


def _reap_strays(host_dir: str) -> None:
    """Weak levels only: there is no pid namespace to tear down, so kill candidate uids by hand."""
    root = os.path.join(host_dir, "c")
    for entry in os.listdir(root) if os.path.isdir(root) else []:
        if entry.isdigit():
            subprocess.run(drop_privileges_argv(int(entry)) + ["kill", "-9", "-1"], capture_output=True)
