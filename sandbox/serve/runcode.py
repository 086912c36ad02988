"""SandboxFusion's `/run_code`, mapped onto the sandbox's stdin/stdout judging of a whole program.

The request and response shapes are SandboxFusion's (bytedance/SandboxFusion, sandbox/server/sandbox_api.py
`RunCodeRequest` / `RunCodeResponse`, sandbox/runners/types.py `CommandRunResult`), so a client of it --
verl's reward manager (verl/utils/reward_score/sandbox_fusion/utils.py) -- points here unchanged:

    {"code", "language", "stdin", "compile_timeout", "run_timeout", "memory_limit_MB", "files", "fetch_files"}
    -> {"status": "Success" | "Failed" | "SandboxError", "message", "compile_result", "run_result", "files"}
       where each result is {"status": "Finished" | "Error" | "TimeLimitExceeded", "execution_time",
       "return_code", "stdout", "stderr"}

A request is one stdin/stdout case of a `Problem` (`io_cases`): the program runs once, isolated as every
candidate is, on `stdin`; what it printed, its exit status and whether it ran out of time come back. The
expected output is the client's business (verl compares stdout itself), so the case's own "expected"
output is only blank padding: the judge keeps a compiled program's stdout up to the expected size, and
trailing whitespace is ignored in comparisons, so padding of N blanks keeps N bytes of stdout.
JavaScript is judged through tests only (no stdin/stdout mode): /run_code refuses it (422).
SandboxFusion semantics kept: Python has no compile step (a syntax error is a run that
exits 1), the other languages have a `compile_result`; "Success" means every step finished with status 0.
"""
from __future__ import annotations

import dataclasses
import re
import signal
from typing import Any

from sandbox.base.records import IOCase, Problem, Status, Verdict
from sandbox.config import SandboxConfig
from sandbox.languages import NAMES, PlanError
from sandbox.registry import language
from sandbox.verdicts import HARNESS_LOST, INPUT_TOO_LARGE, OUTPUT_LIMIT

# SandboxFusion's names for the languages this sandbox judges under another name (sandbox/runners/major.py).
ALIASES = {"nodejs": "js", "javascript": "js", "c++": "cpp", "python3": "python", "golang": "go"}
# The languages SandboxFusion runs through a compile step (its compile_result is set); the rest it just runs.
COMPILED = {"cpp", "go", "java", "rust"}
SANDBOX_ERRORS = (HARNESS_LOST, INPUT_TOO_LARGE, "internal error")


class RequestError(ValueError):
    """The request is malformed: 422, as SandboxFusion's FastAPI answers a body that fails validation."""


def language_name(name: object) -> str:
    if not isinstance(name, str):
        raise RequestError("language: expected a string")
    lang = ALIASES.get(name, name)
    if lang not in NAMES:
        raise RequestError(f"language: {name!r} is not judged here; one of {sorted(set(NAMES) | set(ALIASES))}")
    return lang


def _number(body: dict, key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{key}: expected a number, got {type(value).__name__}")
    return float(value)


def parse_request(body: Any, base: SandboxConfig, *, max_run_s: float, max_compile_s: float, max_memory_mb: int,
                  output_bytes: int) -> tuple[Problem, str, SandboxConfig]:
    """(problem, program, limits) for one /run_code body, or RequestError. Limits are the request's, capped."""
    if not isinstance(body, dict):
        raise RequestError("body: expected a JSON object")
    code = body.get("code")
    if not isinstance(code, str):
        raise RequestError("code: required, a string")
    lang = language_name(body.get("language"))
    stdin = body.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise RequestError("stdin: expected a string or null")
    if body.get("files") or body.get("fetch_files"):  # verl sends {} and []
        raise RequestError("files, fetch_files: not supported (the program runs with an empty work dir)")
    run_s, compile_s = _number(body, "run_timeout", 10), _number(body, "compile_timeout", 10)
    memory = _number(body, "memory_limit_MB", -1)
    if run_s <= 0 or compile_s <= 0:
        raise RequestError("run_timeout, compile_timeout: must be positive")
    memory_mb = max_memory_mb if memory <= 0 else min(int(memory), max_memory_mb)
    run_s = min(run_s, max_run_s)
    config = dataclasses.replace(base, timeout_s=run_s, program_timeout_s=run_s, compile_timeout_s=min(compile_s, max_compile_s),
                                 memory_mb=memory_mb, output_limit_bytes=output_bytes, verdict_output_chars=output_bytes)
    pad = " " * output_bytes if lang in COMPILED else ""
    problem = Problem(task_id="run_code", prompt="", language=lang, io_cases=[IOCase(input=stdin or "", output=pad)])
    try:
        language(lang).validate(problem)
    except PlanError as exc:  # e.g. JavaScript is judged through tests only, never as a stdin/stdout program
        raise RequestError(f"language: {exc}") from None
    return problem, code, config


_EXIT = re.compile(r"exit (?:code|status) (-?\d+)")
_SIGNAL = re.compile(r"(?:killed by |crashed \()(SIG[A-Z0-9]+)")


def _return_code(error: str) -> int:
    """The exit status a case's error text names (a signal as -N, as subprocess reports it)."""
    if m := _EXIT.search(error):
        return int(m.group(1))
    if m := _SIGNAL.search(error):
        try:
            return -int(signal.Signals[m.group(1)])
        except KeyError:
            return -9
    if error.startswith(OUTPUT_LIMIT):
        return -int(signal.SIGKILL)  # the judge killed it for flooding its output
    return 1  # e.g. "MemoryError": Python exits 1 on an uncaught exception


def _result(status: str, rc: int | None, stdout: str = "", stderr: str = "", seconds: float | None = None) -> dict:
    return {"status": status, "execution_time": seconds, "return_code": rc, "stdout": stdout, "stderr": stderr}


def response(verdict: Verdict, language: str) -> dict:
    """The SandboxFusion response for the verdict of a one-case stdin/stdout run."""
    error = verdict.tests[0].error if verdict.tests else verdict.reason
    if verdict.status == Status.NOT_JUDGED or any(error.startswith(e) or verdict.reason.startswith(e) for e in SANDBOX_ERRORS):
        return {"status": "SandboxError", "message": verdict.reason or error, "compile_result": None, "run_result": None,
                "files": {}}
    seconds = round(verdict.duration_s, 6)
    compile_result = None
    if verdict.status == Status.COMPILE_ERROR:
        text = "\n".join(t for t in (verdict.reason, verdict.stderr) if t)
        if language not in COMPILED:  # SandboxFusion runs these directly: a syntax error is a failed run
            run = _result("Finished", 1, verdict.stdout, text, seconds)
        else:
            timed_out = "timeout" in verdict.reason
            compile_result = _result("TimeLimitExceeded" if timed_out else "Finished", None if timed_out else 1, "", text, seconds)
            run = None
    else:
        if language in COMPILED:
            compile_result = _result("Finished", 0, "", "", None)  # the judge times the whole job, not its steps
        if error.startswith("wrong output (too long)"):  # compiled: stdout past the padding, i.e. past the output limit
            run = _result("Finished", -int(signal.SIGKILL), verdict.stdout, verdict.stderr, seconds)
        elif verdict.status == Status.PASSED or error.startswith("wrong output"):
            run = _result("Finished", 0, verdict.stdout, verdict.stderr, seconds)
        elif error.startswith("timeout") or verdict.reason == "timeout":
            run = _result("TimeLimitExceeded", None, verdict.stdout, verdict.stderr, seconds)
        else:
            run = _result("Finished", _return_code(error), verdict.stdout, verdict.stderr, seconds)
    steps = [r for r in (compile_result, run) if r is not None]
    ok = all(r["status"] == "Finished" and r["return_code"] == 0 for r in steps)
    # SandboxFusion leaves `message` empty unless it failed itself; the judge's own words go there (extra, harmless).
    why = OUTPUT_LIMIT if error.startswith("wrong output (too long)") else (verdict.reason or error)
    return {"status": "Success" if ok else "Failed", "message": "" if ok else why,
            "compile_result": compile_result, "run_result": run, "files": {}}
