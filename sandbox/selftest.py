"""`python -m sandbox selftest`: print the isolation level in force and attack it for real.

Each probe is a candidate program judged by the sandbox like any other (sandbox/selftest_probes.py):
escapes (network, files, processes, privileges, environment), resource limits, and the judge's own
guarantees -- a harness that cannot read what candidates write nor be tainted by an earlier job,
candidates alone in their PID namespace with no user namespaces, nothing left of a fork chain, a host
that survives garbled frames and oversized samples, values of any size crossing the boundary, and
(where the compilers are installed) C++ and Java report channels that cannot be forged.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

from sandbox.base.records import Problem, Status, Verdict
from sandbox.config import SandboxConfig
from sandbox.isolation import STRENGTH, detect_isolation
from sandbox.languages import Language
from sandbox.pool import Sandbox
from sandbox.registry import language_record, tool_path
from sandbox.registry import languages as registered_languages
from sandbox.selftest_probes import (
    SECRET_VAR,
    compiled_probes,
    escape_paths,
    guarantee_probes,
    one_worker_probes,
    probe_problem,
    probes,
)


def _judge(v: Verdict, expect: str) -> tuple[bool, str]:
    if expect == "contained":
        return v.passed, "" if v.passed else (v.tests[0].error if v.tests else v.reason)
    detail = f"{v.status.label}: {v.reason}"
    if expect == "not passed":
        return v.status != Status.PASSED, detail
    if expect == "lost":
        return v.status != Status.PASSED and v.reason.startswith("harness_lost"), detail
    return v.status == Status.RUNTIME_ERROR and v.reason.startswith(expect), detail


def _line(ok: bool, name: str, detail: str, expect: str) -> str:
    shown = "" if ok and expect == "contained" else f"  ({detail[:120]})"
    return f"{'PASS' if ok else 'FAIL'}  {name}{shown}"


def language_problems(names: tuple[str, ...] | None = None) -> list[tuple[Language, Problem]]:
    """The problems `language_checks` judges: each language's `selftest` (every registered language by default)."""
    records = registered_languages() if names is None else tuple(language_record(name) for name in names)
    return [(lang, Problem.from_record(dict(lang.selftest))) for lang in records]


def installed_languages() -> set[str]:
    """Languages whose every tool is installed here: those whose forgery probes (compiled_probes) can run."""
    return {lang.name for lang in registered_languages() if all(tool_path(tool) for tool in lang.tools)}


def language_checks(sb: Sandbox, names: tuple[str, ...] | None, out) -> int:
    """Each language judges its record's selftest problem: the right answer passes, the wrong one fails
    on its tests (not on a missing toolchain). A language that cannot judge here is a failure naming
    the Debian packages it needs, so a machine that cannot judge Rust never passes the selftest."""
    from sandbox.compiled.toolchain import MISSING

    failures = 0
    for lang, problem in language_problems(names):
        name = lang.name
        right, wrong = sb.check_many([(problem, problem.canonical_solution, 0), (problem, problem.buggy_solution, 1)])
        if right.sample_index:
            right, wrong = wrong, right
        cannot = next((v.reason for v in (right, wrong) if v.reason.startswith(MISSING) or v.status == Status.COMPILE_ERROR), "")
        ok = right.passed and not wrong.passed and not cannot
        # every language but Python's in-process fallback runs the candidate in a process of its own (docs/sandbox.md):
        # a machine where the selftest problem keeps one process has lost that, whatever the verdicts say
        together = right.isolation.endswith("+one-process")
        failures += not ok or together
        if ok and not together:
            print(f"PASS  {name}: a right answer passes, a wrong one fails (isolation {right.isolation})", file=out)
            continue
        if ok:
            print(f"FAIL  {name}: judged right, but the candidate ran in the test's process ({right.isolation})", file=out)
            continue
        why = cannot or f"right answer: {right.status.label} {right.reason[:100]}; wrong answer: {wrong.status.label}"
        packages = ", ".join(lang.debian_packages) or "none"
        print(f"FAIL  {name}: cannot judge here ({why[:300]}); it needs the Debian package(s) {packages} "
              f"(bash scripts/setup.sh installs them)", file=out)
    return failures


def run_selftest(config: SandboxConfig, out=sys.stdout, languages: tuple[str, ...] | None = None) -> int:
    """Every probe, then each language's right and wrong answer (these `languages`; default: every registered one)."""
    detected = detect_isolation()
    print(f"isolation available on this machine: {detected} ({STRENGTH[detected]})", file=out)
    os.environ[SECRET_VAR] = "should-not-leak"
    config = SandboxConfig(**{**config.__dict__, "timeout_s": min(config.timeout_s, 2.0),
                              "program_timeout_s": min(config.program_timeout_s, 4.0)})
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    failures = 0
    escape_name = f"rrtf-selftest-{os.getpid()}"
    with tempfile.NamedTemporaryFile("w", prefix="rrtf-selftest-", suffix=".txt") as host_file:
        host_file.write("host secret")
        host_file.flush()
        os.chmod(host_file.name, 0o644)
        table = [(name, probe_problem(str(i)), program, expect) for i, (name, program, expect)
                 in enumerate(probes(listener.getsockname()[1], host_file.name, config.nproc, escape_name))]
        table += guarantee_probes()
        with Sandbox(config) as sb:
            print(f"isolation in force: {sb.isolation} ({STRENGTH[sb.isolation]})", file=out)
            # Compiled runs take a core each for a second: after the timed Python probes, not among them.
            for batch in (table, compiled_probes(installed_languages())):
                items = [(problem, program, i) for i, (_, problem, program, _) in enumerate(batch)]
                verdicts = {v.sample_index: v for v in sb.check_many(items)}
                for i, (name, _, _, expect) in enumerate(batch):
                    ok, detail = _judge(verdicts[i], expect)
                    failures += not ok
                    print(_line(ok, name, detail, expect), file=out)
            failures += language_checks(sb, languages, out)
            # The pool survives all of the above and still judges correctly.
            good = Problem(task_id="selftest/sanity", prompt="", entry_point="add",
                           test="def check(candidate):\n    assert candidate(2, 3) == 5\n")
            start = time.monotonic()
            ok = sb.check(good, "def add(a, b):\n    return a + b\n").passed
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'}  pool still judges correctly afterwards "
                  f"({(time.monotonic() - start) * 1000:.0f} ms)", file=out)
        with Sandbox(SandboxConfig(**{**config.__dict__, "workers": 1})) as one:  # steps in the same worker
            for name, steps in one_worker_probes():
                results = [_judge(one.check(problem, program), expect) for problem, program, expect in steps]
                ok = all(r[0] for r in results)
                failures += not ok
                print(_line(ok, name, "; ".join(d for r_ok, d in results if not r_ok), "contained"), file=out)
    listener.close()
    for path in escape_paths(escape_name):  # what a weak level let the probe write
        if os.path.isfile(path) and os.stat(path).st_uid != 0:
            os.unlink(path)
    print(f"{'all probes passed' if not failures else f'{failures} probe(s) FAILED'}", file=out)
    return 0 if not failures else 1
