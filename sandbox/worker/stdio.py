"""stdin/stdout mode: one fresh candidate process per case, its output compared after normalising
trailing whitespace; all cases together are bounded by the program time limit."""
from __future__ import annotations

import os
import select
import signal
import time

from .failures import OUTPUT_LIMIT, describe_status


def normalize_output(text: str) -> str:
    """Trailing whitespace on each line and trailing blank lines don't matter."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def run_stdio(h) -> None:
    for index, case in enumerate(h.job["io_cases"]):
        if time.monotonic() >= h.program_deadline:
            h.report_case(index, "timeout (program time limit)")
        else:
            h.report_case(index, run_io_case(h, case))


def run_io_case(h, case: dict) -> str | None:
    proc = h.spawn("stdio")
    proc["case_out"], proc["case_err"] = bytearray(), bytearray()
    proc["rpc"].close()
    proc["reader"].eof = True
    data = memoryview(str(case["input"]).encode())
    deadline = min(h.program_deadline, time.monotonic() + h.timeout_s)
    timed_out = False
    while proc["status"] is None or proc["out"] not in proc["closed"]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        wfds = [proc["stdin"]] if data and proc["stdin"] >= 0 else []
        rfds = [fd for fd in (proc["out"], proc["err"], proc["status_fd"]) if fd not in proc["closed"]]
        r, w, _ = select.select(rfds, wfds, [], remaining)
        if w:
            try:
                data = data[os.write(proc["stdin"], data[:1 << 16]):]
            except OSError:
                data = data[:0]
        if not data and proc["stdin"] >= 0:
            os.close(proc["stdin"])
            proc["stdin"] = -1
        for fd in r:
            if fd == proc["status_fd"]:
                h._read_status(proc)
            else:
                h.drain(proc, fd)
        if proc.get("overflow"):
            break
    h.kill(proc)
    out, err = bytes(proc["case_out"]), bytes(proc["case_err"])
    h.stdout += out[:max(0, h.output_limit - len(h.stdout))]
    h.stderr += err[:max(0, h.output_limit - len(h.stderr))]
    return _judge_case(proc, out, err, str(case["output"]), timed_out)


def _judge_case(proc: dict, out: bytes, err: bytes, expected: str, timed_out: bool) -> str | None:
    status = proc["status"]
    if proc.get("overflow"):
        return OUTPUT_LIMIT
    if timed_out or (status is not None and status >= 0 and os.WIFSIGNALED(status)
                     and os.WTERMSIG(status) == signal.SIGXCPU):
        return "timeout"
    if status is None or status < 0 or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        last = [line for line in err.decode(errors="replace").splitlines() if line.strip()][-1:]
        detail = last[0][:300] if last else ""
        if "MemoryError" in detail:
            return "MemoryError"
        return f"runtime error ({describe_status(status)}){': ' + detail if detail else ''}"
    if normalize_output(out.decode(errors="replace")) != normalize_output(expected):
        return "wrong output"
    return None
