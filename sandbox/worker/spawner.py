"""The spawner: starts candidate processes and makes sure each one ends completely.

Forked by the zygote at start-up, before any job: its memory never holds tests or programs. It runs
as the sandbox's root (with CAP_SYS_ADMIN inside the sandbox) and serves requests from the current
harness over a socket: a request carries only fds and limits.

Each candidate is the first process of its own PID namespace and works in its own tmpfs:
- the end of its process tree is certain, not a race: when it dies (killed, or on its own), the
  kernel kills every process left in its namespace, and nothing can leave the namespace. A fork
  chain that outruns any scan-and-kill cannot outrun that.
- its files go with it: the tmpfs is detached, whatever the candidate made of it (a 1,500-deep
  directory chain is freed by the kernel; no recursion here).
Where the kernel refuses these (weak isolation levels without the privileges), the spawner falls
back to killing the candidate's uid by scanning /proc, and removing its directory iteratively.

A candidate lives until its harness closes the candidate's lifeline pipe (or dies, which closes it
too): then the spawner kills it. Its exit status goes back on the status pipe once everything of it
is gone. The next candidate is forked ahead of time (a "standby"), off the critical path.
"""
from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import time
import traceback
from dataclasses import dataclass

from . import linux
from .candidate import standby_main

UID_RANGE = (200_000, 2_000_000)  # candidate uids: no real account, no clash with the harness's
MAX_LIVE = 4  # candidates alive at once per worker (a harness needs one, plus one being cleaned up)
INODES = 200_000  # per candidate tmpfs
HARNESS = b'{"harness": true}'


@dataclass
class Child:
    pid: int
    uid: int
    workdir: str
    mounted: bool
    own_pidns: bool
    ctl: socket.socket | None = None  # standby only: where its assignment goes
    status_fd: int = -1
    lifeline: int = -1
    owner: int = -1  # the harness connection it was started for


class Spawner:
    def __init__(self, sock: socket.socket, root: str, tmpfs_mb: int, mounts: bool = True):
        self.sock, self.root, self.tmpfs_mb, self.mounts = sock, root, tmpfs_mb, mounts
        self.children: dict[int, Child] = {}
        self.harnesses: dict[int, socket.socket] = {}  # fd -> the connection of one harness
        try:
            self.own_ns = os.open("/proc/self/ns/pid", os.O_RDONLY)
        except OSError:
            self.own_ns = -1
        self.pidns_ok = self.own_ns >= 0
        self.standby = self.prefork()

    # -- making candidates ------------------------------------------------------------------------
    def prefork(self) -> Child:
        uid = random.randrange(*UID_RANGE)
        workdir = os.path.join(self.root, str(uid))
        os.mkdir(workdir, 0o700)
        mounted = self.mounts and linux.mount_tmpfs(workdir, uid=uid, size_mb=self.tmpfs_mb, inodes=INODES)
        if not mounted:
            os.chown(workdir, uid, uid)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        own_pidns = self.pidns_ok and linux.new_pid_namespace_for_children()
        pid = os.fork()
        if pid == 0:
            linux.close_all_but({0, 1, 2, theirs.fileno()})
            standby_main(theirs, workdir, uid)
            os._exit(70)
        if own_pidns and not linux.restore_pid_namespace(self.own_ns):
            self.pidns_ok = False  # our later children would nest in this namespace: stop using them
        theirs.close()
        return Child(pid, uid, workdir, mounted, own_pidns, ctl=ours)

    def assign(self, msg: bytes, fds: list[int], owner: int = -1) -> None:
        """Hand the standby its fds: [rpc, stdout_w, stderr_w, status_w, stdin_r, lifeline_r]."""
        if len(fds) != 6:
            raise ValueError(f"expected 6 fds, got {len(fds)}")
        status_fd = fds[3]
        try:
            req = json.loads(msg)
            rlimits = req["rlimits"]
            if not (isinstance(rlimits, list) and all(isinstance(r, list) and len(r) == 2 for r in rlimits)):
                raise ValueError("bad rlimits")
            if len(self.children) >= MAX_LIVE:
                raise ValueError("too many live candidates")
            child = self.standby
            socket.send_fds(child.ctl, [json.dumps({"rlimits": rlimits}).encode()], [fds[0], fds[1], fds[2], fds[4]])
            child.ctl.close()
            child.ctl = None
            child.status_fd, child.lifeline, child.owner = os.dup(status_fd), os.dup(fds[5]), owner
            self.children[child.pid] = child
            _write_status(child.status_fd, {"pid": child.pid})
            self.standby = self.prefork()  # while the candidate starts
        except (OSError, ValueError, KeyError, TypeError, RecursionError, MemoryError) as exc:  # a hostile request
            _write_status(status_fd, {"pid": 0, "status": -1, "error": str(exc)[:200]})
        finally:
            for fd in fds:
                os.close(fd)

    def from_harness(self, conn: socket.socket) -> None:
        """A request on a harness's own connection; its end (the harness exited, however) ends
        every candidate it started."""
        try:
            msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 8)
        except OSError:
            msg, fds = b"", []
        if msg:
            if len(fds) == 6:
                self.assign(msg, fds, owner=conn.fileno())
            else:
                for f in fds:
                    os.close(f)
            return
        for child in list(self.children.values()):
            if child.owner == conn.fileno():
                self.lifeline_cut(child)
                child.owner = -1
        del self.harnesses[conn.fileno()]
        conn.close()

    # -- ending candidates ------------------------------------------------------------------------
    def lifeline_cut(self, child: Child) -> None:
        if child.lifeline < 0:
            return  # already cut (its harness's connection and its lifeline can close together)
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(child.lifeline)
        child.lifeline = -1

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.standby.pid:  # should not happen; keep a standby ready regardless
                self.standby.ctl.close()
                self.clean_up(self.standby)
                self.standby = self.prefork()
            child = self.children.pop(pid, None)
            if child is not None:
                self.clean_up(child)
                _write_status(child.status_fd, {"status": status})
                os.close(child.status_fd)
                if child.lifeline >= 0:
                    os.close(child.lifeline)

    def clean_up(self, child: Child) -> None:
        if not child.own_pidns:  # its namespace ended with it; without one, hunt its uid down
            kill_uid(child.uid)
        if not (child.mounted and linux.detach(child.workdir)):
            remove_tree(child.workdir)
            return
        try:
            os.rmdir(child.workdir)
        except OSError:
            pass

    # -- loop -------------------------------------------------------------------------------------
    def handle(self, fd: int, wake_r: int, lifelines: dict[int, Child]) -> None:
        if fd == wake_r:
            _drain(wake_r)
        elif fd == self.sock.fileno():
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 8)
            except OSError:
                msg, fds = b"", []
            if not msg:
                os._exit(0)  # the zygote is gone
            if msg == HARNESS and len(fds) == 1:  # a new harness's own connection
                conn = socket.socket(fileno=fds[0])
                self.harnesses[conn.fileno()] = conn
                return
            for f in fds:
                os.close(f)
        elif fd in self.harnesses:
            self.from_harness(self.harnesses[fd])
        elif fd in lifelines:
            self.lifeline_cut(lifelines[fd])

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        while True:
            lifelines = {c.lifeline: c for c in self.children.values() if c.lifeline >= 0}
            ready, _, _ = select.select([self.sock.fileno(), wake_r, *self.harnesses, *lifelines], [], [])
            for fd in ready:
                try:
                    self.handle(fd, wake_r, lifelines)
                except Exception:  # a bug here must not take every later candidate of this worker
                    traceback.print_exc()
            try:
                self.reap()
            except Exception:
                traceback.print_exc()


def spawner_main(sock: socket.socket, root: str, tmpfs_mb: int, mounts: bool = True) -> None:
    """`mounts`: a tmpfs per candidate -- only inside the worker's own mount namespace (bwrap): at
    the weak levels it would be a mount on the host, left behind if the worker were killed."""
    try:
        Spawner(sock, root, tmpfs_mb, mounts).serve()
    except BaseException:
        traceback.print_exc()
    os._exit(1)


def _write_status(fd: int, msg: dict) -> None:
    try:
        os.write(fd, (json.dumps(msg) + "\n").encode())
    except OSError:
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


# --------------------------------------------------------------------------- fallbacks

def kill_uid(uid: int) -> None:
    """Kill every process of `uid` visible here, repeating while a forking process races us.
    Only used where a PID namespace per candidate is not available."""
    for _ in range(200):
        victims = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid and _alive(entry):
                        victims.append(int(entry))
                except OSError:
                    pass
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def remove_tree(root: str) -> None:
    """Remove `root` whatever its shape, with a constant number of fds and no recursion: the entries
    of each sub-directory are moved up into `root` (renamed) before it is removed, so no path grows.
    Only used where a tmpfs per candidate is not available (no process of the candidate is left)."""
    counter = 0
    progress = True
    while progress:
        progress = False
        try:
            entries = list(os.scandir(root))
        except FileNotFoundError:
            return
        except OSError:
            _chmod(root)
            entries = list(os.scandir(root))
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
                    progress = True
                    continue
                _chmod(entry.path)
                for sub in os.listdir(entry.path):
                    while os.path.lexists(os.path.join(root, f".rm{counter}")):
                        counter += 1
                    os.rename(os.path.join(entry.path, sub), os.path.join(root, f".rm{counter}"))
                os.rmdir(entry.path)
                progress = True
            except OSError:
                pass
    try:
        os.rmdir(root)
    except OSError:
        pass


def _chmod(path: str) -> None:
    try:
        os.chmod(path, 0o700, follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass
