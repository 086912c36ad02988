"""Pure pieces of data_evol against hand values: elimination rules, answer parsing, test and answer
selection, dedupe, templates, the procedural family the default teacher learns."""
from __future__ import annotations

import random

import pytest

from data_evol.answer import parse_answer
from data_evol.dedupe import dedupe
from data_evol.eliminate import elimination_reason, judge_says_equal
from data_evol.procedural import Task, evolve, random_task
from data_evol.prompts import load_templates
from data_evol.records import Answer, Instruction
from data_evol.select import kept_tests, select

LEAKS = ("#Rewritten Test#", "given prompt")
RULES = {"leak_phrases": LEAKS, "min_words": 3, "max_words": 40, "sorry_max_words": 80}
PARENT = "Write a function add3 that returns x plus 3."


@pytest.mark.parametrize("child,reason", [
    ("", "empty"),
    ("#Rewritten Test#\nWrite a function add3 that returns x plus 3 and checks overflow.", "template_leak"),
    ("Rewrite the given prompt to use lists.", "template_leak"),
    ("Sorry, I cannot rewrite this task.", "sorry"),
    ("the of, and... to!", "stopwords_only"),
    ("Sum xs", "too_short"),
    ("word " * 41, "too_long"),
    ("write a function ADD3 that returns x plus 3.", "no_information_gain"),
    ("Write a function add3 that returns x plus.", "no_information_gain"),
    ("Write a function add3 that returns x plus 3. Raise ValueError when x is negative.", ""),
])
def test_elimination_rules(child, reason):
    assert elimination_reason(child, PARENT, **RULES) == reason


def test_a_long_apology_is_not_a_non_answer():
    text = "Sorry for the long task: " + "compute the running median of the stream of numbers " * 10
    assert elimination_reason(text, PARENT, **RULES) != "sorry"


def test_judge_reply_parsing():
    assert judge_says_equal("Equal") is True
    assert judge_says_equal("Not Equal.") is False
    assert judge_says_equal("  not   equal") is False
    assert judge_says_equal("I think so") is None


def test_parse_answer_splits_solution_and_tests():
    reply = ("Here you go:\n```python\ndef solve(x):\n    return x + 1\n\nassert solve(0) == 1\n```\nTests:\n```python\n"
             "assert solve(1) == 2\nassert solve(1) == 2\nassert other(3) == 1\nprint('x')\n```")
    solution, tests, entry, problem = parse_answer(reply)
    assert solution == "def solve(x):\n    return x + 1\n"
    assert tests == ["assert solve(0) == 1", "assert solve(1) == 2"]  # deduplicated, other functions' asserts dropped
    assert (entry, problem) == ("solve", "")
    assert parse_answer("No code here.")[3] == "no_code"
    assert parse_answer("```python\ndef f(x):\n    return x\n```")[3] == "no_tests"
    assert parse_answer("Sorry, I can't help with that.")[3] == "refused"


def _validation(results, authors=("a", "a", "b", "b")):
    return {"id": "t", "entry_point": "f", "tests": [f"assert f({i}) == {i}" for i in range(4)], "authors": list(authors),
            "solvers": list(results), "results": results, "entry_point_mismatch": []}


def test_tests_failed_by_their_author_or_flaky_are_dropped():
    results = {"a": [[True, False, True, True], [True, False, True, True]],
               "b": [[True, True, True, False], [True, True, False, False]]}
    keep, counts = kept_tests(_validation(results))
    # test 1: author a fails it; test 2: b's result flips (flaky); test 3: author b fails it
    assert keep == [0] and counts == {"author_failed": 2, "flaky": 1, "contradicts_anchor": 0}


def test_a_weak_teachers_consistent_wrong_tests_do_not_sink_the_better_answer():
    # a (first: the better teacher) passes its own tests 0-1; b wrote tests 2-3, which its wrong solution passes and a fails
    results = {"a": [[True, True, False, False]] * 2, "b": [[False, False, True, True]] * 2}
    keep, counts = kept_tests(_validation(results, authors=("a", "a", "b", "b")))
    assert keep == [0, 1] and counts["contradicts_anchor"] == 2


def test_select_keeps_every_teacher_passing_ones_first_in_priority_order():
    task = Instruction(id="t", seed_id="s", instruction="Write f(x) returning x.", round=1, method="constraints")
    ok = [[True] * 4, [True] * 4]
    answers = {t: Answer(id="t", teacher=t, solution=f"def f(x):\n    return x  # {t}\n") for t in ("a", "b", "c")}
    results = {"a": ok, "b": ok, "c": [[True, True, True, False]] * 2}
    record, reason, details = select(task, _validation(results), answers, min_tests=3)
    assert reason == "" and [t["teacher"] for t in record["teacher_answers"]] == ["a", "b", "c"]  # c fails: ranked last
    assert record["canonical_solution"] == answers["a"].solution and len(record["test_list"]) == 4
    assert record["evol"]["method"] == "constraints" and record["evol"]["round"] == 1
    assert details["teacher_passed"] == {"a": True, "b": True, "c": False}
    assert select(task, _validation(results), answers, min_tests=5)[1] == "too_few_tests"
    disagree = {"a": [[True, True, True, False]] * 2, "b": [[False, True, True, True]] * 2}
    record, _, details = select(task, _validation(disagree, authors=("a", "b", "b", "b")), answers, min_tests=2)
    assert [t["teacher"] for t in record["teacher_answers"]] == ["a", "b"] and len(record["test_list"]) == 3  # a (first) decides
    assert details["contradicts_anchor"] == 1
    assert select(task, _validation(results), answers, min_tests=3, contaminated=lambda s: "hit")[1] == "contaminated_solution"


def test_select_names_the_function_when_the_task_does_not():
    task = Instruction(id="t", seed_id="t", instruction="Return the input unchanged.")
    answers = {"a": Answer(id="t", teacher="a", solution="def f(x):\n    return x\n")}
    record, _, _ = select(task, _validation({"a": [[True] * 4] * 2}, authors="aaaa"), answers, min_tests=1)
    assert record["prompt"].endswith("Name the function `f`.")


def test_dedupe_exact_then_near():
    items = [("a", "Write a function that returns the sum of a list of numbers."),
             ("b", "write a function that returns the   SUM of a list of numbers."),
             ("c", "Write a function that returns the sum of a list of numbers, please."),
             ("d", "Reverse a linked list in place without extra memory.")]
    kept, removed = dedupe(items, threshold=0.7)
    assert kept == ["a", "d"]
    assert {(r["id"], r["reason"], r["duplicate_of"]) for r in removed} == {("b", "exact", "a"), ("c", "near", "a")}


def test_templates_file_errors_name_the_field(tmp_path):
    t = load_templates()
    assert set(t.methods) == {"constraints", "specific", "reasoning", "misdirection", "complexity", "contest"}
    assert t.methods["complexity"].weight < t.methods["constraints"].weight  # "rarely"
    assert "{x}" in t.evolve_messages("constraints", "f({x})")[-1]["content"]  # braces in tasks survive
    bad = tmp_path / "t.yaml"
    bad.write_text("evolve:\n  methods:\n    m:\n      template: no placeholder\nanswer:\n  template: '{instruction}'\n"
                   "judge:\n  template: '{parent} {child}'\n")
    with pytest.raises(ValueError, match=r"evolve.methods.m|'template' must contain"):
        load_templates(bad)


def test_config_from_yaml_and_flags(tmp_path):
    from data_evol.config import EvolConfig, parse_args

    path = tmp_path / "evol.yaml"
    path.write_text("rounds: 4\nteachers: [default, 'openai-chat:http://h/v1#m']\nmin_tests: 2\n")
    cfg = parse_args(EvolConfig, ["--config", str(path), "--min_tests", "5"])
    assert (cfg.rounds, cfg.min_tests, cfg.teachers[1]) == (4, 5, "openai-chat:http://h/v1#m")
    assert cfg.answer_max_new_tokens == 512 and parse_args(EvolConfig, []).answer_max_new_tokens == 192
    with pytest.raises(ValueError, match="validate_runs"):
        EvolConfig(validate_runs=1)


def test_procedural_methods_and_reference_answers():
    rng = random.Random(0)
    for _ in range(50):
        task = random_task(rng)
        for method in ("constraints", "specific", "reasoning", "misdirection", "complexity", "contest"):
            child = evolve(task, method, rng)
            if child is None:
                continue
            assert child.text() != task.text()
            namespace: dict = {}
            exec(child.solution(), namespace)  # the reference answer passes its own tests
            for test in child.tests(rng, 5):
                exec(test, namespace)
    task = Task("solve", random_task(random.Random(1)).steps)
    assert "erroneous code" in evolve(task, "misdirection", rng).text()
