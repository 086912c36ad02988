"""The status rules, in one place for every language: what a judge reported -> a `Verdict`.

Both judges (the Python harness in the worker pool, the compiled-language runner) fill a `Tally`
with what crossed from the sandbox -- kept bounded, because it is parsed as hostile input: only the
first report of each known case counts, every text is clipped -- and `make_verdict` applies:

- COMPILE_ERROR if the program did not compile (no case counts);
- PASSED only with every case reported passed, the judge's explicit end-of-run, and nothing that
  stopped the run early (a lost harness, a timeout, a crash, a non-zero exit);
- otherwise RUNTIME_ERROR if no case passed and some case failed by crashing (not by a wrong
  answer), else PARTIAL (k of n passed; k may be 0 when every failure is a wrong answer).

Reasons share one vocabulary (`reason_for`): "timeout", "memory_limit", "output limit exceeded",
"wrong_answer", "harness_lost (...)", "input_too_large", "compile error: ...", or the program's
own error ("ValueError: bad input", "crashed (SIGSEGV)", "exit status 3", ...).
"""
from __future__ import annotations

from sandbox.base.records import Status, TestResult, Verdict

ERROR_CHARS = 500
WRONG_ANSWER_ERRORS = ("AssertionError", "wrong output")
MEMORY_MARKERS = ("MemoryError", "OutOfMemoryError", "bad_alloc", "memory_limit")
HARNESS_LOST = "harness_lost"
INPUT_TOO_LARGE = "input_too_large"
OUTPUT_LIMIT = "output limit exceeded"


def _clip(value, limit: int = ERROR_CHARS) -> str:
    return value[:limit] if isinstance(value, str) else ""


class Tally:
    """What a judge reported about one run, bounded whatever it sent."""

    def __init__(self, n_cases: int, output_chars: int = 4000):
        self.n, self.output_chars = n_cases, output_chars
        self.cases: dict[int, tuple[bool, str]] = {}
        self.compile_error = ""
        self.test_error = ""  # test code failed outside any case
        self.setup_error = ""  # statements before the cases failed (compiled test mains)
        self.ended = False  # the judge's explicit end-of-run
        self.stopped = ""  # why the run ended early, if it did (lost harness, timeout, crash, exit status)
        self.stdout = self.stderr = ""
        self.duration_s = 0.0

    def case(self, index, passed, error) -> None:
        if type(index) is int and 0 <= index < self.n and index not in self.cases:  # the first report counts
            self.cases[index] = (passed is True, _clip(error) or ("" if passed is True else "failed"))

    def output(self, stdout, stderr) -> None:
        self.stdout, self.stderr = _clip(stdout, self.output_chars), _clip(stderr, self.output_chars)

    def absorb(self, msg) -> None:
        """One message of the Python harness (sandbox/worker/harness.py)."""
        if not isinstance(msg, dict):
            return
        if "case" in msg:
            self.case(msg["case"], msg.get("passed"), msg.get("error", ""))
        elif "compile_error" in msg:
            self.compile_error = _clip(msg["compile_error"]) or "compile error"
        elif "test_error" in msg:
            self.test_error = _clip(msg["test_error"]) or "test code failed"
        elif "setup_error" in msg:
            pass  # the harness already made it the error of the cases that failed after it
        elif "harness_error" in msg:
            self.test_error = self.test_error or f"harness_error: {_clip(msg['harness_error'])}"
        elif "stdout" in msg:
            self.output(msg.get("stdout"), msg.get("stderr"))
        elif msg.get("end") is True:
            self.ended = True

    def lose(self, why: str) -> None:
        self.stopped = self.stopped or f"{HARNESS_LOST} ({_clip(why, 200)})"


def is_wrong_answer(error: str) -> bool:
    """A failed check of a value, as opposed to the program crashing / timing out."""
    return error.startswith(WRONG_ANSWER_ERRORS)


def reason_for(error: str) -> str:
    if error.startswith("timeout") or "killed by SIGXCPU" in error:
        return "timeout"
    if any(marker in error for marker in MEMORY_MARKERS):
        return "memory_limit"
    return error


def make_verdict(task_id: str, sample_index: int, case_names: list[str], tally: Tally, *, isolation: str) -> Verdict:
    n = len(case_names)
    if not tally.ended and not tally.stopped and not tally.compile_error:
        tally.stopped = HARNESS_LOST
    missing = (tally.stopped or tally.test_error or (f"setup failed: {tally.setup_error}" if tally.setup_error else "")
               or "not run")
    tests = []
    for i, name in enumerate(case_names):
        ok, error = tally.cases.get(i, (False, missing))
        tests.append(TestResult(name=name, passed=ok, error="" if ok else error))
    k = sum(t.passed for t in tests)
    if tally.compile_error:
        status, reason, k = Status.COMPILE_ERROR, tally.compile_error, 0
        tests = [TestResult(t.name, False, "not run: compile error") for t in tests]
    elif tally.ended and not tally.stopped and k == n and n > 0:
        status, reason = Status.PASSED, ""
    else:
        crash = [t.error for t in tests if not t.passed and not is_wrong_answer(t.error)]
        status = Status.RUNTIME_ERROR if (k == 0 and crash) else Status.PARTIAL
        reason = reason_for(crash[0]) if crash else (tally.stopped or "wrong_answer")
    return Verdict(task_id=task_id, sample_index=sample_index, status=status, passed_tests=k, total_tests=n, tests=tests,
                   duration_s=float(tally.duration_s), stdout=tally.stdout, stderr=tally.stderr, reason=reason,
                   isolation=isolation)


def refused(task_id: str, sample_index: int, case_names: list[str], reason: str, *, isolation: str) -> Verdict:
    """A sample judged without running it (e.g. `input_too_large`): a runtime error, no case passed."""
    tests = [TestResult(name, False, reason) for name in case_names]
    return Verdict(task_id=task_id, sample_index=sample_index, status=Status.RUNTIME_ERROR, passed_tests=0,
                   total_tests=len(case_names), tests=tests, reason=reason, isolation=isolation)
