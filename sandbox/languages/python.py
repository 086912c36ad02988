"""Python: split a problem's tests into separately counted test cases (a `Plan`), and prepare the
job the warm worker pool judges (sandbox/worker/: the harness runs the rewritten test code, the
candidate runs in its own process).

A plan is test code rewritten so that each test case runs inside `with __rrtf_case__(i):`, which the
harness (sandbox/worker/testns.py) implements by running the block, catching its failure, and
reporting case i. So "k of n passed" counts real test cases, and n is known before anything runs.
"""
from __future__ import annotations

import ast
import base64
import functools
import marshal
import sys
from dataclasses import dataclass, field

from sandbox.base.records import IOCase, Problem
from sandbox.config import SandboxConfig
from sandbox.languages import Language, PlanError

LANGUAGE = Language(
    name="python", display_name="Python", runs_in="worker", task_id_prefixes=("python",), humanevalpack=True,
    # No Debian packages nor tools: the host's own interpreter runs the harness and candidates (isolation,
    # bubblewrap, is sandbox-wide). The selftest's right and wrong answer were written for this project.
    selftest={"entry_point": "add", "prompt": "def add(x, y):\n", "canonical_solution": "    return x + y\n",
              "buggy_solution": "    return x - y\n",
              "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(7, 5) == 12\n"})

CASE, SETUP, ENTRY = "__rrtf_case__", "__rrtf_setup__", "__rrtf_entry__"


@dataclass
class Plan:
    mode: str  # "function" (HumanEval / MBPP style) or "stdio"
    case_names: list[str]
    source: str = ""  # rewritten test code (function mode)
    io_cases: list[dict] = field(default_factory=list)
    data: str = ""  # base64 marshal of plain data the test code reads as `__rrtf_data__` (evalplus)


def build_plan(problem: Problem) -> Plan:
    fmt = problem.test_format
    if fmt == "stdio":
        cases = [{"input": c.input, "output": c.output} for c in problem.io_cases]
        return Plan("stdio", [f"io_case[{i}]" for i in range(len(cases))], io_cases=cases)
    if fmt == "mbpp":
        return _mbpp_plan(problem.test_list, problem.test_setup_code)
    if fmt == "humaneval":
        return _check_plan(problem.test, problem.entry_point)
    raise PlanError(f"{problem.task_id}: no tests")


def _name(src: str, node: ast.AST) -> str:
    text = (ast.get_source_segment(src, node) or ast.unparse(node)).strip().splitlines()
    first = text[0] if text else ""
    return first[:117] + "..." if len(first) > 120 else first + (" ..." if len(text) > 1 else "")


def _is_trivial_assert(node: ast.stmt) -> bool:
    """`assert True, "..."` lines pad HumanEval tests; counting them would let a crashing program
    score k > 0."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant) and bool(node.test.value)


def _has_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _wrap(body: list[ast.stmt], cm: str, *args: int) -> ast.With:
    call = ast.Call(func=ast.Name(cm, ast.Load()), args=[ast.Constant(a) for a in args], keywords=[])
    return ast.With(items=[ast.withitem(context_expr=call)], body=body)


def split_statements(src: str, body: list[ast.stmt], start: int = 0) -> tuple[list[ast.stmt], list[str]]:
    """Each statement holding an assert becomes its own case; other statements are setup steps."""
    out, names = [], []
    for stmt in body:
        if _is_trivial_assert(stmt):
            continue
        if _has_assert(stmt):
            out.append(_wrap([stmt], CASE, start + len(names)))
            names.append(_name(src, stmt))
        else:
            out.append(_wrap([stmt], SETUP))
    return out, names


def _is_check_call(stmt: ast.stmt, check_name: str) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == check_name)


def _check_plan(test: str, entry_point: str) -> Plan:
    """HumanEval: `def check(candidate): assert ...` (HumanEvalPack names the parameter after the entry
    point and calls `check(entry_point)` itself; that call is removed and made by us)."""
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise PlanError(f"test code does not parse: {exc}") from None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:  # bare module-level asserts
        body, names = split_statements(test, tree.body)
        if not names:
            raise PlanError("test code has neither a check() function nor asserts")
        tree.body = body
        return Plan("function", names, ast.unparse(ast.fix_missing_locations(tree)))
    check = checks[-1]
    if not check.args.args:
        raise PlanError("check() takes no argument")
    new_body, names = split_statements(test, check.body)
    if not names:  # no assert at all: calling check() is the single test case
        new_body, names = [_wrap(check.body, CASE, 0)], ["check(candidate)"]
    check.body = new_body
    tree.body = [s for s in tree.body if not _is_check_call(s, "check")]
    call = ast.Expr(ast.Call(func=ast.Name("check", ast.Load()), args=[ast.Name(ENTRY, ast.Load())], keywords=[]))
    tree.body.append(call)
    return Plan("function", names, ast.unparse(ast.fix_missing_locations(tree)))


def _mbpp_plan(test_list: list[str], setup: str) -> Plan:
    parts, names = [], []
    if setup.strip():
        parts.append(f"with {SETUP}():\n" + _indent(setup.replace("\r\n", "\n")))
    for i, test in enumerate(test_list):
        test = test.replace("\r\n", "\n").strip()
        try:
            ast.parse(test)
            body = _indent(test)
        except SyntaxError as exc:
            body = f"    raise SyntaxError({('test case does not parse: ' + str(exc))!r})\n"
        parts.append(f"with {CASE}({i}):\n{body}")
        names.append(test.splitlines()[0][:120] if test else f"test[{i}]")
    return Plan("function", names, "\n".join(parts))


def _indent(code: str) -> str:
    return "".join("    " + line + "\n" for line in code.splitlines()) or "    pass\n"


# --------------------------------------------------------------------------- the job

@functools.lru_cache(maxsize=4096)
def _plan_for(test: str, entry_point: str, test_list: tuple, setup: str, io: tuple) -> Plan:
    problem = Problem(task_id="", prompt="", entry_point=entry_point, test=test, test_list=list(test_list),
                      test_setup_code=setup, io_cases=[IOCase(i, o) for i, o in io])
    return build_plan(problem)


def cached_plan(problem: Problem) -> Plan:
    """Plans depend only on the tests: many samples of one problem share one."""
    try:
        return _plan_for(problem.test, problem.entry_point, tuple(problem.test_list), problem.test_setup_code,
                         tuple((c.input, c.output) for c in problem.io_cases))
    except PlanError as exc:
        raise PlanError(f"{problem.task_id}: {exc}") from None


def validate(problem: Problem) -> None:
    if problem.test_format != "evalplus":  # its tests need the canonical solution's outputs: made when judged
        cached_plan(problem)


@functools.lru_cache(maxsize=4096)
def compiled(source: str, name: str) -> str:
    """Trusted code (tests, prompts) compiled once on the host, marshalled for the harness: a fresh
    harness per job would otherwise compile it every time. "" if it does not compile (the harness
    then compiles it itself, and reports the error as before). Always at optimisation level 0,
    whatever this interpreter's flags: under `python -O` or PYTHONOPTIMIZE a plain `compile` drops
    every `assert` of the tests, and any program would pass."""
    try:
        return base64.b64encode(marshal.dumps(compile(source, name, "exec", optimize=0))).decode() if source.strip() else ""
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return ""


def prepare(problem: Problem, completion: str, config: SandboxConfig) -> tuple[dict, list[str]]:
    """The worker job for one sample (the pool adds its id), and the names of its test cases."""
    program_timeout_s, rlimits = config.program_timeout_s, config.rlimits()
    if problem.test_format == "evalplus":
        from sandbox.evalplus import MEMORY_MB as EVALPLUS_MEMORY_MB
        from sandbox.evalplus import evalplus_plan
        from sandbox.isolation import require_isolation

        # The budget is the sum of evalplus's per-input limits; memory at least evalplus's own.
        source, names, program_timeout_s, data = evalplus_plan(problem, require_isolation(config.isolation, config.allow_weak_isolation))
        plan = Plan("function", names, source, data=data)
        own = {"RLIMIT_AS": max(config.memory_mb or 0, EVALPLUS_MEMORY_MB) << 20}
        rlimits = [(name, own.get(name, value)) for name, value in config.rlimits(program_timeout_s)
                   if name != "RLIMIT_AS" or config.memory_mb]
    else:
        plan = cached_plan(problem)
    prefix = problem.code_prefix if plan.mode == "function" else ""
    program = problem.program(completion)
    if problem.test_format == "evalplus":
        from sandbox.evalplus import batch_helper

        program += "\n" + batch_helper(problem)
    job = {"mode": plan.mode, "program": program, "plan_source": plan.source, "plan_data": plan.data,
           "code": {"version": sys.version, "plan": compiled(plan.source, "<test>"), "prefix": compiled(prefix, "<prompt>")},
           "io_cases": plan.io_cases, "entry_point": problem.entry_point, "timeout_s": config.timeout_s,
           "program_timeout_s": program_timeout_s, "output_limit_bytes": config.output_limit_bytes,
           "report_chars": config.verdict_output_chars, "rlimits": rlimits,
           # The prompt's own helpers are run by the harness itself (trusted dataset code).
           "trusted_prefix": prefix}
    return job, plan.case_names
