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

import base64
import marshal

from sandbox.base.records import Problem, Verdict
from sandbox.evalplus_truth import (
    CANON_SOURCE,
    MBPP_OUTPUT_NOT_NONE_TASKS,
    GroundTruth,
    GroundTruthError,
    cache_key,
    dataset_kind,
    ground_truth,
    inputs,
)
from sandbox.worker.plaindata import encode, literal

MIN_TIME_LIMIT_S = 4.0  # evalplus DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # evalplus DEFAULT_GT_TIME_LIMIT_FACTOR
TIMEOUT_PER_PART_S = 60.0  # evalplus EVALPLUS_TIMEOUT_PER_TASK default
MEMORY_MB = 4096  # evalplus's EVALPLUS_MAX_MEMORY_BYTES default, for each sample
# Values cross the sandbox's plain-data boundary as text, parsed on both sides (~1.4 s per MB each on
# the loaded development VM), a cost evalplus's in-process calls do not have: added to each input's limit.
BOUNDARY_S_PER_MB = 4.0
MBPP_OUTPUT_SET_EQ_TASKS = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
                            "intersection_array", "find_dissimilar", "Diff")

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


def time_limits(ref_times: list[float], expected: list | None = None) -> list[float]:
    """evalplus's max(4 s, 4 x reference) per input, plus the boundary's cost for large outputs."""
    limits = [max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * t) for t in ref_times]
    for i, exp in enumerate(expected or ()):
        size = len(exp) if isinstance(exp, str) else (exp[2] if exp[0] == "digest" else 0)
        limits[i] += BOUNDARY_S_PER_MB * size / (1 << 20)
    return limits


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
            if {not_none!r} and type(__r) is not bool:  # evalplus compares only None-ness (a re.Match is not data)
                __r = __r is not None
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
    not_none = dataset_kind(problem) == "mbpp" and problem.entry_point in MBPP_OUTPUT_NOT_NONE_TASKS
    return BATCH_SOURCE.format(entry=problem.entry_point, not_none=not_none)


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


# The cases, driven by the plan's data (below): one batch call per chunk, one case per input.
CASES_SOURCE = """
for __atol, __chunks in __DATA:
    __state['atol'] = __atol  # evalplus checks each part with the record's atol
    for __calls, __limits, __cases in __chunks:
        __got = None
        for __case, __k, __exp, __budget in __cases:
            with __rrtf_case__(__case, __budget):
                if __k == 0:
                    __got = __batch(__calls, __limits)
                __check(__got, __k, __calls[__k], __exp)
"""


def plan_source(problem: Problem, truth: GroundTruth) -> tuple[str, list[str], float, str]:
    """(trusted test code, case names, time for all cases together, its data as base64 marshal).

    The inputs and expected outputs are data, not code: compiling them as literals cost the host
    ~30 ms per problem (5.4 s for HumanEval+), marshal ~0.3 ms. Data marshal cannot hold (type
    objects, Counters: a few MBPP+ problems) is written into the code as literals instead."""
    kind, entry = dataset_kind(problem), problem.entry_point
    # The program's entry point may shadow a builtin in the test namespace (Mbpp/126's is `sum`); this
    # code calls the program only through `_rrtf_evalplus_batch`, so its own names are the builtins.
    lines = ["import builtins as __bi",
             "__bi.globals().update({k: v for k, v in __bi.vars(__bi).items() if not k.startswith('_')})",
             CANON_SOURCE, COMPARE_SOURCE, "inf, nan = float('inf'), float('nan')",
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
    names, parts, total = [], [], 0.0
    for part, truth_values, ref_times in (("base", truth.base, truth.base_time), ("plus", truth.plus, truth.plus_time)):
        limits = time_limits(ref_times, truth_values)
        total += min(TIMEOUT_PER_PART_S, sum(limits)) + 1
        items = []
        for i, (inp, exp, limit) in enumerate(zip(inputs(problem, part), truth_values, limits, strict=True)):
            if isinstance(exp, list):
                if exp[0] == "too_large":
                    continue  # its output cannot cross the plain-data bound: not a test here (docs/evaluation.md)
                size, exp = int(exp[2]), ["__rrtf_digest__", exp[1]]
            else:
                try:  # the one place a ground-truth text is parsed, whether just computed or from the cache
                    size, exp = len(exp), literal(exp)
                except ValueError:
                    raise GroundTruthError(f"{problem.task_id}: the expected output of {part}[{i}] is not plain data") from None
            items.append((i, inp, exp, size, limit))
        chunks = []
        for chunk in _batches(items):
            cases, limits = [], [c[4] for c in chunk]
            for k, (i, _, exp, _, limit) in enumerate(chunk):  # the first case waits for the whole batch
                cases.append([len(names), k, exp, sum(limits) if k == 0 else limit])
                names.append(f"{part}[{i}]")
            chunks.append([[inp for _, inp, _, _, _ in chunk], limits, cases])
        parts.append([float(problem.atol), chunks])
    try:
        data = base64.b64encode(marshal.dumps(parts)).decode()
        lines.append("__DATA = __rrtf_data__")
    except ValueError:  # not marshallable: literals in the code, a chunk per line (each within encode's bound)
        data = ""
        lines.append(f"__DATA = {encode([[atol, []] for atol, _ in parts])}")
        lines += [f"__DATA[{n}][1].append({encode(chunk)})" for n, (_, chunks) in enumerate(parts) for chunk in chunks]
    return "\n".join(lines) + "\n" + CASES_SOURCE, names, total, data


_PLANS: dict[str, tuple[str, list[str], float, str]] = {}


def evalplus_plan(problem: Problem, isolation: str) -> tuple[str, list[str], float, str]:
    """`plan_source` of the problem, its ground truth computed (or read from the cache) first; kept."""
    key = cache_key(problem)
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
