"""SandboxConfig: every knob of the judge, usable from Python and from the CLI."""
from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.supervise import Limits, cpu_and_wall


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class SandboxConfig:
    workers: int = _opt(2, 'warm sandboxed workers judging in parallel')
    timeout_s: float = _opt(3.0, 'per test case (a hung call fails that test with reason "timeout")')
    program_timeout_s: float = _opt(10.0, 'all tests of one candidate together')
    memory_mb: int | None = _opt(512, 'memory of the candidate process: address space (Python, C++, Rust), data size + a '
                                      'runtime allowance (JS, Java, Go; docs/sandbox.md) (None = unlimited)')
    nproc: int = _opt(16, 'processes the candidate may have at once (fork bombs)')
    fsize_mb: int = _opt(16, 'largest file the candidate may write')
    nofile: int = _opt(64, 'open files')
    output_limit_bytes: int = _opt(64 << 10, 'stdout/stderr kept per candidate (the rest is dropped)')
    verdict_output_chars: int = _opt(2000, 'stdout/stderr stored in a Verdict')
    work_tmpfs_mb: int = _opt(256, 'private tmpfs holding all work dirs of one worker (bwrap level)')
    isolation: str | None = _opt(None, 'None = strongest available; "bwrap" | "unshare" | "none"')
    allow_weak_isolation: bool = _opt(False, 'explicit opt-in to run untrusted code without bwrap')
    compile_timeout_s: float = _opt(30.0, 'compiled languages: compiler run')
    jobs_per_harness: int = _opt(1, 'Python jobs one trusted harness judges before it is replaced; 1 = a fresh harness '
                                    'per job (a harness compromised by a job could misjudge up to N-1 later ones)')
    debug: bool = _opt(False, "keep the workers' stderr (for developing the sandbox itself)")

    def limits(self, timeout_s: float | None = None) -> Limits:
        """Limits for one isolated command (compiled languages use this with run_isolated)."""
        t = self.timeout_s if timeout_s is None else timeout_s
        return Limits(timeout_s=t, memory_mb=self.memory_mb, nproc=self.nproc, fsize_mb=self.fsize_mb,
                      nofile=self.nofile, output_limit_bytes=self.output_limit_bytes, tmpfs_mb=self.work_tmpfs_mb)

    def rlimits(self, program_timeout_s: float | None = None) -> list[tuple[str, int]]:
        """rlimits of a candidate process, by resource name (sent to the in-sandbox worker), for a program
        budget of `program_timeout_s` (default: the configured one; its wall clock is the harness's deadline)."""
        cpu_s, _ = cpu_and_wall(self.program_timeout_s if program_timeout_s is None else program_timeout_s)
        out = [("RLIMIT_CPU", cpu_s), ("RLIMIT_NPROC", self.nproc),
               ("RLIMIT_FSIZE", self.fsize_mb << 20), ("RLIMIT_NOFILE", self.nofile), ("RLIMIT_CORE", 0)]
        if self.memory_mb is not None:
            out.append(("RLIMIT_AS", self.memory_mb << 20))
        return out
