"""Function mode: the test code runs in the harness, in a namespace built only from trusted parts.

The namespace holds proxies for the program's callables, plain-data copies of its other globals,
the helpers the problem's own prompt defines (run here, from the prompt -- not the candidate's
copies), and standard-library modules the program imported, but only from a fixed list the zygote
imported before any job: building the namespace never imports anything, so no module a candidate
names can run code here. Each test case runs in `with __rrtf_case__(i):`, under a deadline.
"""
from __future__ import annotations

import base64
import builtins
import marshal
import signal
import sys
import time

from .failures import CandidateError, CaseTimeout, case_error, describe_exc
from .plaindata import HOSTILE_TOKENS, literal
from .protocol import ProtocolError

BUILTIN_NAMES = frozenset(vars(builtins))
# What of the program's globals the harness takes in, before any case's alarm runs: the first
# MAX_GLOBALS names (a hostile list of a million costs seconds of parsing), and data globals, smallest
# first, up to GLOBALS_TEXT characters of literal text in all (the candidate sends each under 1 MiB).
# Globals past these bounds are left out of the test's namespace.
MAX_GLOBALS = 10_000
GLOBALS_TEXT = 1 << 20
# Standard-library modules a test may use because the program imported them (MBPP tests call
# `math.isclose` without importing math: the reference evaluation runs them in the program's
# globals). Imported once by the zygote, before any job; looked up in sys.modules, never imported.
# Kept to what such tests use: every module here makes every job's harness fork slower.
TEST_MODULES = ("math", "cmath", "re", "collections", "collections.abc", "itertools", "functools", "heapq", "bisect",
                "string", "typing", "copy", "operator", "random", "sys", "os", "os.path", "types", "time")


def test_module(name: str, module: str):
    """The pre-imported module `module` for the program's global `name`, or None: only listed
    modules, and only under their own name or a name that does not pose as another module."""
    if module not in TEST_MODULES:
        return None
    if name != module.rsplit(".", 1)[-1] and name in sys.stdlib_module_names:
        return None  # `import cmath as math`
    return sys.modules.get(module)


def trusted_code(job: dict, which: str):
    """The host's compilation of the job's trusted code (sandbox/languages/python.py), if any and
    made by this very interpreter; None to compile it here."""
    code = job.get("code")
    if not isinstance(code, dict) or code.get("version") != sys.version or not code.get(which):
        return None
    try:
        return marshal.loads(base64.b64decode(code[which]))
    except (ValueError, EOFError, TypeError):
        return None


def trusted_data(job: dict):
    """The plain data the host sent for the test code (base64 marshal: evalplus's inputs and
    expected outputs), or None. Host-made, like the job's compiled code."""
    data = job.get("plan_data")
    if not isinstance(data, str) or not data:
        return None
    try:
        return marshal.loads(base64.b64decode(data))
    except (ValueError, EOFError, TypeError):
        return None


class Proxy:
    """Stands in for one of the program's callables in the test code."""

    def __init__(self, harness, name: str):
        self._harness, self.__name__ = harness, name

    def __call__(self, *args, **kwargs):
        return self._harness.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<program function {self.__name__}>"


def build_namespace(h) -> dict:
    ns = {"__name__": "__rrtf_test__", "__builtins__": builtins}
    try:
        h.ensure_candidate()
    except (CandidateError, CaseTimeout, ProtocolError):
        pass  # every call will fail with the import error
    defined, data = set(), []
    for item in h.globals_info[:MAX_GLOBALS]:
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            continue
        name, kind, text = item
        if kind == "callable":
            defined.add(name)
        if not name.isidentifier() or name.startswith("__") or name in BUILTIN_NAMES:
            continue
        if kind == "callable":
            ns[name] = Proxy(h, name)
        elif kind == "module":
            module = test_module(name, text)
            if module is not None:
                ns[name] = module
        elif kind == "data":
            data.append((len(text), name, text))
    budget = GLOBALS_TEXT
    for size, name, text in sorted(data):
        budget -= size
        if budget < 0:
            break
        try:
            ns[name] = literal(text, max_tokens=HOSTILE_TOKENS)
        except ValueError:
            pass
    prompt = h.job.get("trusted_prefix") or ""
    if prompt.strip():
        signal.setitimer(signal.ITIMER_REAL, h.timeout_s + 0.5)
        try:
            exec(trusted_code(h.job, "prefix") or compile(prompt, "<prompt>", "exec", optimize=0), ns)
        except BaseException:
            pass  # e.g. an import this interpreter lacks: the program's versions stay
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    entry = h.job.get("entry_point") or ""
    ns["__rrtf_entry__"] = Proxy(h, entry)
    # The function under test may shadow a builtin (MBPP/126 defines `sum`) -- but only if the
    # program defines it (MBPP's guessed entry point for `assert int(f(x)) == 1` is `int`).
    if entry and (entry not in BUILTIN_NAMES or entry in defined):
        ns[entry] = ns["__rrtf_entry__"]
    ns["__rrtf_data__"] = trusted_data(h.job)
    ns["__rrtf_case__"] = lambda i, timeout_s=None: Case(h, i, timeout_s)
    ns["__rrtf_setup__"] = lambda: Setup(h)
    return ns


def run_functions(h) -> None:
    ns = build_namespace(h)
    try:
        code = trusted_code(h.job, "plan") or compile(h.job["plan_source"], "<test>", "exec", optimize=0)
    except SyntaxError as exc:
        h.report({"test_error": f"test code does not compile: {exc}"})
        return
    try:
        exec(code, ns)
    except BaseException as exc:  # test code outside any case failed: the rest is not run
        h.report({"test_error": describe_exc(exc)})
    if h.proc is not None:
        h.kill(h.proc, wait=False)  # idle after its last answer; its clean-up overlaps the next job


class _Timed:
    """A piece of test code run under the per-test deadline (cases and setup statements alike)."""

    def __init__(self, harness, timeout_s=None):
        self.h = harness
        # A case may carry its own limit (evalplus: scaled from the reference solution's run time).
        self.timeout_s = float(timeout_s) if isinstance(timeout_s, (int, float)) and timeout_s > 0 else harness.timeout_s

    def __enter__(self):
        self.h.case_deadline = time.monotonic() + self.timeout_s
        # Backstop for a test that loops on the trusted side (e.g. over a huge returned number).
        signal.setitimer(signal.ITIMER_REAL, self.timeout_s + 0.5)
        return self

    def _disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.h.case_deadline = self.h.program_deadline


class Case(_Timed):
    """`with __rrtf_case__(i): <test>` -- runs one test case and reports its outcome."""

    def __init__(self, harness, index: int, timeout_s=None):
        super().__init__(harness, timeout_s)
        self.index = index

    def __exit__(self, kind, exc, tb):
        self._disarm()
        error = case_error(exc)
        if error and self.h.setup_error:
            # e.g. `x = candidate(...)` timed out in a setup statement, so this case's NameError is
            # really that timeout: report the cause.
            error = self.h.setup_error
        self.h.report_case(self.index, error)
        return True


class Setup(_Timed):
    """`with __rrtf_setup__(): <statement>` -- test code between cases. A failure is remembered:
    it becomes the error of the cases that fail after it."""

    def __exit__(self, kind, exc, tb):
        self._disarm()
        if exc is not None:
            self.h.setup_error = case_error(exc)
            self.h.report({"setup_error": self.h.setup_error})
        return True


def alarm(signum, frame):
    raise CaseTimeout("timeout")
