"""HumanEval+ (evalplus's format) through the public Sandbox API: a real canonical solution passes on
every base and plus input, a buggy one fails, and the batched calls keep evalplus's per-input time
limit and its stop-at-the-first-failure, whatever the program does with its alarm.
(benchmarks/evalplus_speed.py compares all 164 problems with evalplus's own evaluator.)"""
from __future__ import annotations

import dataclasses
import time

from rrtf.datasets.humanevalpack import load_humanevalpack
from rrtf.paths import DATA_DIR
from sandbox import Problem, Status
from sandbox.base.store import iter_jsonl
from sandbox.evalplus import base_passed

CLOSE = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j)\n"


def humaneval_plus_0() -> Problem:
    where, rec = next(iter_jsonl(DATA_DIR / "evalplus" / "HumanEvalPlus.jsonl.gz"))
    return Problem.from_record(rec, where=where)


def test_canonical_passes_every_input_and_buggy_fails(sandbox):
    problem = humaneval_plus_0()
    buggy = load_humanevalpack("python")[0]
    whole = dataclasses.replace(problem, code_prefix="")  # evalplus's `solution`: a whole program
    canonical, wrong = sorted(sandbox.check_many([(problem, problem.canonical_solution, 0),
                                                  (whole, buggy.prompt + buggy.buggy_solution, 1)]), key=lambda v: v.sample_index)
    assert canonical.passed and canonical.total_tests == len(problem.base_input) + len(problem.plus_input) > 500, canonical.reason
    assert base_passed(canonical)
    assert not wrong.passed and not base_passed(wrong) and wrong.status == Status.PARTIAL, wrong.reason


def test_a_hang_costs_one_input_limit_and_ends_the_part(sandbox):
    problem = humaneval_plus_0()
    hang_later = "n = [0]\n" + problem.prompt.replace('"""\n', '"""\n    n[0] += 1\n    while n[0] > 3:\n        pass\n', 1) + CLOSE
    deaf_body = "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n"
    ignores_alarm = "import signal\n" + problem.prompt + deaf_body
    start = time.monotonic()
    later, deaf = sorted(sandbox.check_many([(dataclasses.replace(problem, code_prefix=""), hang_later, 0),
                                             (dataclasses.replace(problem, code_prefix=""), ignores_alarm, 1)]),
                         key=lambda v: v.sample_index)
    assert time.monotonic() - start < 30  # each stops at its first input's limit (4 s here), not the part's 60 s
    assert [t.passed for t in later.tests[:4]] == [True, True, True, False] and "timeout" in later.tests[3].error, later.tests[:5]
    assert all("not run" in t.error for t in later.tests[4:])
    assert not deaf.passed and "timeout" in deaf.tests[0].error and all("not run" in t.error for t in deaf.tests[1:])


def test_a_large_job_queued_behind_one_with_many_reports_does_not_stall_the_worker():
    """The worker reads its next job only after the running one is done, and the running one (a
    thousand reported cases) blocked on reports the host did not read while it was writing the next,
    large, job (HumanEval/14's plan is 3 MB): each such pair cost ~100 s and a lost verdict."""
    from sandbox import Sandbox, SandboxConfig

    records = iter_jsonl(DATA_DIR / "evalplus" / "HumanEvalPlus.jsonl.gz")
    wanted = ("HumanEval/13", "HumanEval/14")
    problems = {rec["task_id"]: Problem.from_record(rec, where=where) for where, rec in records if rec["task_id"] in wanted}
    small, large = problems["HumanEval/13"], problems["HumanEval/14"]
    slow_wrong = small.prompt + "    import time\n    time.sleep(0.5)\n    return 1\n"  # reports only after the large job is queued
    start = time.monotonic()
    with Sandbox(SandboxConfig(workers=1)) as sb:
        verdicts = sorted(sb.check_many([(dataclasses.replace(small, code_prefix=""), slow_wrong, 0),
                                         (large, large.canonical_solution, 1)]), key=lambda v: v.sample_index)
    assert time.monotonic() - start < 40
    assert not verdicts[0].passed and "lost" not in verdicts[0].reason, verdicts[0].reason
    assert verdicts[1].passed, verdicts[1].reason


def test_expected_values_marshal_cannot_carry_travel_as_literals(sandbox):
    """The inputs and expected outputs normally travel as marshalled data; a Counter (or a type
    object) cannot, and then they are written into the test code as literals: same verdicts."""
    from sandbox.evalplus import evalplus_plan
    from sandbox.isolation import require_isolation

    counts = Problem.from_record({"task_id": "Mbpp/9001", "prompt": "import collections\n", "entry_point": "tally",
                                  "canonical_solution": "def tally(xs, kind):\n    return collections.Counter(xs), kind\n",
                                  "base_input": [[[1, 1, 2], "int"]], "plus_input": [[[3], "str"], [[], "x"]]})
    plain = dataclasses.replace(counts, task_id="Mbpp/9002", canonical_solution="def tally(xs, kind):\n    return sorted(xs), kind\n")
    assert evalplus_plan(counts, require_isolation(None, False))[3] == ""  # literals in the code
    assert evalplus_plan(plain, require_isolation(None, False))[3] != ""  # marshalled data
    wrong = "def tally(xs, kind):\n    return collections.Counter(xs + [0]), kind\n"
    right, bad, plain_right = sorted(sandbox.check_many([(counts, counts.canonical_solution, 0), (counts, wrong, 1),
                                                         (plain, plain.canonical_solution, 2)]), key=lambda v: v.sample_index)
    assert right.passed and right.total_tests == 3, right.reason
    assert not bad.passed and "wrong output" in bad.tests[0].error
    assert plain_right.passed and plain_right.total_tests == 3, plain_right.reason


def test_large_string_outputs_are_compared_by_digest(sandbox):
    """Expected outputs over 256 KiB travel as a digest (HumanEval/15 returns 7 MB strings); the
    ground truth measures a printable string's wire length without writing it out."""
    from sandbox.evalplus_truth import ground_truth
    from sandbox.isolation import require_isolation
    from sandbox.worker.plaindata import encode_wire

    body = "def spaced(n, q):\n    return q.join(str(i) for i in range(n))\n"
    problem = Problem.from_record({"task_id": "T/digest", "prompt": "", "entry_point": "spaced", "canonical_solution": body,
                                   "base_input": [[100000, ' "\\ '], [3, " "]], "plus_input": []})
    truth = ground_truth(problem, require_isolation(None, False))
    big = " ".join(str(i) for i in range(100000)).replace(" ", ' "\\ ')
    assert truth.base[0][0] == "digest" and truth.base[0][2] == len(encode_wire(big)) and truth.base[1] == encode_wire("0 1 2")
    off_by_one = body.replace("range(n)", "range(n) if i != 99998")
    right, wrong = sorted(sandbox.check_many([(problem, body, 0), (problem, off_by_one, 1)]), key=lambda v: v.sample_index)
    assert right.passed and right.total_tests == 2, right.reason
    assert not wrong.passed and "wrong output" in wrong.tests[0].error, wrong.tests[0]


def test_mbpp_plus_oracles_and_builtin_named_entry_points(sandbox):
    """MBPP+'s "not None" tasks return a re.Match (not plain data: only its None-ness is compared, as
    evalplus does), and Mbpp/126's entry point `sum` shadows the builtin in the test namespace."""
    records = iter_jsonl(DATA_DIR / "evalplus" / "MbppPlus.jsonl.gz")
    problems = {rec["task_id"]: Problem.from_record(rec, where=where) for where, rec in records
                if rec["task_id"] in ("Mbpp/126", "Mbpp/737")}
    match, named_sum = problems["Mbpp/737"], problems["Mbpp/126"]
    jobs = [(match, match.canonical_solution, 0), (match, match.canonical_solution.replace("return re.search", "return not re.search"), 1),
            (named_sum, named_sum.canonical_solution, 2), (named_sum, "def sum(a, b):\n    return a + b\n", 3)]
    right, wrong, sum_right, sum_wrong = sorted(sandbox.check_many(jobs), key=lambda v: v.sample_index)
    assert right.passed and right.total_tests > 100, (right.reason, right.tests[:1])
    assert not wrong.passed and "wrong output" in wrong.tests[0].error
    assert sum_right.passed, (sum_right.reason, sum_right.tests[:1])
    assert not sum_wrong.passed


def test_an_entry_point_named_like_a_builtin_the_comparison_uses(sandbox):
    """Float outputs are compared with abs() (evalplus's allclose); an entry point named `abs`
    shadows the builtin in the test namespace, and must not change how outputs are compared."""
    problem = Problem.from_record({"task_id": "Mbpp/9004", "prompt": "", "entry_point": "abs",
                                   "canonical_solution": "def abs(x):\n    return x if x > 0 else -x\n",
                                   "base_input": [[-1.5], [2.25]], "plus_input": [[-0.1]]})
    right, wrong = sorted(sandbox.check_many([(problem, problem.canonical_solution, 0),
                                              (problem, "def abs(x):\n    return x\n", 1)]), key=lambda v: v.sample_index)
    assert right.passed and right.total_tests == 3, (right.reason, right.tests[:1])
    assert not wrong.passed and "wrong output" in wrong.tests[0].error
