"""The in-sandbox worker's main process. Standard library only; runs as `python -I -S` inside
bubblewrap, this package bound read-only (sandbox/workers.py starts it).

    zygote (sandbox root) -- talks to the host over fds 0/1; moves jobs, never reads one
    |-- spawner (sandbox root) -- forked at start-up, before any job: starts and ends candidates
    |   `-- candidate (random unprivileged uid; pid 1 of its own PID namespace, own tmpfs)
    `-- harness (one per job; random unprivileged uid, no capabilities, not dumpable, cannot
        fork) -- forked from the zygote *before* its job exists; judges that one job, exits.

A harness never outlives its job, so nothing a job did -- even one that compromised its harness --
can change how a later job is judged: each starts from the zygote's clean image, and none can reach
another job's channels (sandbox/worker/jobs.py). The harness runs in an empty directory it cannot
write, and cannot enter the directory that holds the candidates' work dirs (its group is shut out
of it), so even a code path that tried to import or read what a candidate wrote would find nothing.
"""
from __future__ import annotations

import builtins
import gc
import os
import socket
import sys

from . import candidate
from .jobs import HARNESS_GID, Jobs, uid_change_makes_undumpable
from .protocol import send_frame
from .spawner import spawner_main
from .testns import TEST_MODULES

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
    opts = {"workroot": "/work", "empty": "/rrtf/empty", "tmpfs_mb": 256, "jobs_per_harness": 1, "debug": False,
            "weak": False, "site": ""}
    it = iter(argv)
    for arg in it:
        if arg in ("--debug", "--weak"):
            opts[arg[2:]] = True
        elif arg in ("--workroot", "--empty", "--tmpfs-mb", "--jobs-per-harness", "--site"):
            value = next(it)
            opts[arg[2:].replace("-", "_")] = int(value) if arg in ("--tmpfs-mb", "--jobs-per-harness") else value
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
    spawner = os.fork()
    if spawner == 0:
        os.close(host_in)
        os.close(host_out)
        ours.close()
        candidate.SITE = opts["site"]  # allow-listed packages (sandbox/packages.py): candidates only
        _preimport(CANDIDATE_PREIMPORT + (CANDIDATE_PREIMPORT_WEAK if opts["weak"] else ()))
        gc.collect()
        gc.freeze()  # candidates are forks of the spawner: the same reasoning as for harnesses below
        spawner_main(theirs, root, opts["tmpfs_mb"], mounts=not opts["weak"])
        os._exit(0)
    theirs.close()
    _preimport(TEST_MODULES)  # what a test may use, loaded before any harness forks
    send_frame(host_out, {"hello": {"pid": os.getpid(), "python": sys.version.split()[0]}})
    # Every harness is a fork of this process. A collection in a harness would walk (and write the
    # GC headers of) every object inherited from here, copying their pages; frozen, they are out of
    # the collector's reach (CPython's advice for fork servers: gc.freeze() before forking).
    gc.collect()
    gc.freeze()
    Jobs(host_in, host_out, ours, opts["empty"], uid_change_makes_undumpable(), spawner, opts["jobs_per_harness"]).serve()


if __name__ == "__main__":
    main()
