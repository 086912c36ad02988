"""One job, judged by one harness process from start to end, reported to the host as it goes.

The host counts a test case as passed only when the harness reported it, and a run as complete only
with the harness's explicit "end" message; "done" closes the job.
"""
from __future__ import annotations

import signal
import time

from .failures import CandidateError, CaseTimeout, describe_compile_error, describe_exc
from .harness import Harness
from .protocol import REPORT_LIMIT, ProtocolError, send_frame
from .stdio import run_stdio
from .testns import run_functions


def run(h: Harness) -> None:
    if h.job["mode"] == "stdio":
        try:  # each case is a fresh run of the whole program: check it compiles once, here
            compile(h.job["program"], "<candidate>", "exec", optimize=0)
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            h.report({"compile_error": describe_compile_error(exc)})
        else:
            run_stdio(h)
    else:
        try:  # the candidate compiles the program and says if it does not (see candidate.serve_calls)
            h.ensure_candidate()
        except (CandidateError, CaseTimeout, ProtocolError):
            pass
        if h.compile_error:
            h.report({"compile_error": h.compile_error})
        else:
            run_functions(h)
    keep = h.report_chars  # the host keeps no more than this of either stream
    h.report({"stdout": h.stdout[:keep * 4].decode(errors="replace")[:keep],
              "stderr": h.stderr[:keep * 4].decode(errors="replace")[:keep], "truncated": h.truncated})
    h.report({"end": True}, flush=True)


def run_job(job: dict, out_fd: int, spawner) -> None:
    start = time.monotonic()
    h = Harness(job, out_fd, spawner)
    try:
        run(h)
    except BaseException as exc:  # the harness's own failure: no "end" message, so not passed
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            h.report({"harness_error": describe_exc(exc)}, flush=True)
        except OSError:
            raise
        except BaseException:
            pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if h.proc is not None:
            h.kill(h.proc, wait=False)
    send_frame(out_fd, {"id": job["id"], "done": True, "duration_s": time.monotonic() - start}, REPORT_LIMIT)
