"""What a fresh machine needs, checked on this one: every executable the sandbox runs is installed (by
scripts/setup.sh, from the packages the language modules declare), every language judges a right and a
wrong answer, and the selftest fails -- naming the language and its packages -- when one cannot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.languages import NAMES
from sandbox.registry import ISOLATION_PACKAGE, debian_packages, languages, tools

ROOT = Path(__file__).resolve().parents[1]


def selftest(env: dict[str, str], *args: str, patch: str = "") -> subprocess.CompletedProcess:
    code = f"import sys\n{patch}\nfrom sandbox.cli import main\nsys.exit(main(['selftest', *sys.argv[1:]]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=900)


def test_setup_installs_what_every_language_module_declares():
    listed = subprocess.run([sys.executable, "-m", "sandbox", "packages"], capture_output=True, text=True, check=True).stdout.split()
    assert listed == debian_packages()
    assert listed[0] == ISOLATION_PACKAGE
    for lang in languages():
        assert set(lang.debian_packages) <= set(listed), lang.name
        assert lang.selftest["language"] == lang.name
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "python -m sandbox packages" in setup  # the script installs the list, it keeps none of its own


def test_every_executable_the_sandbox_runs_is_installed():
    found = tools()
    assert found, "no tools listed"
    missing = sorted(tool for tool, path in found.items() if not path)
    assert not missing, f"not installed here: {missing} (bash scripts/setup.sh dev installs them)"


@pytest.mark.slow
def test_every_language_judges_with_a_cache_under_tmp(tmp_path):
    """A cache root under /tmp (the sandbox mounts a fresh /tmp: its binds must come after it), built from
    nothing: the Go build cache, the Rust crates and the javac server's classes are made and seen."""
    run = selftest({"RRTF_CACHE": str(tmp_path / "cache")}, "--languages", *NAMES)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for name in NAMES:
        assert f"PASS  {name}: a right answer passes, a wrong one fails" in run.stdout


@pytest.mark.slow
def test_selftest_fails_naming_the_language_when_its_crates_cannot_build(tmp_path):
    """The fresh-machine failure itself: Debian's crates present without their dependencies (regex without
    what it needs), so the one-time cargo build fails; the selftest must exit non-zero and say so."""
    registry = tmp_path / "registry"
    registry.mkdir()
    for crate in ("rand", "regex", "md5"):  # the three crates alone, none of what they depend on
        for d in Path("/usr/share/cargo/registry").glob(f"{crate}-[0-9]*"):
            (registry / d.name).symlink_to(d)
    patch = f"import sandbox.languages.rust as rust\nrust.REGISTRY = {str(registry)!r}"
    run = selftest({"RRTF_CACHE": str(tmp_path / "cache")}, "--languages", "rust", patch=patch)
    assert run.returncode == 1, run.stdout[-3000:]
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("FAIL  rust"))
    assert "could not be built" in line and "librust-regex-dev" in line and "error" in line


def test_selftest_fails_naming_a_missing_compiler(tmp_path):
    patch = "import sandbox.languages.rust as rust\nrust.RUSTC = '/nonexistent/rustc'"
    run = selftest({"RRTF_CACHE": str(tmp_path / "cache")}, "--languages", "rust", "python", patch=patch)
    assert run.returncode == 1
    assert "PASS  python: a right answer passes" in run.stdout
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("FAIL  rust"))
    assert "toolchain missing" in line and "rustc" in line
