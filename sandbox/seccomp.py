"""A seccomp filter for everything inside a sandbox: no new user namespaces.

A process that creates a user namespace holds every capability inside it and can build new mount
and network namespaces: kernel attack surface a judged program never needs. bubblewrap's own
`--disable-userns` needs `--unshare-user`, which maps only one uid into the sandbox -- our design
gives each candidate its own uid (and the worker's root CAP_SETUID to switch to it), so that flag
does not fit here. Instead bwrap loads this filter (`--seccomp FD`) for all processes it starts:

- `unshare` and `clone` with CLONE_NEWUSER fail with EPERM (PID namespaces, which the spawner makes
  for each candidate, stay allowed);
- `clone3` fails with ENOSYS: its flags are in memory a filter cannot read, and glibc then falls back
  to `clone` (threads of the JVM included), where the flags are checked;
- system calls of another ABI (i386, x32) fail with ENOSYS, so none of the above can be bypassed
  through a second syscall table.

Measured cost: none visible (a handful of BPF instructions per system call). Architectures other
than x86_64 and aarch64 get no filter (the selftest's user-namespace probe then fails, loudly).
"""
from __future__ import annotations

import os
import platform
import struct

CLONE_NEWUSER = 0x10000000
EPERM, ENOSYS = 1, 38
# (audit arch, unshare, clone, clone3) for the architectures we know
ARCHES = {
    "x86_64": (0xC000003E, 272, 56, 435),
    "aarch64": (0xC00000B7, 97, 220, 435),
}
X32_BIT = 0x40000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low 32 bits, little-endian)


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def no_userns_filter(machine: str | None = None) -> bytes | None:
    """The compiled classic-BPF program (what bwrap's --seccomp reads), or None if unsupported."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr_unshare, nr_clone, nr_clone3 = arch
    return b"".join([
        _ins(_LD_W_ABS, _ARCH),
        _ins(_JEQ_K, audit_arch, 1, 0),
        _ins(_RET_K, _ERRNO | ENOSYS),          # another ABI
        _ins(_LD_W_ABS, _NR),
        _ins(_JGE_K, X32_BIT, 0, 1),
        _ins(_RET_K, _ERRNO | ENOSYS),          # x32 system call numbers
        _ins(_JEQ_K, nr_clone3, 0, 1),
        _ins(_RET_K, _ERRNO | ENOSYS),          # clone3: flags unreadable here; glibc falls back to clone
        _ins(_JEQ_K, nr_unshare, 1, 0),
        _ins(_JEQ_K, nr_clone, 0, 3),
        _ins(_LD_W_ABS, _ARG0),                 # unshare(flags) / clone(flags, ...)
        _ins(_JSET_K, CLONE_NEWUSER, 0, 1),
        _ins(_RET_K, _ERRNO | EPERM),
        _ins(_RET_K, _ALLOW),
    ])


def filter_fd() -> int | None:
    """A fresh fd holding the filter, positioned at its start (bwrap reads it once); the caller
    passes it to bwrap and closes it afterwards. None where no filter exists for this machine."""
    program = no_userns_filter()
    if program is None:
        return None
    fd = os.memfd_create("rrtf-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
