"""The runner's processes (sandbox/worker/runner.py): each program of a run is started under a uid of its
own with exactly the fds it is given, drained through bounded buffers, and ended with whatever it left running.
Kept apart from the runner's building and judging so that those read as what they do."""
from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import time

PATH = "/usr/local/bin:/usr/bin:/bin"
UID_RANGE = (2_000_001, 3_000_000)


class Processes:
    """Needs `uids` (name -> uid), `others` (pid -> wait status or None), `own_pidns`, `privileged`."""

    def uid(self, name: str) -> int:
        if name not in self.uids:
            used = set(self.uids.values())
            uid = int.from_bytes(os.urandom(4), "big") % (UID_RANGE[1] - UID_RANGE[0]) + UID_RANGE[0]
            self.uids[name] = uid + 1 if uid in used else uid
        return self.uids[name]

    def start(self, argv: list[str], *, as_uid: str, cwd: str, fds: dict[int, int], limits: dict) -> int:
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=PATH) or argv[0]
        env = {"PATH": PATH, "HOME": cwd, "LANG": "C.UTF-8"}
        uid = self.uid(as_uid)
        pid = os.fork()
        if pid == 0:
            try:
                high = {target: os.dup(fd) for target, fd in fds.items()}  # no clash while dup2-ing
                for target, fd in high.items():
                    os.dup2(fd, target)
                os.closerange(max(fds) + 1, 1 << 16)
                os.chdir(cwd)
                os.setsid()
                for name, value in limits.items():
                    if value is not None:
                        resource.setrlimit(getattr(resource, name), (value, value))
                if self.privileged:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                os.execve(exe, argv, env)
            except BaseException:
                pass
            os.exit_info(127)
        return pid

    def end_everything(self, pid: int, kill_all: bool = True, grace_s: float = 0.0) -> None:
        """Kill the program and whatever it left running. In the sandbox's own PID namespace every
        process but init and this one belongs to the run: kill(-1) takes them all at once. Compile
        steps (`kill_all` False; others may be running) end with their process group."""
        for other in self.others:  # the candidate's program: its own end first, then it goes with the rest
            self.others[other] = self.reap(other, grace_s) if self.others[other] is None else self.others[other]
        if kill_all and self.own_pidns and self.privileged:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        else:
            for target in (-pid, pid, *(p for q in (self.others if kill_all else ()) for p in (-q, q))):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass

    @staticmethod
    def reap(pid: int, grace_s: float) -> int:
        """The wait status of a program of the run, or -1 when it is still running after `grace_s`.
        The grace matters: the test's program exiting closes the candidate's calls, and the candidate
        then exits too -- or it had crashed a moment before and is still on its way out; either way
        its status must be read, not guessed from a race."""
        until = time.monotonic() + grace_s
        while True:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                return st
            if time.monotonic() >= until:
                return -1
            time.sleep(0.002)

    def wait(self, pid: int, deadline: float, readers: dict[int, list], kill_all: bool = True) -> tuple[int | None, bool]:
        """Drain `readers` (fd -> [bytearray, cap, total]) until the program exits and its pipes
        close, or the deadline passes. Returns (wait status or None, timed out)."""
        status, timed_out, exited_at = None, False, None
        while readers:
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status, exited_at = st, time.monotonic()
                    self.end_everything(pid, kill_all, grace_s=0.5)  # leftovers must not hold the pipes open
            now = time.monotonic()
            if status is None and now >= deadline:
                timed_out = True
                self.end_everything(pid, kill_all)
                _, status = os.waitpid(pid, 0)
                exited_at = now
            if exited_at is not None and time.monotonic() - exited_at > 1.0:
                break
            ready, _, _ = select.select(list(readers), [], [], 0.05 if status is not None else min(0.2, max(0.0, deadline - now)))
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    del readers[fd]
                    continue
                buf, cap, _ = readers[fd]
                readers[fd][2] += len(chunk)
                buf += chunk[:max(0, cap - len(buf))]
        if status is None:  # its pipes closed first: it is exiting, and the rest of the run goes with it
            _, status = os.waitpid(pid, 0)
            self.end_everything(pid, kill_all, grace_s=0.5)
        return status, timed_out


def feed_input(fd: int, data: bytes) -> int:
    """Give a case its input. What fits in the pipe is written at once; a larger input is fed by a
    child (returned, to be reaped), so a program that does not read cannot block the runner."""
    if len(data) <= 65536:
        try:
            os.write(fd, data)
        except OSError:
            pass
        os.close(fd)
        return 0
    pid = os.fork()
    if pid == 0:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            pass
        os.exit_info(0)
    os.close(fd)
    return pid


def exit_info(status: int | None, timed_out: bool) -> dict:
    if status is None:
        return {"rc": None, "signal": None, "timed_out": timed_out}
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        return {"rc": None, "signal": name, "timed_out": timed_out}
    return {"rc": os.WEXITSTATUS(status), "signal": None, "timed_out": timed_out}


def megabytes(value) -> int | None:
    return None if value is None else int(value) << 20


def as_text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "replace")
