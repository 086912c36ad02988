"""The few Linux system calls the spawner needs that Python 3.11's `os` lacks, through ctypes.

Each returns False (never raises) when the call is not available or not permitted, so the spawner
can fall back to its weaker path and say so: at the bwrap level the worker holds CAP_SYS_ADMIN in
its sandbox and every one of them works (the selftest checks).
"""
from __future__ import annotations

import os

CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 0x2

try:
    import ctypes

    _libc = ctypes.CDLL(None, use_errno=True)
except (ImportError, OSError):  # an interpreter built without ctypes: the fallback paths run
    ctypes = None
    _libc = None


def _call(name: str, *args) -> bool:
    if _libc is None:
        return False
    try:
        return getattr(_libc, name)(*args) == 0
    except (AttributeError, TypeError, ValueError):
        return False


def new_pid_namespace_for_children() -> bool:
    """Make this process's *next* child the first process (pid 1) of a fresh PID namespace: when
    that child dies, the kernel kills everything else in the namespace and no process can leave it."""
    return _call("unshare", CLONE_NEWPID)


def restore_pid_namespace(own_ns_fd: int) -> bool:
    """Undo `new_pid_namespace_for_children` for later children (setns to our own namespace)."""
    return _call("setns", own_ns_fd, CLONE_NEWPID)


def mount_tmpfs(path: str, *, uid: int, size_mb: int, inodes: int) -> bool:
    """A private tmpfs at `path`, owned by `uid`, mode 0700: a candidate's whole work dir, freed at
    once by `detach` however the candidate shaped it (1,500-deep chains included)."""
    options = f"size={size_mb}m,nr_inodes={inodes},mode=0700,uid={uid},gid={uid}".encode()
    return _call("mount", b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options)


def detach(path: str) -> bool:
    """Lazy unmount: the tree disappears now and its memory is freed when the last user is gone."""
    return _call("umount2", os.fsencode(path), MNT_DETACH)


def set_not_dumpable() -> bool:
    """No same-uid process may trace this one or read its memory (/proc/PID/mem), whatever the
    system's suid_dumpable setting (a uid change already clears the flag where it is 0)."""
    return _call("prctl", 4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def close_all_but(keep: set[int]) -> None:
    """Close every fd not in `keep` (what a freshly forked process must not hold)."""
    low = 0
    for fd in sorted(keep) + [1 << 16]:
        if low < fd:  # never an empty range: CPython 3.11 turns closerange(n, n) into "close all from n"
            os.closerange(low, fd)
        low = fd + 1
