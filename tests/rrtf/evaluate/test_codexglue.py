"""Clone detection (BigCloneBench) and defect detection (Devign) asked to a generative model as Astraios
asks them: the prompt, the parsing of the answer, the label judge on real examples both ways, the
scores, Astraios' class-stratified sample, and what happens without the data (not shipped: see
docs/evaluation.md).

Real examples, in CodeXGLUE's file formats:
- BigCloneBench functions as BigCloneBench stores them (functionality_fileid#start#end), from
  jkrinke/BigCloneBench-Sample-Validation BCB406/snippets at adcbb1f: two Fibonacci methods (functionality
  20, a pair tagged a true clone there and confirmed by its two human judges) and a list shuffle
  (functionality 13): a pair across functionalities is what CodeXGLUE's non-clone pairs are.
- A vulnerable and a fixed C function: Asleep at the Keyboard's CWE-476 scenario completed by its known
  insecure (malloc's result used unchecked) and known secure completion (data/aatk/validation_dow.jsonl).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rrtf.datasets import DatasetUnavailable, load_dataset
from rrtf.datasets.aatk import validation_pairs
from rrtf.datasets.codexglue import ENV_DIR, astraios_sample, label_problem
from rrtf.evaluate import EvalConfig, build_eval_backend, evaluate
from rrtf.evaluate.static_judge import judge_label
from rrtf.evaluate.static_scores import classification
from rrtf.evaluate.summary import markdown
from rrtf.prompts import get_strategy
from rrtf.prompts.strategies.classify import parse_label
from sandbox.base.records import Status

FIB_A = ("private int fib ( int x ) {\n    if ( x == 0 ) {\n        return 0;\n    }\n    if ( x == 1 ) {\n        return 1;\n    }\n"
         "    return fib ( x - 1 ) + fib ( x - 2 );\n}\n")  # 20_76273#13#17
FIB_B = ("public static int f ( int n ) {\n    if ( n == 1 ) {\n        return 1;\n    } else if ( n == 2 ) {\n        return 1;\n"
         "    } else {\n        return f ( n - 1 ) + f ( n - 2 );\n    }\n}\n")  # 20_843174#20#28
SHUFFLE = ("public static void shuffleList ( List<Integer> a ) {\n    int n = a.size();\n    Random random = new Random();\n"
           "    random.nextInt();\n    for ( int i = 0; i < n; i++ ) {\n        int change = i + random.nextInt ( n - i );\n"
           "        swap ( a, i, change );\n    }\n}\n")  # 13_212699#9#17


@pytest.fixture
def codexglue_dir(tmp_path, monkeypatch):
    clone = tmp_path / "bigclonebench"
    clone.mkdir()
    clone.joinpath("data.jsonl").write_text("".join(json.dumps({"func": f, "idx": i}) + "\n"
                                                    for i, f in (("76273", FIB_A), ("843174", FIB_B), ("212699", SHUFFLE))))
    clone.joinpath("test.txt").write_text("76273\t843174\t1\n76273\t212699\t0\n")
    scenario, pair = load_dataset("aatk").problems, validation_pairs()["DoW/CWE-476-0"]
    prob = next(p for p in scenario if p.task_id == "DoW/CWE-476-0")
    defect = tmp_path / "devign"
    defect.mkdir()
    defect.joinpath("test.jsonl").write_text("".join(
        json.dumps({"project": "aatk", "commit_id": "-", "target": target, "func": prob.code_prefix + pair[kind] + prob.test, "idx": idx}) + "\n"
        for idx, (kind, target) in enumerate((("insecure", 1), ("secure", 0)))))
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(("answer", "label"), [
    (" Yes", "yes"), (" YES, they are clones.", "yes"), (" No.", "no"), (" no", "no"),
    (" They are not clones", "no"),  # "no" inside "not": Astraios' substring test
    (" Yes and no", "unknown"), (" Maybe", "unknown"), ("", "unknown"),
    (" I cannot tell", "no"),  # "no" inside "cannot": the same quirk
    (" Maybe. There is a clone relation", "yes"),  # first sentence undecided: the positive key phrase
])
def test_parse_label_as_astraios(answer, label):
    assert parse_label(answer, "clone-detect") == label


def test_parsing_agrees_with_astraios_on_its_own_answers():
    # 600 real answers of Astraios' StarCoderBase models to the defect question, each with the label
    # Astraios' harness parsed from it (data/astraios/README.md). On all 73,764 answers of its 27 output
    # files the agreement was 100% when measured (docs/evaluation.md); these keep it checked.
    from rrtf.paths import DATA_DIR

    records = [json.loads(line) for line in (DATA_DIR / "astraios" / "defect_answers_sample.jsonl").read_text().splitlines()]
    assert {r["prediction"] for r in records} == {"1", "0", "-1"} and len(records) == 600
    strategy = get_strategy("defect-detect")
    problem = label_problem("Devign/0", "q", True, "c", "devign", "test")
    as_astraios = {"yes": "1", "no": "0", "unknown": "-1"}
    wrong = [r for r in records if as_astraios[strategy.completion(problem, r["answer"])] != r["prediction"]]
    assert not wrong, wrong[:3]


def test_defect_key_phrases_differ_from_clone():
    answer = " Perhaps. The function has a defect"
    assert parse_label(answer, "defect-detect") == "yes" and parse_label(answer, "clone-detect") == "unknown"
    assert parse_label(" Perhaps. there is no defect", "defect-detect") == "no"


def test_prompts_are_astraios_questions_without_template(codexglue_dir):
    clone, defect = load_dataset("bigclonebench:test").problems, load_dataset("devign:test").problems
    strategy = get_strategy("clone-detect")
    text = strategy.prompt(clone[0], "alpaca")
    assert text == clone[0].prompt and text.startswith("Question: Code1: " + FIB_A + ".\nCode2: " + FIB_B + ".\n")
    assert text.endswith("Is there a clone relation between the Code1 and Code2, and respond to YES or NO.\n\nAnswer:")
    assert defect[0].prompt.startswith("Question: #include") and defect[0].prompt.endswith(
        "}\n\nIs there a defect in the Code, and respond to YES or NO.\n\nAnswer:")  # the function as stored, then the question
    assert strategy.stop(clone[0])[0] == "\n"
    assert strategy.completion(clone[0], " Yes\nNo") == "yes"  # the first line only


def test_clone_judge_on_a_true_clone_and_a_non_clone(codexglue_dir):
    clone, other = load_dataset("bigclonebench:test").problems
    assert (clone.canonical_solution, other.canonical_solution) == ("yes", "no")
    strategy = get_strategy("clone-detect")
    assert judge_label(clone, strategy.completion(clone, " Yes"), 0).status == Status.PASSED
    assert judge_label(clone, strategy.completion(clone, " No"), 0).status == Status.PARTIAL
    assert judge_label(other, strategy.completion(other, " No, they differ"), 0).status == Status.PASSED
    assert judge_label(other, strategy.completion(other, " Yes"), 0).status == Status.PARTIAL
    assert judge_label(other, strategy.completion(other, " Hmm"), 0).status == Status.COMPILE_ERROR  # no label: invalid


def test_defect_judge_on_a_vulnerable_and_a_fixed_function(codexglue_dir):
    vulnerable, fixed = load_dataset("devign:test").problems
    assert (vulnerable.canonical_solution, fixed.canonical_solution) == ("yes", "no")
    strategy = get_strategy("defect-detect")
    assert judge_label(vulnerable, strategy.completion(vulnerable, " Yes"), 0).status == Status.PASSED
    assert judge_label(vulnerable, strategy.completion(vulnerable, " No"), 0).status == Status.PARTIAL
    assert judge_label(fixed, strategy.completion(fixed, " No"), 0).status == Status.PASSED
    assert judge_label(fixed, strategy.completion(fixed, " Yes, there is a defect"), 0).status == Status.PARTIAL


def test_reference_evaluation_scores_both_datasets(codexglue_dir, sandbox, tmp_path):
    problems = {name: load_dataset(f"{name}:test").problems for name in ("bigclonebench", "devign")}
    cfg = EvalConfig(backend="reference", num_samples=0, output_file=str(tmp_path / "results.json"))
    result = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    for name in problems:
        m = result.datasets[name].metrics["classification"]["greedy"]
        assert (m["accuracy"], m["f1_macro"], m["f1"], m["valid_rate"], m["tp"], m["tn"]) == (1.0, 1.0, 1.0, 1.0, 1, 1), (name, m)
    assert "## Classification" in markdown(result)


def test_classification_scores_by_hand():
    pairs = [("yes", "passed"), ("yes", "partial"), ("no", "passed"), ("no", "partial"), ("yes", "compile_error"), ("no", "passed")]
    m = classification(pairs)
    # predictions: yes, no, no, yes, invalid, no. F1(yes) = 2*1/(2*1+3), F1(no) = 2*2/(2*2+2), F1(invalid) = 0.
    assert m["accuracy"] == 0.5 and m["f1"] == pytest.approx(0.4)
    assert m["f1_macro"] == pytest.approx((0.4 + 4 / 6 + 0.0) / 3)
    assert (m["precision"], m["recall"]) == (0.5, pytest.approx(1 / 3))
    assert m["valid_rate"] == pytest.approx(5 / 6) and m["valid_accuracy"] == 0.6 and m["valid_f1"] == 0.5
    assert (m["tp"], m["fp"], m["fn"], m["tn"], m["unparsed"], m["not_run"]) == (1, 1, 2, 2, 1, 0)


def test_astraios_sample_draws_its_class_counts():
    problems = [label_problem(f"Devign/{i}", "q", i % 2 == 0, "c", "devign", "test") for i in range(2732)][:2510]  # 1255 +, 1255 -
    problems += [label_problem(f"Devign/x{i}", "q", False, "c", "devign", "test") for i in range(222)]  # 1477 - in all
    chosen = astraios_sample(problems, "devign")
    assert sum(p.canonical_solution == "yes" for p in chosen) == 919 and len(chosen) == 2000
    assert len({p.task_id for p in chosen}) == 2000 and chosen == astraios_sample(problems, "devign")  # deterministic
    with pytest.raises(ValueError, match="needs 1000 positives"):
        astraios_sample(problems, "bigclonebench")


def test_the_default_split_is_astraios_sample_and_needs_the_whole_test_split(codexglue_dir):
    # Two pairs cannot hold Astraios' 274 + 1,726: the default split says so instead of scoring a different sample.
    with pytest.raises(ValueError, match="Astraios' sample needs"):
        load_dataset("bigclonebench")


def test_missing_data_is_reported_not_invented(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match=ENV_DIR):
        load_dataset("devign")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "rrtf.evaluate", "--backend", "reference", "--num_samples", "0",
                           "--datasets", "bigclonebench", "devign", "--output_file", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 1, proc.stderr[-2000:]
    datasets = json.loads(out.read_text())["datasets"]
    assert "BigCloneBench data not found" in datasets["bigclonebench"]["error"] and "Devign data not found" in datasets["devign"]["error"]
