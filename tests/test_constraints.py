"""constraints.txt is what a fresh machine installs (scripts/setup.sh uses it): every dependency the project
declares is pinned there, and the environment the tests run in has exactly those versions -- so CI tests the
versions a user gets, and a refresh that was not run through the suite shows up here."""
import re
from importlib import metadata
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$")
NOT_PINNED = {"torch", "rrtf"}  # torch: setup.sh pins a CPU build; a GPU machine brings its own


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            m = PIN.match(line.strip())
            assert m, f"constraints.txt: not a pin: {line!r}"
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for group in ("dev", "quantize") for r in project["optional-dependencies"][group]]
    names = {_norm(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in reqs}
    return names - NOT_PINNED


def test_every_declared_dependency_is_pinned():
    missing = _declared() - set(_pins())
    assert not missing, f"pyproject.toml declares {sorted(missing)} but constraints.txt does not pin them: run scripts/refresh_constraints.sh"


def test_the_tests_run_on_the_pinned_versions():
    wrong = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed vs constraints.txt: {wrong} -- install with scripts/setup.sh (pip -c constraints.txt)"
