"""Running a process under limits: rlimits, a wall-clock deadline that kills the whole process tree,
capped output (the rest drained and dropped), and the isolated variants (`run_isolated` for compilers
and compiled binaries, `start_isolated` for long-lived helpers) on top of `isolation.isolated_command`.
"""
from __future__ import annotations

import functools
import math
import os
import resource
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from sandbox.isolation import IsolatedCommand, drop_privileges_argv, isolated_command


def cpu_and_wall(run_s: float, *, runs: int = 1, compile_s: float = 0.0, compiles: int = 0,
                 slack_s: float = 0.0) -> tuple[int, float]:
    """THE rule that turns a time budget into (RLIMIT_CPU seconds, wall-clock seconds); every run with a
    time budget takes its limits from here (Python candidates, compiled programs, their compile steps and
    build tools, the isolated runner, the host's wait on a worker job, any `Limits` without an explicit
    cpu_s). Not budgets, so not here: the warm javac server's lifetime limits and the in-sandbox harness's
    own per-case timers (sandbox/worker/, standard library only: it receives the budgets computed here).

        wall = run_s * runs + compile_s * compiles + slack_s
        cpu  = ceil(wall) + 1

    The wall clock is what judges (a "timeout" verdict, the whole process tree killed); RLIMIT_CPU is
    only the backstop for a process whose watcher is late or gone, so it is whole seconds, one past the
    wall limit (a single-threaded program never reaches it first). The named parameters are where runs
    differ on purpose:
    - runs: a stdin/stdout problem runs the program once per case, each under run_s, so the runner that
      runs them all needs the sum;
    - compile_s, compiles: compiled languages compile first, each compile step under its own
      compile_s (counted one after another, also those that run in parallel: an upper bound);
    - slack_s: the fixed cost around the program of whatever runs it (the isolated runner's start and
      clean-up; for the host's wait on a worker, the case that may run past the program's budget and
      the worker's own start).
    """
    wall = run_s * runs + compile_s * compiles + slack_s
    return math.ceil(wall) + 1, wall


@dataclass
class Limits:
    timeout_s: float = 10.0  # wall clock, whole process tree killed after it
    cpu_s: float | None = None  # RLIMIT_CPU; None = cpu_and_wall(timeout_s)'s
    memory_mb: int | None = 1024  # RLIMIT_AS; None = no address-space limit (the JVM needs that)
    nproc: int = 64  # RLIMIT_NPROC for the program's uid (fork bombs)
    fsize_mb: int = 16  # RLIMIT_FSIZE: largest file the program may write
    nofile: int = 64  # RLIMIT_NOFILE
    output_limit_bytes: int = 1 << 20  # stdout and stderr each; the rest is drained and dropped
    tmpfs_mb: int = 256  # size of the private work area (bwrap level)

    def rlimits(self) -> list[tuple[int, int]]:
        cpu = int(self.cpu_s) if self.cpu_s is not None else cpu_and_wall(self.timeout_s)[0]
        out = [
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_NPROC, self.nproc),
            (resource.RLIMIT_FSIZE, self.fsize_mb << 20),
            (resource.RLIMIT_NOFILE, self.nofile),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.memory_mb is not None:
            out.append((resource.RLIMIT_AS, self.memory_mb << 20))
        return out


@dataclass
class ProcessResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool = False
    memory_exceeded: bool = False
    output_truncated: bool = False
    extra: dict = field(default_factory=dict)


def set_rlimits(limits: Limits) -> None:
    for which, value in limits.rlimits():
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def reap_uid(uid: int) -> None:
    """Kill every process of `uid` (in the host pid namespace): catches daemons that left the group."""
    if os.geteuid() == 0:
        subprocess.run(drop_privileges_argv(uid) + ["kill", "-9", "-1"], capture_output=True, timeout=10)


def run_isolated(argv: list[str], *, files: dict[str, bytes] | None = None, stdin: bytes = b"",
                 limits: Limits, isolation: str, extra_ro_binds: list[str] | tuple = (),
                 as_root: tuple[str, ...] | None = None, bind_to: dict[str, str] | None = None,
                 bind_python: bool = False) -> ProcessResult:
    """Run `argv` in a fresh private work dir holding `files`, isolated at level `isolation`, with
    rlimits and a wall-clock timeout that kills the whole process tree. The caller has already
    decided the level may be used (see `require_isolation`). By default the command runs as a
    fresh unprivileged uid; with `as_root` (a tuple of capabilities) it runs as the sandbox's root
    keeping only those, and drops privileges itself (sandbox/worker/runner.py)."""
    with isolated_command(argv, files=files, isolation=isolation, extra_ro_binds=extra_ro_binds, as_root=as_root,
                          bind_to=bind_to, bind_python=bind_python, tmpfs_mb=limits.tmpfs_mb) as c:
        return _run(c.argv, stdin=stdin, limits=limits, cwd=c.cwd, env=c.env, pass_fds=c.pass_fds, uid=c.uid,
                    reap=c.reap)


def start_isolated(argv: list[str], *, limits: Limits, isolation: str, bind_to: dict[str, str] | None = None,
                   bind_python: bool = False) -> tuple[subprocess.Popen, IsolatedCommand]:
    """Start a long-lived isolated helper with pipes on stdin and stdout (stderr dropped), under
    `limits`' rlimits; stop it with `stop_server` (and `reap_uid` when the command says `reap`)."""
    with isolated_command(argv, isolation=isolation, bind_to=bind_to, bind_python=bind_python,
                          tmpfs_mb=limits.tmpfs_mb) as c:
        proc = subprocess.Popen(c.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=c.cwd, env=c.env, pass_fds=c.pass_fds, start_new_session=True,
                                preexec_fn=functools.partial(set_rlimits, limits))
    return proc, c


def _run(cmd: list[str], *, stdin: bytes, limits: Limits, cwd: str | None, env: dict[str, str],
         pass_fds: list[int], uid: int, reap: bool) -> ProcessResult:
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=env, pass_fds=pass_fds, start_new_session=True,
                                preexec_fn=functools.partial(set_rlimits, limits))
    except OSError as exc:
        return ProcessResult(127, b"", f"cannot start {cmd[0]}: {exc}".encode(), 0.0)
    out, err, truncated, timed_out = drain(proc, stdin, limits.output_limit_bytes, start + limits.timeout_s)
    kill_tree(proc)  # also whatever the program left running in its process group
    rc = proc.wait()
    if reap:
        reap_uid(uid)
    duration = time.monotonic() - start
    timed_out = timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU) or (
        rc in (-signal.SIGKILL, 128 + signal.SIGKILL) and duration >= limits.timeout_s * 0.95)
    return ProcessResult(rc, out, err, duration, timed_out=timed_out,
                         memory_exceeded=looks_like_memory_error(rc, err), output_truncated=truncated)


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def stop_server(proc: subprocess.Popen) -> None:
    """Kill a long-lived helper process (a pool worker, a javac server), reap it, close its pipes."""
    kill_tree(proc)
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass


def drain(proc: subprocess.Popen, stdin: bytes, cap: int, deadline: float) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin and read stdout/stderr (each capped at `cap` bytes, the rest read and dropped, so a
    chatty program neither blocks nor fills memory) until both close or the deadline passes."""
    sel = selectors.DefaultSelector()
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    truncated = False
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    pending = memoryview(stdin)
    if stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    open_reads = 2
    timed_out = False
    exited_at = None
    try:
        while open_reads:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:
                break  # the program is done; a leftover background child holds the pipes open
            if exited_at is not None:
                remaining = min(remaining, 0.05)
            for key, _ in sel.select(min(remaining, 0.1)):
                f = key.fileobj
                if f is proc.stdin:
                    try:
                        n = os.write(f.fileno(), pending[:65536])
                        pending = pending[n:]
                    except (BrokenPipeError, OSError):
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(f)
                        f.close()
                    continue
                try:
                    chunk = os.read(f.fileno(), 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(f)
                    open_reads -= 1
                    continue
                buf = bufs[f]
                room = cap - len(buf)
                if len(chunk) > room:
                    truncated = True
                buf += chunk[:max(room, 0)]
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), truncated, timed_out


def looks_like_memory_error(returncode: int, stderr: bytes) -> bool:
    """Out-of-memory as each runtime reports it under RLIMIT_AS (a hint for `reason`, never for status)."""
    tail = stderr[-4096:]
    return returncode != 0 and any(m in tail for m in (
        b"MemoryError", b"std::bad_alloc", b"OutOfMemoryError", b"Cannot allocate memory",
        b"Could not reserve enough space", b"failed to map segment"))
