"""Judge Java and C++ candidates: compile, then run in a fresh isolated work dir; count tests per case.

Two test formats:
- HumanEval style (`problem.test` is a test main): the test is rewritten so every check is its own
  case (sandbox/java.py, sandbox/cpp.py) reporting to a dedicated channel, not stdout.
- stdin/stdout (`problem.io_cases`): compile once, run once per case, compare stdout after
  normalising trailing whitespace.

Speed: Java compiles in a warm, isolated javac server (sandbox/javac_server.py; class files only go
into the run sandbox), C++ uses a precompiled header of the HumanEval preamble (cpp.py). Without
them (isolation below bwrap, no cache dir) the compiler runs in the run sandbox.

Unforgeable reporting. The host draws a random nonce per run and gives it to the run script as its
only stdin line; the script passes it on as the program's only stdin line, which the harness reads
before any candidate code runs (Java: first statement of main; C++: a priority-101 constructor,
before the candidate's global initialisers). The nonce is in no file, argv or environment the
program can read. The harness reports `<nonce> <case> P|F ...` lines on fd 3: write-only, to a file
already deleted (and mode 0200), so the program can't read back a report to learn the nonce. Only
lines with the nonce count, and PASSED needs the harness's END line, exit status 0 and every case
passed: `System.exit(0)` / `exit(0)` before the end, printing fake results, or writing guesses to
fd 3 cannot pass (tests/test_sandbox_compiled.py tries these). Limit: the harness runs in the
candidate's process, so a candidate that deliberately attacks its own process (Java reflection on
the reporter class, C++ reading its own memory) can find the nonce: this stops accidental and naive
gaming, not a determined adversary. The script's own markers carry the nonce too, and the program's
stdout/stderr go to files printed after the reports, so candidate output can't pose as script output.
"""
from __future__ import annotations

import math
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.compiled import cppsrc as cpp, javac_server, javasrc as java
from sandbox.config import SandboxConfig
from sandbox.isolation import Limits, require_isolation, run_isolated
from sandbox.records import Problem, Status, TestResult, Verdict

COMPILE_MEMORY_MB = 2048  # address-space cap for the compile (g++/cc1plus), not for the program
STDIO_PREVIEW_BYTES = 4096  # candidate stdout/stderr the script passes back
IO_OUTPUT_SLACK = 1024  # stdout kept beyond the expected output's length (longer is wrong anyway)
RESULTS_LIMIT_BYTES = 256 * 1024
JAVA_STACK_MB = 64  # deep recursion is legal in HumanEval-style solutions
PROGRAM_NPROC = {"java": 256, "cpp": 32}  # the JVM runs ~20 threads; a C++ program needs none
# Failed checks of a value (as opposed to crashes): same vocabulary as the Python harness.
WRONG_ANSWER_ERRORS = ("AssertionError", "wrong output")


@dataclass
class _Settings:
    """What a compiled run needs from the core's SandboxConfig."""

    program_timeout_s: float  # the whole rewritten test main (all its cases)
    case_timeout_s: float  # one stdin/stdout run
    compile_timeout_s: float
    memory_mb: int | None  # C++ address space / Java heap (-Xmx) of the program
    isolation: str
    fsize_mb: int
    nofile: int
    tmpfs_mb: int
    output_chars: int

    @classmethod
    def from_config(cls, config: SandboxConfig) -> "_Settings":
        return cls(
            program_timeout_s=config.program_timeout_s,
            case_timeout_s=config.timeout_s,
            compile_timeout_s=config.compile_timeout_s,
            memory_mb=config.memory_mb,
            isolation=require_isolation(config.isolation, config.allow_weak_isolation),
            fsize_mb=max(config.fsize_mb, 16),  # javac/g++ write class files and binaries
            nofile=max(config.nofile, 256),  # the JVM opens its modules and shared libraries
            tmpfs_mb=config.work_tmpfs_mb,
            output_chars=config.verdict_output_chars,
        )


# --------------------------------------------------------------------------------------------
# Programs


@dataclass
class _Build:
    """What to write, how to compile it and how to run it."""

    files: dict[str, bytes]
    source_file: str
    compile: str | None  # shell command; None: already compiled (files hold the binaries)
    run: str  # shell command, run with limits applied
    address_space_mb: int | None  # RLIMIT_AS for the program (None for the JVM: -Xmx bounds it)
    case_names: list[str] = field(default_factory=list)
    ro_binds: list[str] = field(default_factory=list)  # host dirs the compile needs (read-only)
    nproc: int = 32  # RLIMIT_NPROC of the program


def _java_build(problem: Problem, completion: str, salt: str, memory_mb: int | None, harness: bool, isolation: str) -> _Build:
    program = problem.program(completion)
    if harness:
        reporter = "RrtfReport_" + salt  # salted: no clash with a candidate's own names
        test, _, names = java.rewrite_test(problem.test, reporter)
        source = program + "\n" + test + "\n" + java.reporter_class(reporter, RESULTS_FD)
        cls = java.main_class(problem.test)
    else:
        source, names = program, []
        cls = java.main_class(program)
    source_file = f"{cls}.java"
    return _Build(
        files={source_file: source.encode()},
        source_file=source_file,
        compile=java.compile_cmd(source_file),
        run=java.run_cmd(cls, memory_mb, JAVA_STACK_MB),
        address_space_mb=None,
        case_names=names,
        nproc=PROGRAM_NPROC["java"],
    )


def _cpp_build(problem: Problem, completion: str, salt: str, memory_mb: int | None, harness: bool, isolation: str) -> _Build:
    program = problem.program(completion)
    pch_dir = None
    if harness:
        ns = "rrtf_" + salt
        test, _, names = cpp.rewrite_test(problem.test, ns, cpp.reporter_code(ns, RESULTS_FD))
        pch_dir = _usable_pch(isolation)
        # The reference evaluation's header preamble: precompiled when the sandbox can see it.
        source = ("" if pch_dir else cpp.header_preamble()) + program + "\n" + test + "\n"
    else:
        source, names = program, []
    files = {"main.cpp": source.encode(), **({} if pch_dir else cpp.support_files())}
    return _Build(
        files=files,
        source_file="main.cpp",
        compile=cpp.compile_cmd("main.cpp", "prog", source, pch_dir),
        run="./prog",
        address_space_mb=memory_mb,
        case_names=names,
        ro_binds=[str(pch_dir)] if pch_dir else [],
        nproc=PROGRAM_NPROC["cpp"],
    )


_PCH_USABLE: dict[str, Path | None] = {}
_PCH_LOCK = threading.Lock()


def _usable_pch(isolation: str) -> Path | None:
    """The precompiled-header dir if it is readable inside the sandbox at this level (probed once)."""
    with _PCH_LOCK:
        if isolation not in _PCH_USABLE:
            pch_dir = cpp.precompiled_header()
            ok = False
            if pch_dir is not None:
                probe = run_isolated(
                    ["test", "-r", str(pch_dir / (cpp.PCH_HEADER + ".gch"))],
                    limits=Limits(timeout_s=30),
                    isolation=isolation,
                    extra_ro_binds=[str(pch_dir)],
                )
                ok = probe.returncode == 0
            _PCH_USABLE[isolation] = pch_dir if ok else None
        return _PCH_USABLE[isolation]


_BUILDERS = {"java": _java_build, "cpp": _cpp_build}


RESULTS_FD = 3  # the harness's report channel: write-only, to a file already deleted


# --------------------------------------------------------------------------------------------
# The run script: compile, then run (with its own timeout so the script survives to print results)


def _guard(build: _Build, timeout_s: float) -> str:
    """Run `build.run` under the program's own limits, inside the script: the script survives the
    program (to print its results) and sees its exit status (124: timeout, 128+n: signal n)."""
    ulimits = f"ulimit -t {math.ceil(timeout_s) + 1}; ulimit -p {build.nproc}; "
    if build.address_space_mb:
        ulimits += f"ulimit -v {build.address_space_mb * 1024}; "
    return f"( {ulimits}exec timeout -k 1 {timeout_s:g} {build.run} )"


# Markers are `$M <event>` with M="@@rrtf-<nonce>": the nonce lives only in the script's memory. It
# comes as the script's only stdin line: not in a file (the work dir's files are the sandbox root's,
# in a sticky dir, so the script could not delete one) and not in argv (readable in /proc).
_READ_NONCE = 'read N; M="@@rrtf-$N"'


def _script_head(build: _Build) -> str:
    if build.compile is None:
        return "\n".join([_READ_NONCE, 'echo "$M COMPILED"'])
    return "\n".join(
        [
            _READ_NONCE,
            f"{build.compile} >.compile.log 2>&1",
            'if [ $? -ne 0 ]; then echo "$M COMPILE_ERROR"; head -c 16000 .compile.log; exit 0; fi',
            "rm -f .compile.log",
            'echo "$M COMPILED"',
        ]
    )


def _harness_script(build: _Build, timeout_s: float) -> str:
    """The program gets the nonce as its only stdin line (the harness reads it before any candidate
    code runs) and reports on fd 3: a write-only fd to a file that is deleted (and mode 0200) before
    the program starts, so the program can't read back what was reported. The script keeps a read fd
    (4), closed for the program, and prints the reports once the program is gone."""
    fd = RESULTS_FD
    return "\n".join(
        [
            _script_head(build),
            f": > .r; exec {fd}>>.r 4<.r; chmod 200 .r; rm -f .r",
            f'printf "%s\\n" "$N" | {_guard(build, timeout_s)} 4<&- >.out 2>.err',
            'echo "$M EXIT $?"',
            f"exec {fd}>&-; head -c {RESULTS_LIMIT_BYTES} <&4",
            f'echo "$M STDOUT"; head -c {STDIO_PREVIEW_BYTES} .out',
            f'echo; echo "$M STDERR"; head -c {STDIO_PREVIEW_BYTES} .err',
        ]
    )


def _io_script(build: _Build, n_cases: int, output_caps: list[int], timeout_s: float) -> str:
    lines = [_script_head(build), "timeouts=0"]
    for i in range(n_cases):
        # After two timeouts the rest are not run: a hanging program would otherwise cost n x timeout.
        lines += [
            f'if [ $timeouts -ge 2 ]; then echo "$M SKIP {i}"; else',
            f"{_guard(build, timeout_s)} <.in{i} >.out 2>.err",
            "rc=$?; if [ $rc -eq 124 ]; then timeouts=$((timeouts+1)); fi",
            f'echo "$M CASE {i} $rc $(wc -c <.out)"; head -c {output_caps[i]} .out',
            f'if [ $rc -ne 0 ]; then echo "$M STDERR {i}"; head -c 2000 .err; fi',
            "fi",
        ]
    lines.append('echo "$M DONE"')
    return "\n".join(lines)


def _limits(s: _Settings, timeout_s: float, memory_mb: int | None, output_limit: int) -> Limits:
    """Limits of the whole script (compiler + program); the program gets tighter ones from _guard."""
    return Limits(
        timeout_s=timeout_s,
        cpu_s=math.ceil(timeout_s) + 1,
        memory_mb=memory_mb,
        nproc=512,  # javac's JVM and the g++ driver start threads/processes
        fsize_mb=s.fsize_mb,
        nofile=s.nofile,
        output_limit_bytes=output_limit,
        tmpfs_mb=s.tmpfs_mb,
    )


# --------------------------------------------------------------------------------------------
# Judging


def check_compiled(problem: Problem, completion: str, sample_index: int, config: SandboxConfig | None = None) -> Verdict:
    """Judge a Java or C++ completion (the core's Sandbox.check dispatches non-Python problems here)."""
    builder = _BUILDERS.get(problem.language)
    if builder is None:
        raise ValueError(f"{problem.task_id}: no compiled-language support for {problem.language!r}")
    s = _Settings.from_config(config or SandboxConfig())
    tag = secrets.token_hex(16)  # the nonce: only the host and the script's/harness's memory know it
    marker = f"@@rrtf-{tag}"
    harness = not problem.io_cases
    try:
        build = builder(problem, completion, secrets.token_hex(4), s.memory_mb, harness, s.isolation)
    except ValueError as exc:  # the problem's test main has a shape we can't rewrite
        raise ValueError(f"{problem.task_id}: {exc}") from exc
    names = build.case_names if harness else [f"io_case[{i}]" for i in range(len(problem.io_cases))]
    verdict = Verdict(problem.task_id, sample_index, Status.RUNTIME_ERROR, 0, len(names), isolation=s.isolation)
    if problem.language == "java" and s.isolation == "bwrap" and not _precompile_java(build, s, verdict, names):
        return verdict
    # The JVM reserves far more address space than it uses: its heap is bounded by -Xmx instead.
    script_memory = None if problem.language == "java" else max(COMPILE_MEMORY_MB, (s.memory_mb or 0) + 256)
    if harness:
        script = _harness_script(build, s.program_timeout_s)
        total = s.compile_timeout_s + s.program_timeout_s + 5
        limits = _limits(s, total, script_memory, RESULTS_LIMIT_BYTES + 3 * STDIO_PREVIEW_BYTES)
        proc = run_isolated(["sh", "-c", script], files=build.files, stdin=tag.encode() + b"\n", limits=limits, isolation=s.isolation,
                            extra_ro_binds=build.ro_binds)
        _judge_harness(verdict, proc, marker, tag, build.case_names, s.output_chars)
    else:
        caps = [len(c.output.encode()) + IO_OUTPUT_SLACK for c in problem.io_cases]
        files = dict(build.files)
        for i, case in enumerate(problem.io_cases):
            files[f".in{i}"] = case.input.encode()
        script = _io_script(build, len(caps), caps, s.case_timeout_s)
        total = s.compile_timeout_s + len(caps) * (s.case_timeout_s + 1) + 5
        limits = _limits(s, total, script_memory, sum(caps) + 2200 * len(caps) + STDIO_PREVIEW_BYTES)
        proc = run_isolated(["sh", "-c", script], files=files, stdin=tag.encode() + b"\n", limits=limits, isolation=s.isolation,
                            extra_ro_binds=build.ro_binds)
        _judge_io(verdict, proc, marker, problem, s.output_chars)
    verdict.duration_s = proc.duration_s
    return verdict


def _precompile_java(build: _Build, s: _Settings, verdict: Verdict, names: list[str]) -> bool:
    """Compile with this thread's warm javac (sandbox/javac_server.py) and put the class files in the
    run's files; False (verdict filled in) on a compile error. Without a server, javac runs in the
    run sandbox as usual."""
    server = javac_server.for_thread()
    if server is None:
        return True
    start = time.monotonic()
    result = server.compile({build.source_file: build.files[build.source_file].decode()}, s.compile_timeout_s)
    if not result.ok:
        _compile_error(verdict, result.diagnostics, names, s.output_chars, "compile timeout" if result.timed_out else "")
        verdict.duration_s = time.monotonic() - start
        return False
    del build.files[build.source_file]  # the run gets class files only
    build.files.update(result.class_files())
    build.compile = None
    return True


def _sections(text: str, marker: str) -> list[tuple[str, str]]:
    """Split script output into (marker line args, text up to the next marker)."""
    parts = re.split(r"(?:^|\n)" + re.escape(marker) + r" ", text)
    out = []
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        out.append((head.strip(), body))
    return out


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _compile_error(verdict: Verdict, log: str, names: list[str], output_chars: int, reason: str = "") -> None:
    verdict.status = Status.COMPILE_ERROR
    first = next((line.strip() for line in log.splitlines() if "error" in line.lower()), log.strip()[:200])
    verdict.reason = reason or f"compile error: {first[:300]}"
    verdict.stderr = log[:output_chars]
    verdict.tests = [TestResult(n, False, "not run: compile error") for n in names]


def _exit_reason(rc: int | None, timed_out: bool) -> str:
    if timed_out or rc in (124, 137):
        return "timeout"
    if rc is None:
        return "no exit status"
    if rc > 128:
        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return {"SIGXCPU": "timeout", "SIGXFSZ": "output_limit"}.get(name, f"crashed ({name})")
    return f"exit status {rc}"


def _judge_harness(verdict: Verdict, proc, marker: str, tag: str, names: list[str], output_chars: int) -> None:
    text = _decode(proc.stdout)
    sections = dict(_sections(text, marker))
    verdict.total_tests = len(names)
    if "COMPILE_ERROR" in sections:
        return _compile_error(verdict, sections["COMPILE_ERROR"], names, output_chars)
    if "COMPILED" not in sections:
        reason = "compile timeout" if proc.timed_out else "compiler did not finish"
        return _compile_error(verdict, _decode(proc.stderr), names, output_chars, reason)
    exit_key = next((k for k in sections if k.startswith("EXIT ")), None)
    rc = int(exit_key.split()[1]) if exit_key else None
    reports = sections.get(exit_key, "") if exit_key else ""
    verdict.stdout = sections.get("STDOUT", "")[:output_chars]
    verdict.stderr = sections.get("STDERR", "")[:output_chars]

    results: dict[int, TestResult] = {}
    ended, setup_error = False, ""
    prefix = tag + " "
    for line in reports.splitlines():
        if not line.startswith(prefix):
            continue
        fields = line[len(prefix) :].split(" ", 2)
        if fields[0] == "END":
            ended = True
        elif fields[0] == "SETUP":
            setup_error = line[len(prefix) + 6 :]
        elif fields[0].isdigit() and len(fields) >= 2 and int(fields[0]) < len(names):
            i = int(fields[0])
            if i not in results:  # the first report of a case counts
                ok = fields[1] == "P"
                results[i] = TestResult(names[i], ok, "" if ok else (fields[2] if len(fields) > 2 else "failed"))

    died = _exit_reason(rc, proc.timed_out) if (rc != 0 or proc.timed_out) else ""
    if not died and not ended:
        died = "exited before the tests finished"
    missing = died or (f"setup failed: {setup_error}" if setup_error else "not run")
    verdict.tests = [results.get(i, TestResult(n, False, missing)) for i, n in enumerate(names)]
    _apply_status(verdict, ended and not died)


def _apply_status(verdict: Verdict, finished: bool) -> None:
    """The core's status rules (sandbox/harness.py make_verdict): PASSED needs every case passed and a
    clean finish; otherwise k > 0 or only wrong answers -> PARTIAL, else RUNTIME_ERROR."""
    tests = verdict.tests
    k = sum(t.passed for t in tests)
    verdict.passed_tests = k
    if finished and k == len(tests) and tests:
        verdict.status, verdict.reason = Status.PASSED, ""
        return
    crash = [t.error for t in tests if not t.passed and not is_wrong_answer(t.error)]
    verdict.status = Status.RUNTIME_ERROR if (k == 0 and crash) else Status.PARTIAL
    verdict.reason = _reason_for(crash[0]) if crash else "wrong_answer"


def is_wrong_answer(error: str) -> bool:
    return error.startswith(WRONG_ANSWER_ERRORS)


def _reason_for(error: str) -> str:
    if error.startswith("timeout"):
        return "timeout"
    if any(m in error for m in ("OutOfMemoryError", "bad_alloc", "memory_limit")):
        return "memory_limit"
    return error


def normalise_output(text: str) -> str:
    """Trailing whitespace on each line and trailing blank lines don't matter."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _judge_io(verdict: Verdict, proc, marker: str, problem: Problem, output_chars: int) -> None:
    sections = _sections(_decode(proc.stdout), marker)
    keys = [k for k, _ in sections]
    names = [f"io_case[{i}]" for i in range(len(problem.io_cases))]
    verdict.total_tests = len(names)
    if "COMPILE_ERROR" in keys:
        return _compile_error(verdict, dict(sections)["COMPILE_ERROR"], names, output_chars)
    if "COMPILED" not in keys:
        reason = "compile timeout" if proc.timed_out else "compiler did not finish"
        return _compile_error(verdict, _decode(proc.stderr), names, output_chars, reason)
    results: dict[int, TestResult] = {}
    for j, (key, body) in enumerate(sections):
        parts = key.split()
        if parts[0] == "SKIP":
            results[int(parts[1])] = TestResult(names[int(parts[1])], False, "timeout: not run after two timeouts")
        elif parts[0] == "CASE" and len(parts) == 4:
            i, rc, size = int(parts[1]), int(parts[2]), int(parts[3])
            expected = problem.io_cases[i].output
            if rc != 0:
                results[i] = TestResult(names[i], False, _exit_reason(rc, False))
                if j + 1 < len(sections) and sections[j + 1][0] == f"STDERR {i}" and not verdict.stderr:
                    verdict.stderr = sections[j + 1][1][:output_chars]
            elif size > len(expected.encode()) + IO_OUTPUT_SLACK:
                results[i] = TestResult(names[i], False, "wrong output (too long)")
            else:
                ok = normalise_output(body) == normalise_output(expected)
                results[i] = TestResult(names[i], ok, "" if ok else "wrong output")
            if not verdict.stdout:
                verdict.stdout = body[:output_chars]
    finished = "DONE" in keys
    missing = "timeout" if proc.timed_out else "not run"
    verdict.tests = [results.get(i, TestResult(name, False, missing)) for i, name in enumerate(names)]
    _apply_status(verdict, finished)
