"""How a test case fails inside the harness, and how that failure is described to the host."""
from __future__ import annotations

import os
import signal

OUTPUT_LIMIT = "output limit exceeded"


class CaseTimeout(Exception):
    """The per-test (or whole-program) deadline passed."""


class CandidateError(Exception):
    """Something went wrong on the candidate's side of the boundary (an exception it raised, crossing
    as text; a crash; an answer that is not plain data)."""


def describe_exc(exc: BaseException) -> str:
    msg = str(exc)
    return f"{type(exc).__name__}: {msg}"[:500] if msg else type(exc).__name__


def describe_compile_error(exc: BaseException) -> str:
    line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
    msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {msg}{line}"[:500]


def describe_status(status: int | None) -> str:
    if status is None or status < 0:
        return "unknown exit"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def case_error(exc: BaseException | None) -> str | None:
    """The error text reported for a test case that raised `exc` (None: it passed)."""
    if exc is None:
        return None
    if isinstance(exc, AssertionError):
        return describe_exc(exc) if str(exc) else "AssertionError"
    if isinstance(exc, CaseTimeout):
        return str(exc) or "timeout"
    if isinstance(exc, CandidateError):
        return str(exc)[:500]
    if isinstance(exc, MemoryError):
        return "MemoryError"
    return describe_exc(exc)
