"""Judge a compiled-language sample: one fresh isolated run of the runner (sandbox/worker/runner.py)
per sample, and its result turned into a verdict by the shared rules (sandbox/verdicts.py).

A language module (sandbox/languages/java.py, cpp.py) describes the run as a `Build`: the files of
each compile unit, the steps that build the program, what is installed and how it runs. This module
adds the per-run report key, starts the runner as the sandbox's root, and parses the runner's one
result frame as hostile input (bounded, any malformation a lost run, never a crash of the host).
"""
from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.base.records import Problem, Verdict
from sandbox.compiled.wire import CANDIDATE_FD, TEST_CALL_FD
from sandbox.config import SandboxConfig
from sandbox.isolation import python_executable, require_isolation
from sandbox.supervise import Limits, cpu_and_wall, run_isolated
from sandbox.verdicts import INPUT_TOO_LARGE, OUTPUT_LIMIT, Tally, make_verdict, refused
from sandbox.worker.protocol import HEADER, JOB_LIMIT, ProtocolError, decode
from sandbox.workers import IN_SANDBOX, PACKAGE

# The runner's root keeps only these: switch to the units' and the program's uids, own and clean
# up their directories, kill what is left.
RUNNER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_KILL")
BOOT = "import sys; sys.path.append({root!r}); from worker.runner import main; main()"
COMPILE_MEMORY_MB = 2048  # address-space cap for the compilers, not for the program
STDIO_PREVIEW_BYTES = 4096  # candidate stdout/stderr kept from a harness run
IO_OUTPUT_SLACK = 1024  # stdout kept beyond the expected output's length (longer is wrong anyway)
STDERR_LIMIT = 2000  # per stdin/stdout case
RUNNER_SLACK_S = 10  # the isolated runner's own start, set-up and clean-up, beyond its compiles and runs
# The managed runtimes' own writable memory beyond the candidate's `memory_mb` (measured on the dev VM, at start:
# node ~48 MB, the JVM ~106 MB with the flags of languages/java.py, Go a few MB; see docs/sandbox.md "Memory").
RUNTIME_ALLOWANCE_MB = 256
PRLIMIT = "/usr/bin/prlimit"  # util-linux (Essential in Debian): sets RLIMIT_DATA, then execs the program
# What each runtime says when memory is refused (RLIMIT_AS / RLIMIT_DATA), in the program's stderr.
MEMORY_STDERR = (b"out of memory", b"OutOfMemoryError", b"bad_alloc", b"memory allocation of",
                 b"Cannot allocate memory", b"Native memory allocation", b"allocation failed")


@dataclass
class Build:
    """How one sample is built and run, as the runner sees it (see runner.py for the layout)."""

    units: dict[str, dict[str, bytes]]  # unit -> {relative path: content}
    steps: list[list]  # ["run", unit, argv, timeout_s] | ["move", "unit/path", "unit/path"]
    install: list[list]  # [["unit/path", name in bin/, "exec" | "read"(, "run" | "cand": only that program's)], ...]
    run_argv: list[str]  # runs in <root>/home; <root>/bin holds what was installed
    # The candidate's own program, when the test reaches the candidate only through calls (sandbox/compiled/wire.py):
    # it runs in <root>/chome as a uid of its own, calls on fd CANDIDATE_FD; the test's program has them on TEST_CALL_FD.
    candidate_argv: list[str] | None = None
    # Why a harness run keeps the candidate in the test's process (a signature outside the wire's codec): never silent,
    # the verdict's isolation then reads "<level>+one-process", and docs/sandbox.md lists the problems.
    one_process: str = ""
    case_names: list[str] = field(default_factory=list)
    channel_fd: int = 3  # where the program's harness finds its report socket
    send_key: bool = False  # the key goes over the socket (Java) instead of into the program (C++)
    key_file: str = ""  # "unit/path": where the key goes as source (C++), filled in per run
    key_source: str = ""  # a template with {key_bytes}
    memory_mb: int | None = None  # RLIMIT_AS of the program (None: node and the JVM reserve far more than they use)
    data_mb: int | None = None  # RLIMIT_DATA of the program (writable private memory: heap, malloc, mmap), see data_limit
    compile_memory_mb: int | None = COMPILE_MEMORY_MB  # None for javac: the JVM reserves more than it uses
    nproc: int = 32
    ro_binds: list[str] = field(default_factory=list)
    on_kept: Callable[[dict[str, bytes]], None] | None = None  # receives files a "keep" step returned


@dataclass
class Settings:
    """What a compiled run needs from SandboxConfig."""

    program_timeout_s: float
    case_timeout_s: float
    compile_timeout_s: float
    memory_mb: int | None
    isolation: str
    fsize_mb: int
    nofile: int
    tmpfs_mb: int
    output_chars: int

    @classmethod
    def from_config(cls, config: SandboxConfig) -> Settings:
        return cls(program_timeout_s=config.program_timeout_s, case_timeout_s=config.timeout_s,
                   compile_timeout_s=config.compile_timeout_s, memory_mb=config.memory_mb,
                   isolation=require_isolation(config.isolation, config.allow_weak_isolation),
                   fsize_mb=max(config.fsize_mb, 16),  # compilers write objects and binaries
                   nofile=max(config.nofile, 256),  # the JVM opens its modules and shared libraries
                   tmpfs_mb=config.work_tmpfs_mb, output_chars=config.verdict_output_chars)


def judge(problem: Problem, completion: str, sample_index: int, config: SandboxConfig, build: Build) -> Verdict:
    s = Settings.from_config(config)
    harness = not problem.io_cases
    names = build.case_names if harness else [f"io_case[{i}]" for i in range(len(problem.io_cases))]
    files = {f"in/{unit}/{path}": data for unit, contents in build.units.items() for path, data in contents.items()}
    if sum(map(len, files.values())) + sum(len(c.input) for c in problem.io_cases) > JOB_LIMIT:
        return refused(problem.task_id, sample_index, names, INPUT_TOO_LARGE, isolation=s.isolation)
    key = secrets.token_bytes(16) if harness else b""
    if build.key_file:
        unit, path = build.key_file.split("/", 1)
        files[f"in/{unit}/{path}"] = build.key_source.format(key_bytes=", ".join(str(b) for b in key)).encode()
    caps = [len(c.output.encode()) + IO_OUTPUT_SLACK for c in problem.io_cases]
    run_argv = build.run_argv if not build.data_mb else [PRLIMIT, f"--data={build.data_mb << 20}", "--", *build.run_argv]
    # The program's budget: all tests at once for a harness run, each stdin/stdout case on its own.
    run_cpu_s, run_s = cpu_and_wall(s.program_timeout_s if harness else s.case_timeout_s)
    compile_cpu_s, compile_s = cpu_and_wall(s.compile_timeout_s)
    result_limit = 8 << 20 if harness else (1 << 20) + 2 * sum(caps) + 4 * STDERR_LIMIT * len(caps)
    spec = {"units": sorted(build.units), "steps": build.steps, "install": build.install, "fsize_mb": s.fsize_mb,
            "nofile": s.nofile, "compile_memory_mb": build.compile_memory_mb, "own_pid_namespace": s.isolation != "none",
            "result_limit": result_limit, "compile_cpu_s": compile_cpu_s, "compile_timeout_s": compile_s,
            "run": {"mode": "harness" if harness else "stdio", "argv": run_argv, "key": key.hex(),
                    "send_key": build.send_key, "channel_fd": build.channel_fd, "timeout_s": run_s,
                    "candidate": build.candidate_argv and {"argv": build.candidate_argv, "fd": CANDIDATE_FD, "test_fd": TEST_CALL_FD},
                    "cpu_s": run_cpu_s, "memory_mb": build.memory_mb, "nproc": build.nproc,
                    "preview": STDIO_PREVIEW_BYTES, "inputs": [c.input for c in problem.io_cases], "output_caps": caps}}
    runs = [st for step in build.steps for st in (step[1] if step[0] == "parallel" else [step]) if st[0] == "run"]
    for step in runs:
        step[3] = compile_s
    runner_cpu_s, runner_s = cpu_and_wall(run_s, runs=max(1, len(caps)), compile_s=compile_s, compiles=len(runs),
                                          slack_s=RUNNER_SLACK_S)
    limits = Limits(timeout_s=runner_s, cpu_s=runner_cpu_s, memory_mb=None, nproc=1024, fsize_mb=s.fsize_mb,
                    nofile=max(s.nofile, 1024), output_limit_bytes=result_limit + HEADER.size, tmpfs_mb=s.tmpfs_mb)
    argv = [python_executable(), "-I", "-S", "-B", "-c"]
    if s.isolation == "bwrap":
        argv.append(BOOT.format(root=IN_SANDBOX))
        binds = {str(PACKAGE): f"{IN_SANDBOX}/worker"}
    else:
        argv.append(BOOT.format(root=str(PACKAGE.parent)))
        binds = None
    proc = run_isolated(argv, files=files, stdin=json.dumps(spec).encode(), limits=limits, isolation=s.isolation,
                        extra_ro_binds=build.ro_binds, as_root=RUNNER_CAPS, bind_to=binds, bind_python=True)
    tally = Tally(len(names), s.output_chars)
    tally.duration_s = proc.duration_s
    isolation = s.isolation + ("+one-process" if harness and not build.candidate_argv else "")
    try:
        result = _result(proc.stdout)
    except ProtocolError as exc:
        tally.lose(f"runner: {exc}" + (" (timeout)" if proc.timed_out else ""))
        return make_verdict(problem.task_id, sample_index, names, tally, isolation=isolation)
    _fold(tally, result, problem if not harness else None)
    kept = _dict(result.get("kept"))
    if build.on_kept and kept:
        try:
            build.on_kept({path: base64.b64decode(data, validate=True) for path, data in kept.items() if isinstance(data, str)})
        except ValueError:
            pass  # not reused, then: the next sample compiles the test again
    return make_verdict(problem.task_id, sample_index, names, tally, isolation=isolation)


def _result(stdout: bytes) -> dict:
    if len(stdout) < HEADER.size:
        raise ProtocolError("no result")
    (n,) = HEADER.unpack_from(stdout)
    if len(stdout) != HEADER.size + n:
        raise ProtocolError("truncated result")
    return decode(stdout[HEADER.size:])


# --------------------------------------------------------------------------- the runner's result

def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value, limit: int = 100_000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def data_limit(memory_mb: int | None) -> int | None:
    """RLIMIT_DATA for a managed runtime's program (node, the JVM, Go) given the candidate's `memory_mb`:
    the runtime's own start-up memory on top. RLIMIT_DATA counts private writable mappings -- heaps,
    malloc, `Uint8Array`/`Buffer` stores, `Unsafe.allocateMemory` -- but not the PROT_NONE address space
    these runtimes reserve, which RLIMIT_AS would count (and which node and the JVM cannot start without)."""
    return memory_mb and memory_mb + RUNTIME_ALLOWANCE_MB


def exit_reason(run: dict) -> str:
    """Why the program did not end well ("" if it exited 0 in time), in the verdict vocabulary."""
    if run.get("timed_out") is True:
        return "timeout"
    sig = run.get("signal")
    rc = run.get("rc")
    if (isinstance(sig, str) and sig not in ("SIGXCPU", "SIGXFSZ") or type(rc) is int and rc != 0) and any(
            m in _str(run.get("stderr")).encode() for m in MEMORY_STDERR):
        return "memory_limit" + (f" (crashed ({sig[:40]}))" if isinstance(sig, str) else f" (exit status {rc})")
    if isinstance(sig, str):
        return {"SIGXCPU": "timeout", "SIGXFSZ": OUTPUT_LIMIT}.get(sig, f"crashed ({sig[:40]})")
    if type(rc) is not int:
        return "no exit status"
    return "" if rc == 0 else f"exit status {rc}"


def _fold(tally: Tally, result: dict, stdio_problem: Problem | None) -> None:
    if "error" in result:
        tally.lose(f"runner: {_str(result['error'], 300)}")
        return
    compiled = _dict(result.get("compile"))
    if compiled.get("ok") is not True:
        log = _str(compiled.get("log"))
        first = next((line.strip() for line in log.splitlines() if "error" in line.lower()), log.strip()[:200])
        tally.compile_error = "compile timeout" if compiled.get("timed_out") is True else f"compile error: {first[:300]}"
        tally.output("", log)
        return
    if stdio_problem is not None:
        _fold_cases(tally, result.get("cases"), stdio_problem)
        return
    run = _dict(result.get("run"))
    for report in run.get("reports") if isinstance(run.get("reports"), list) else ():
        if not isinstance(report, list) or not report:
            continue
        if report[0] == "case" and len(report) == 4:
            tally.case(report[1], report[2], report[3] if report[3] else "AssertionError: false")
        elif report[0] == "end":
            tally.ended = True
        elif report[0] == "setup" and len(report) == 2:
            tally.setup_error = _str(report[1], 500)
    candidate = _dict(run.get("candidate"))
    if candidate:  # what the user wants to see is what the candidate printed; the test's stderr says why cases failed
        tally.output(_str(candidate.get("stdout")), "\n".join(filter(None, (_str(candidate.get("stderr")), _str(run.get("stderr"))))))
    else:
        tally.output(_str(run.get("stdout")), _str(run.get("stderr")))
    # The candidate's program crashing, running out of time or memory ends the run as it did in one process.
    died = exit_reason(run) or (exit_reason(candidate) if candidate and candidate.get("running_at_end") is not True else "")
    if not died and not tally.ended:
        died = "exited before the tests finished"
    if died:
        tally.ended, tally.stopped = False, died


def normalise_output(text: str) -> str:
    """Trailing whitespace on each line and trailing blank lines don't matter."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _fold_cases(tally: Tally, cases, problem: Problem) -> None:
    cases = cases if isinstance(cases, list) else []
    for i, case in enumerate(cases[:tally.n]):
        case = _dict(case)
        expected = problem.io_cases[i].output
        if case.get("skipped") is True:
            tally.case(i, False, "timeout: not run after two timeouts")
            continue
        died = exit_reason(case)
        size = case.get("size") if type(case.get("size")) is int else 0
        if died:
            tally.case(i, False, died)
            if not tally.stderr:
                tally.output(tally.stdout, _str(case.get("stderr")))
        elif size > len(expected.encode()) + IO_OUTPUT_SLACK:
            tally.case(i, False, "wrong output (too long)")
        else:
            ok = normalise_output(_str(case.get("stdout"), 1 << 30)) == normalise_output(expected)
            tally.case(i, ok, "" if ok else "wrong output")
        if not tally.stdout:
            tally.output(_str(case.get("stdout")), tally.stderr)
    if len(cases) >= tally.n:
        tally.ended = True
    else:
        tally.stopped = "not run"
