"""A host cache for build artefacts the sandbox reads (C++ precompiled header, the warm javac's
classes): built once per machine from trusted inputs only, then bound read-only into sandboxes."""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_root() -> Path:
    """The project's one cache directory (rrtf.paths re-exports it): RRTF_CACHE, else /var/cache/rrtf
    as root (a home directory is usually 0700, and the sandbox's unprivileged uid must read what is
    bound from here), else $XDG_CACHE_HOME/rrtf. Anywhere, /tmp included: the sandbox mounts its own
    /tmp and work dir before it binds these read-only (tests/test_fresh_machine.py)."""
    if os.environ.get("RRTF_CACHE"):
        return Path(os.environ["RRTF_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/rrtf")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rrtf"


def build_once(name: str, marker: str, build: Callable[[Path], bool]) -> Path | None:
    """`cache_root()/name`, built by `build(tmp_dir)` if `marker` isn't there yet; None if the build
    fails. Safe against concurrent builders (file lock, atomic rename); the result is world-readable
    so the sandbox's unprivileged uid can use it."""
    root = cache_root() / "tools"
    target = root / name
    if (target / marker).exists():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        for d in (root.parent, root):
            os.chmod(d, 0o755)
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / marker).exists():
                return target
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
            try:
                if not build(tmp) or not (tmp / marker).exists():
                    return None
                for dirpath, _, filenames in os.walk(tmp):
                    os.chmod(dirpath, 0o755)
                    for f in filenames:
                        os.chmod(os.path.join(dirpath, f), 0o644)
                os.replace(tmp, target)
                _prune_older(root, name)
                return target
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        return None


def _prune_older(root: Path, name: str) -> None:
    """Drop earlier builds of the same artefact (`<kind>-<key>` with another key): a new compiler or
    new flags make them useless, and a precompiled header is ~50 MB."""
    kind = name.rsplit("-", 1)[0]
    for old in root.glob(f"{kind}-*"):
        if old.name != name and old.name.rsplit("-", 1)[0] == kind:
            shutil.rmtree(old, ignore_errors=True)
