"""Third-party packages a candidate program may import: an allow-list of pure-Python packages that
benchmarks' own evaluation environments offer (LeetCodeDataset's solutions use `sortedcontainers`).

Each one installed on the host is bound read-only into the worker's sandbox under `SITE`, which
only candidate processes put on their `sys.path` (sandbox/worker/candidate.py): the harness imports
nothing a candidate can name, and nothing else of the host's site-packages is visible. A package
that is not installed is simply not offered (the program's import fails as before).
"""
from __future__ import annotations

import importlib.util
import os

CANDIDATE_PACKAGES = ("sortedcontainers",)
SITE = "/rrtf/site"


def package_dirs() -> dict[str, str]:
    """{package name: its directory on the host} for the allow-listed packages installed here."""
    out = {}
    for name in CANDIDATE_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        locations = list(spec.submodule_search_locations or []) if spec else []
        if len(locations) == 1 and os.path.isdir(locations[0]):
            out[name] = os.path.realpath(locations[0])
    return out


def site_binds() -> dict[str, str]:
    """bubblewrap binds: host package dir -> `SITE`/name."""
    return {path: f"{SITE}/{name}" for name, path in package_dirs().items()}


def make_site_dir(parent: str) -> str:
    """At the weak isolation levels: a directory of symlinks to the packages, for `sys.path`."""
    site = os.path.join(parent, "site")
    os.makedirs(site, exist_ok=True)
    for name, path in package_dirs().items():
        os.symlink(path, os.path.join(site, name))
    return site
