"""Process isolation: detect what this machine can enforce and build the command line that enforces
it (`isolated_command`); sandbox/supervise.py runs such commands under limits.

Levels, strongest first:
- "bwrap": bubblewrap mount/pid/net/ipc/uts namespaces, read-only system dirs, a size-capped private
  tmpfs as the only writable place, scrubbed environment; the program runs as an unprivileged uid.
- "unshare": util-linux `unshare` net/pid/ipc/uts/mount namespaces + unprivileged uid; the host file
  system is visible (read-only for that uid except world-writable dirs such as /tmp).
- "none": rlimits, unprivileged uid (when root) and process-tree kill only.
Anything weaker than "bwrap" is refused unless the caller opts in (`allow_weak`).
"""
from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox import seccomp

LEVELS = ("bwrap", "unshare", "none")
STRENGTH = {"bwrap": "strong", "unshare": "medium", "none": "weak"}
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Extra files from /etc that programs need (dynamic linker cache, `alternatives` symlinks used by
# java/javac, the JDK's config, the time zone). The rest of /etc stays invisible.
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "java-17-openjdk",
               "java-21-openjdk", "ssl/openssl.cnf")
# Top-level dirs that are symlinks into /usr on merged-usr systems, or real dirs elsewhere.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/opt")


class IsolationError(RuntimeError):
    """Strong isolation is not available and the caller did not opt in to a weaker level."""


def candidate_uid() -> int:
    """An unprivileged uid no real account uses; random so that concurrent sandboxes don't share
    RLIMIT_NPROC accounting or signal permissions."""
    return random.randrange(200_000, 2_000_000)


def _which(name: str) -> str | None:
    return shutil.which(name, path=SANDBOX_PATH)


def python_prefix() -> str:
    """Install prefix of the interpreter (not the venv): what the sandbox must see to run python."""
    return os.path.realpath(sys.base_prefix)


def python_executable() -> str:
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(exe)


def bwrap_argv(*, work_dir: str = "/work", tmpfs_mb: int = 256, extra_ro_binds: list[str] | tuple = (),
               caps: tuple[str, ...] = ("CAP_SETUID", "CAP_SETGID"), env: dict[str, str] | None = None,
               files: dict[str, int] | None = None, dirs: list[str] | tuple = (),
               bind_python: bool = False, work_perms: str = "1777", bind_to: dict[str, str] | None = None,
               empty_dirs: list[str] | tuple = (), seccomp_fd: int | None = None) -> list[str]:
    """The bwrap prefix: read-only system dirs, fresh namespaces (no network), a private tmpfs at
    `work_dir` (size-capped, `work_perms`: world-writable by default, the program's only writable
    place), a cleared environment, and only `caps` kept for the sandbox's root (the command drops
    to an unprivileged uid). `files` maps a destination path to an fd whose content bwrap copies
    there; `dirs` are created (world-writable) in the work dir first. `bind_to` maps host paths to
    sandbox paths (read-only), `empty_dirs` are created empty and read-only for everyone, and
    `seccomp_fd` holds the filter every process of the sandbox runs under (sandbox/seccomp.py)."""
    argv = ["bwrap"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    # The private tmpfs mounts come before any bind: a later mount hides what lies below it, and a cache
    # under /tmp (RRTF_CACHE=/tmp/...) holds the toolchains' prebuilt parts the programs must see.
    argv += ["--perms", "0755", "--size", str(64 << 20), "--tmpfs", "/tmp",
             "--perms", work_perms, "--size", str(tmpfs_mb << 20), "--tmpfs", work_dir]
    made: set[str] = {"/tmp", work_dir}

    def parents(path: str) -> list[str]:
        # bwrap creates missing parents of a mount point 0700, which would lock the unprivileged
        # program out of e.g. /etc/java-17-openjdk or the interpreter's stdlib: make them 0755.
        out = []
        for parent in reversed(Path(path).parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for entry in ETC_ENTRIES:
        if os.path.exists(f"/etc/{entry}"):
            argv += parents(f"/etc/{entry}") + ["--ro-bind", f"/etc/{entry}", f"/etc/{entry}"]
    binds = list(extra_ro_binds)
    if bind_python:
        binds.append(python_prefix())
    for path in binds:
        path = os.path.realpath(path)
        if not any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS if not os.path.islink(d)):
            argv += parents(path) + ["--ro-bind", path, path]
    for src, dest in (bind_to or {}).items():
        argv += parents(dest) + ["--ro-bind", src, dest]
    for path in empty_dirs:
        argv += parents(path) + ["--perms", "0555", "--dir", path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for d in dirs:
        argv += ["--perms", "1777", "--dir", d]
    for dest, fd in (files or {}).items():
        argv += ["--perms", "0644", "--file", str(fd), dest]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--clearenv", "--chdir", work_dir, "--cap-drop", "ALL"]
    for cap in caps:
        argv += ["--cap-add", cap]
    for key, value in {"PATH": SANDBOX_PATH, "HOME": work_dir, "LANG": "C.UTF-8", **(env or {})}.items():
        argv += ["--setenv", key, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv


def drop_privileges_argv(uid: int) -> list[str]:
    """Become `uid` (no groups, no capabilities, no way to regain privileges) and exec the rest."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def detect_isolation() -> str:
    """The strongest level that actually works here (tried once per process, then cached)."""
    if _which("bwrap") and _probe(bwrap_argv() + ["true"]) and _probe(
            bwrap_argv() + drop_privileges_argv(candidate_uid()) + ["true"]):
        return "bwrap"
    if _which("unshare") and _probe(unshare_prefix() + ["true"]):
        return "unshare"
    return "none"


def require_isolation(requested: str | None, allow_weak: bool) -> str:
    """Resolve the level to use; refuse anything weaker than bwrap unless the user opted in."""
    level = requested or detect_isolation()
    if level not in LEVELS:
        raise IsolationError(f"unknown isolation level {level!r}; known: {', '.join(LEVELS)}")
    if level != "bwrap" and not allow_weak:
        available = detect_isolation()
        raise IsolationError(
            f"refusing to run untrusted code: strong isolation (bubblewrap) is "
            f"{'not available on this machine' if available != 'bwrap' else 'available but not selected'}"
            f" (best available: {available!r}, requested: {level!r}). Install bubblewrap and allow "
            f"namespaces, or opt in to weaker isolation with SandboxConfig(allow_weak_isolation=True) / "
            f"--allow-weak-isolation.")
    return level


def unshare_prefix() -> list[str]:
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts", "--mount", "--mount-proc"]


@dataclass
class IsolatedCommand:
    """A command line ready to start at some isolation level (`isolated_command`)."""
    argv: list[str]
    cwd: str | None
    env: dict[str, str]
    pass_fds: list[int]
    uid: int
    reap: bool  # kill what the uid left running afterwards (no pid namespace dies with it)


@contextlib.contextmanager
def isolated_command(argv: list[str], *, files: dict[str, bytes] | None = None, isolation: str,
                     extra_ro_binds: list[str] | tuple = (), as_root: tuple[str, ...] | None = None,
                     bind_to: dict[str, str] | None = None,
                     bind_python: bool = False, tmpfs_mb: int = 256):
    """`argv` wrapped for isolation level `isolation`, in a fresh private work dir holding `files`;
    the fds and the work dir it needs live until the block ends (start the process inside it)."""
    if isolation not in LEVELS:
        raise IsolationError(f"unknown isolation level {isolation!r}")
    uid = candidate_uid()
    files = files or {}
    fds: list[int] = []
    host_dir = None
    drop = [] if as_root is not None else drop_privileges_argv(uid)
    try:
        if isolation == "bwrap":
            fd_map = {}
            for name, data in files.items():
                fd = os.memfd_create("f", 0)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.lseek(fd, 0, os.SEEK_SET)
                fds.append(fd)
                fd_map[f"/work/{name}"] = fd
            # Sub-directories of the files must exist in the tmpfs before --file writes there.
            dirs = sorted({str(p) for f in fd_map for p in Path(f).parents if str(p).startswith("/work/")})
            seccomp_fd = seccomp.filter_fd()
            if seccomp_fd is not None:
                fds.append(seccomp_fd)
            cmd = bwrap_argv(tmpfs_mb=tmpfs_mb, extra_ro_binds=extra_ro_binds, dirs=dirs, files=fd_map,
                             caps=as_root if as_root is not None else ("CAP_SETUID", "CAP_SETGID"),
                             work_perms="0755" if as_root is not None else "1777", bind_to=bind_to,
                             bind_python=bind_python, seccomp_fd=seccomp_fd)
            cmd += drop + list(argv)
            cwd = None
        else:
            host_dir = tempfile.mkdtemp(prefix="rrtf-run-")
            for name, data in files.items():
                path = Path(host_dir, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            if os.geteuid() == 0 and as_root is None:
                for root, dirnames, filenames in os.walk(host_dir):
                    for n in [root] + [os.path.join(root, x) for x in dirnames + filenames]:
                        os.chown(n, uid, uid)
            base = unshare_prefix() if isolation == "unshare" else []
            cmd = base + drop + list(argv)
            cwd = host_dir
        env = {"PATH": SANDBOX_PATH, "HOME": cwd or "/work", "LANG": "C.UTF-8"}
        yield IsolatedCommand(cmd, cwd, env, fds, uid, reap=isolation != "bwrap" and as_root is None)
    finally:
        for fd in fds:
            os.close(fd)
        if host_dir:
            shutil.rmtree(host_dir, ignore_errors=True)
