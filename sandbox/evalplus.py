"""EvalPlus tests (HumanEval+, MBPP+): differential testing against the canonical solution.

A record carries inputs (`base_input`: the original benchmark's, `plus_input`: EvalPlus's) instead of
asserts. The expected output of each input is what the canonical solution returns for it, computed
by running that solution *in the sandbox* (`ground_truth`, cached on disk per problem), together
with its own run time per input: each input of a sample then gets max(4 s, 4 x reference time),
evalplus's `DEFAULT_MIN_TIME_LIMIT` and `DEFAULT_GT_TIME_LIMIT_FACTOR`, so verdicts do not depend on
the machine's speed.

The test code (`plan_source`) is ordinary trusted test code for the Python harness: one case per
input, `base[i]` then `plus[i]`, each under its own time limit, compared exactly as evalplus's
`unsafe_execute` compares (evalplus/eval/__init__.py at 26d6d00): exact match first; then, when an
`atol` is given or the expected value is a float (or a list/tuple of floats: atol becomes 1e-6 and
stays so for the later inputs, as in evalplus's loop), same type, same length and allclose with
rtol 1e-7; HumanEval/32 `find_zero` passes when |poly(xs, x)| <= atol; MBPP+'s special oracles (set
equality, "not None" tasks, Mbpp/164, 295, 558, 581). Like evalplus with fast_check, a part stops at
its first failing input (the rest are reported "not run"), and the plus inputs are not run once a
base input failed (`passed` needs both; `base_passed` only the base ones).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from sandbox.isolation import Limits, python_executable, run_isolated
from sandbox.records import Problem, Verdict
from sandbox.toolcache import cache_root
from sandbox.worker.plaindata import encode, literal
from sandbox.workers import IN_SANDBOX, PACKAGE

MIN_TIME_LIMIT_S = 4.0  # evalplus DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # evalplus DEFAULT_GT_TIME_LIMIT_FACTOR
TIMEOUT_PER_PART_S = 60.0  # evalplus EVALPLUS_TIMEOUT_PER_TASK default
GROUND_TRUTH_TIMEOUT_S = 600.0
GROUND_TRUTH_MEMORY_MB = 8192
MEMORY_MB = 4096  # evalplus's EVALPLUS_MAX_MEMORY_BYTES default, for each sample
# Values cross the sandbox's plain-data boundary as text, parsed on both sides (~1.4 s per MB each on
# the loaded development VM), a cost evalplus's in-process calls do not have: added to each input's limit.
BOUNDARY_S_PER_MB = 4.0
MBPP_OUTPUT_NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")
MBPP_OUTPUT_SET_EQ_TASKS = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
                            "intersection_array", "find_dissimilar", "Diff")
CACHE_VERSION = "3"

# Runs in the sandbox: the canonical solution on every input, outputs as plain-data literal text.
GROUND_TRUTH_SCRIPT = """
import copy, hashlib, json, os, sys, time
sys.path.append({root!r})
{canon}
from worker.plaindata import encode, literal
sys.set_int_max_str_digits(0)
spec = json.loads(sys.stdin.buffer.read())
out_fd = os.dup(1)
null = open(os.devnull, "w")
sys.stdout = null
os.dup2(null.fileno(), 1)
g = {{"__name__": "__main__"}}
exec(compile(spec["code"], "<canonical>", "exec"), g)
fn = g[spec["entry_point"]]
result = {{}}
for part in ("base", "plus"):
    values, times = [], []
    for inp in literal(spec[part]):
        inp = copy.deepcopy(inp)
        start = time.time()
        try:
            value = fn(*inp)
        except MemoryError:  # over the ground truth's memory: no sample could do better under its own limit
            times.append(time.time() - start)
            values.append(["too_large"])
            continue
        times.append(time.time() - start)
        if spec["not_none"]:
            value = value is not None
        try:
            text = encode(value)
        except ValueError:  # over the plain-data bound: no sample's output could cross it either
            values.append(["too_large"])
            continue
        if len(text) > {digest_over}:  # kept as a digest: the test code would be too large to send
            values.append(["digest", hashlib.sha256(canon(value).encode("utf-8", "surrogatepass")).hexdigest(), len(text)])
        else:
            values.append(text)
    result[part], result[part + "_time"] = values, times
data = json.dumps(result).encode()
while data:
    data = data[os.write(out_fd, data):]
"""

# The text a large expected output is compared by (its digest): exact for str, int and containers of
# them (hex for ints: linear, where decimal is quadratic).
CANON_SOURCE = """
def canon(v):
    if type(v) is int:
        return hex(v)
    if type(v) is str:
        return "s" + v
    return type(v).__name__ + repr(v)
"""
DIGEST_OVER = 256 << 10  # expected outputs whose literal text is longer travel as a digest

# Trusted test code: how evalplus decides that an output matches (pure Python: no numpy in the harness).
COMPARE_SOURCE = '''
import math as __m
def __is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False
def __flat(x, out):
    if isinstance(x, (list, tuple)):
        shape = [len(x)]
        subs = [__flat(e, out) for e in x]
        if any(s != subs[0] for s in subs):
            raise ValueError("ragged")
        return shape + (subs[0] if subs else [])
    if isinstance(x, (bool, int, float, complex)):
        out.append(x)
        return []
    raise TypeError("not a number")
def __close(a, b, atol):
    if a == b:
        return True
    if isinstance(a, complex) or isinstance(b, complex):
        return abs(a - b) <= atol + 1e-07 * abs(b)
    if __m.isinf(a) or __m.isinf(b) or __m.isnan(a) or __m.isnan(b):
        return False
    return abs(a - b) <= atol + 1e-07 * abs(b)
def __allclose(out, exp, atol):
    xs, ys = [], []
    sx, sy = __flat(out, xs), __flat(exp, ys)
    if sx != sy:
        if len(xs) == 1 or len(ys) == 1:  # numpy broadcasts a single value
            xs, ys = (xs * len(ys), ys) if len(xs) == 1 else (xs, ys * len(xs))
        else:
            return False
    return all(__close(float(x) if isinstance(x, bool) else x, float(y) if isinstance(y, bool) else y, atol)
               for x, y in zip(xs, ys))
def __poly(xs, x):
    return sum([coeff * __m.pow(x, i) for i, coeff in enumerate(xs)])
def __surface_Area(base_edge, height):
    slant_height = __m.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)
def __digit_distance_nums(num1, num2):
    a, b = str(num1), str(num2)
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    return sum(abs(int(x) - int(y)) for x, y in zip(a, b))
def __matches(dataset, entry, inp, out, exp, state):
    if isinstance(exp, list) and len(exp) == 2 and exp[0] == "__rrtf_digest__":
        import hashlib
        assert hashlib.sha256(canon(out).encode("utf-8", "surrogatepass")).hexdigest() == exp[1], "wrong output"
        return
    exact = out == exp
    if dataset == "mbpp":
        if entry == "are_equivalent":
            exact = True
        elif entry == "sum_div":
            exact = exact or out == 0
        elif entry == "surface_Area":
            exact = exact or abs(out - __surface_Area(*inp)) <= state["atol"]
        elif entry == "digit_distance_nums":
            exact = exact or out == __digit_distance_nums(*inp)
        elif entry in __SET_EQ:
            exact = set(out) == set(exp)
        elif entry in __NOT_NONE:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if dataset == "humaneval" and entry == "find_zero":
        assert abs(__poly(*inp, out)) <= state["atol"], "wrong output: |poly(xs, x)| > atol"
        return
    if state["atol"] == 0 and __is_floats(exp):
        state["atol"] = 1e-6
    if not exact and state["atol"] != 0:
        assert type(out) == type(exp), "wrong output: type differs"
        if isinstance(exp, (list, tuple)):
            assert len(out) == len(exp), "wrong output: length differs"
        assert __allclose(out, exp, state["atol"]), "wrong output: not close"
    else:
        assert exact, "wrong output"
'''


@dataclass
class GroundTruth:
    base: list  # expected outputs: plain-data literal text, ["digest", sha256] or ["too_large"]
    base_time: list[float]
    plus: list
    plus_time: list[float]


def dataset_kind(problem: Problem) -> str:
    """"mbpp" or "humaneval": which of evalplus's special oracles apply."""
    return "mbpp" if problem.task_id.lower().startswith("mbpp") else "humaneval"


def inputs(problem: Problem, part: str) -> list:
    """A part's inputs as the canonical solution receives them (MBPP+ stores some tuples, sets and
    complex numbers as JSON lists and strings: evalplus's `mbpp_deserialize_inputs`)."""
    raw = problem.base_input if part == "base" else problem.plus_input
    if dataset_kind(problem) == "mbpp":
        from sandbox.evalplus_mbpp import deserialize_inputs

        return deserialize_inputs(problem.task_id, raw)
    return raw


def time_limits(ref_times: list[float], expected: list | None = None) -> list[float]:
    """evalplus's max(4 s, 4 x reference) per input, plus the boundary's cost for large outputs."""
    limits = [max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * t) for t in ref_times]
    for i, exp in enumerate(expected or ()):
        size = len(exp) if isinstance(exp, str) else (exp[2] if exp[0] == "digest" else 0)
        limits[i] += BOUNDARY_S_PER_MB * size / (1 << 20)
    return limits


_LOCK = threading.Lock()
_MEMORY: dict[str, GroundTruth] = {}


def _key(problem: Problem) -> str:
    text = json.dumps([CACHE_VERSION, problem.task_id, problem.prompt, problem.canonical_solution, problem.entry_point,
                       problem.base_input, problem.plus_input], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def ground_truth(problem: Problem, isolation: str) -> GroundTruth:
    """Expected outputs and reference times: from memory, the disk cache, or one sandboxed run."""
    key = _key(problem)
    with _LOCK:
        if key in _MEMORY:
            return _MEMORY[key]
    path = cache_root() / "evalplus" / f"{key}.json"
    truth = _load(path)
    if truth is None:
        truth = _compute(problem, isolation)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_text(json.dumps(truth.__dict__))
            tmp.replace(path)
        except OSError:
            pass  # not cached: computed again next time
    with _LOCK:
        _MEMORY[key] = truth
    return truth


def _load(path: Path) -> GroundTruth | None:
    try:
        data = json.loads(path.read_text())
        truth = GroundTruth(**{k: data[k] for k in ("base", "base_time", "plus", "plus_time")})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return truth


class GroundTruthError(ValueError):
    """The canonical solution could not produce the expected outputs (a dataset problem)."""


def _compute(problem: Problem, isolation: str) -> GroundTruth:
    spec = {"code": problem.prompt + problem.canonical_solution,  # as evalplus: prompt + canonical
            "entry_point": problem.entry_point,
            "not_none": dataset_kind(problem) == "mbpp" and problem.entry_point in MBPP_OUTPUT_NOT_NONE_TASKS,
            "base": encode(inputs(problem, "base")), "plus": encode(inputs(problem, "plus"))}
    if isolation == "bwrap":
        script = GROUND_TRUTH_SCRIPT.format(root=IN_SANDBOX, canon=CANON_SOURCE, digest_over=DIGEST_OVER)
        binds = {str(PACKAGE): f"{IN_SANDBOX}/worker"}
    else:
        script, binds = GROUND_TRUTH_SCRIPT.format(root=str(PACKAGE.parent), canon=CANON_SOURCE, digest_over=DIGEST_OVER), None
    limits = Limits(timeout_s=GROUND_TRUTH_TIMEOUT_S, memory_mb=GROUND_TRUTH_MEMORY_MB, nproc=16, fsize_mb=16, nofile=64,
                    output_limit_bytes=256 << 20, tmpfs_mb=64)
    proc = run_isolated([python_executable(), "-I", "-S", "-c", script], stdin=json.dumps(spec).encode(), limits=limits,
                        isolation=isolation, bind_to=binds, bind_python=True)
    try:
        data = json.loads(proc.stdout)
        truth = GroundTruth(base=data["base"], base_time=data["base_time"], plus=data["plus"], plus_time=data["plus_time"])
        for value in truth.base + truth.plus:  # plain data only: it becomes part of the test code
            if isinstance(value, str):
                literal(value)
            elif not (value == ["too_large"] or (len(value) == 3 and value[0] == "digest" and str(value[1]).isalnum()
                                                 and type(value[2]) is int)):
                raise ValueError("bad ground truth")
    except (ValueError, KeyError, TypeError):
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise GroundTruthError(f"{problem.task_id}: the canonical solution did not run on the inputs: {tail[0][:300]}") from None
    if len(truth.base) != len(problem.base_input) or len(truth.plus) != len(problem.plus_input):
        raise GroundTruthError(f"{problem.task_id}: the canonical solution returned the wrong number of outputs")
    return truth


# Runs in the candidate's process (appended to its program): the entry point on a batch of inputs,
# each under its own time limit (an alarm, as evalplus's per-input `time_limit`), stopping at the first
# that raises or times out, as evalplus's fast check does. One call across the boundary per batch
# instead of one per input: HumanEval+ has ~750 inputs per problem, and a call costs the boundary's
# encoding, parsing and argument snapshots both ways. The candidate runs this, so it could lie about
# its own outputs -- which it can anyway -- or about its time (an alarm it disables is still bounded
# by the harness's deadline for the batch); the outputs are compared in the harness.
BATCH_SOURCE = """
def _rrtf_evalplus_batch(__calls, __limits):
    import signal as __sg
    class __Timeout(BaseException):
        pass
    def __alarm(*__a):
        raise __Timeout()
    __f, __out = globals()[{entry!r}], []
    __old = __sg.signal(__sg.SIGALRM, __alarm)
    try:
        for __args, __lim in zip(__calls, __limits):
            try:
                __sg.setitimer(__sg.ITIMER_REAL, __lim)
                __r = __f(*__args)
                __sg.setitimer(__sg.ITIMER_REAL, 0)
            except __Timeout:
                __out.append(["timeout"])
                break
            except BaseException as __e:
                __sg.setitimer(__sg.ITIMER_REAL, 0)
                __out.append(["error", (type(__e).__name__ + ": " + str(__e))[:300]])
                break
            __out.append(["ok", __r])
    finally:
        __sg.setitimer(__sg.ITIMER_REAL, 0)
        __sg.signal(__sg.SIGALRM, __old)
    return __out
"""
BATCH_MAX = 64  # inputs per call across the boundary: batches grow 1, 4, 16, 64, so a program that hangs
BATCH_OUTPUT_CHARS = 4 << 20  # on its first input costs one input's limit; expected output text per batch


def batch_helper(problem: Problem) -> str:
    """What the candidate's program gets appended (sandbox/languages/python.py)."""
    return BATCH_SOURCE.format(entry=problem.entry_point)


def _batches(items: list) -> list[list]:
    out, size, i = [], 1, 0
    while i < len(items):
        chunk, chars = [], 0
        while i < len(items) and len(chunk) < size and (not chunk or chars < BATCH_OUTPUT_CHARS):
            chunk.append(items[i])
            chars += items[i][3]
            i += 1
        out.append(chunk)
        size = min(BATCH_MAX, size * 4)
    return out


def plan_source(problem: Problem, truth: GroundTruth) -> tuple[str, list[str], float]:
    """(trusted test code, case names, time for all cases together)."""
    kind, entry = dataset_kind(problem), problem.entry_point
    names, lines = [], [CANON_SOURCE, COMPARE_SOURCE, "inf, nan = float('inf'), float('nan')",
                        "from collections import Counter, OrderedDict, deque",
                        "import copy as __copy",
                        f"__SET_EQ, __NOT_NONE = {MBPP_OUTPUT_SET_EQ_TASKS!r}, {MBPP_OUTPUT_NOT_NONE_TASKS!r}",
                        f"__state = {{'atol': {float(problem.atol)!r}, 'failed': False}}",
                        "def __batch(calls, limits):",
                        "    if __state['failed']:",
                        "        return None",
                        "    __state['failed'] = True",  # until the batch is back: a timeout ends the part
                        "    got = _rrtf_evalplus_batch(__copy.deepcopy(calls), limits)",  # a copy: in-place changes stay there
                        "    if type(got) is not list:",
                        "        raise AssertionError('wrong output: not plain data')",
                        "    __state['failed'] = False",
                        "    return got",
                        "def __check(got, k, inp, exp):",
                        "    if __state['failed'] or got is None:",
                        "        raise AssertionError('wrong output: not run (an earlier input failed)')",
                        "    __state['failed'] = True",
                        "    r = got[k] if k < len(got) else ['error', 'no result']",
                        "    if r[0] == 'timeout':",
                        "        raise TimeoutError('timeout')",
                        "    if r[0] != 'ok':",
                        "        raise AssertionError(str(r[1]))",
                        f"    __matches({kind!r}, {entry!r}, inp, r[1], exp, __state)",
                        "    __state['failed'] = False"]
    total = 0.0
    for part, truth_values, ref_times in (("base", truth.base, truth.base_time), ("plus", truth.plus, truth.plus_time)):
        lines.append(f"__state['atol'] = {float(problem.atol)!r}")  # evalplus checks each part with the record's atol
        limits = time_limits(ref_times, truth_values)
        total += min(TIMEOUT_PER_PART_S, sum(limits)) + 1
        items = []
        for i, (inp, exp, limit) in enumerate(zip(inputs(problem, part), truth_values, limits, strict=True)):
            if isinstance(exp, list):
                if exp[0] == "too_large":
                    continue  # its output cannot cross the plain-data bound: not a test here (docs/evaluation.md)
                size, exp = int(exp[2]), repr(["__rrtf_digest__", exp[1]])
            else:
                size = len(exp)
            items.append((i, encode(inp), exp, size, limit))
        for chunk in _batches(items):
            lines.append(f"__in = [{', '.join(inp for _, inp, _, _, _ in chunk)}]")
            lines.append("__got = None")
            for k, (i, _, exp, _, limit) in enumerate(chunk):
                case = len(names)
                names.append(f"{part}[{i}]")
                call = f"__got = __batch(__in, {[c[4] for c in chunk]!r})\n    " if k == 0 else ""
                budget = sum(c[4] for c in chunk) if k == 0 else limit
                lines.append(f"with __rrtf_case__({case}, {budget!r}):\n    {call}__check(__got, {k}, __in[{k}], {exp})")
    return "\n".join(lines) + "\n", names, total


_PLANS: dict[str, tuple[str, list[str], float]] = {}


def evalplus_plan(problem: Problem, isolation: str) -> tuple[str, list[str], float]:
    """`plan_source` of the problem, its ground truth computed (or read from the cache) first; kept."""
    key = _key(problem)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = plan_source(problem, ground_truth(problem, isolation))
        if len(_PLANS) > 1024:
            _PLANS.pop(next(iter(_PLANS)))
    return plan


def base_passed(verdict: Verdict) -> bool:
    """All base inputs passed (evalplus's base status): what base pass@k counts."""
    base = [t for t in verdict.tests if t.name.startswith("base[")]
    return bool(base) and all(t.passed for t in base)


__all__ = ["GroundTruth", "GroundTruthError", "base_passed", "batch_helper", "dataset_kind", "evalplus_plan", "ground_truth", "inputs",
           "plan_source",
           "time_limits"]
