"""Training methods (issue 20, rrtf.methods): each one's own code path trains a few steps on a tiny real model
and lowers its loss; what each trains on is selected from the ranked candidates as documented; GRPO's sandbox
reward gives nothing to planted reward-hacking completions (real sandbox); and, slow, `python -m rrtf.train
--method NAME` runs end to end for every method."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from testkit import REPO

from rrtf.config import RRTFConfig
from rrtf.methods import METHODS, build_method
from rrtf.methods.dpo import preference_pairs
from rrtf.methods.multi_round import per_round_samples
from rrtf.methods.ranking import best_candidate_targets
from rrtf.methods.rft import passing_groups
from rrtf.records import RankedGroup

ALL = ["dpo", "grpo", "multi_round", "rft", "rrtf", "rrtf_best", "rrtf_gap", "sft"]
PROMPT = "### Instruction:\nDefine a function named update that finds the minimum of the list xs.\n### Response:\n"


def group() -> RankedGroup:
    """A ranked group as the ranker writes it: the reference (teacher, passes), a passing student, a failing one
    and one that does not compile (rewards = status + teacher bonus, rrtf.ranker)."""
    return RankedGroup(task_id="tiny/0", prompt=PROMPT,
                       responses=["def update(xs):\n    return min(xs)\n", "def update(xs):\n    return sorted(xs)[0]\n",
                                  "def update(xs):\n    return max(xs)\n", "def update(xs:\n    return\n"],
                       rewards=[3.5, 3.0, 1.0, 0.0], sources=["reference", "student", "student", "student"],
                       statuses=["passed", "passed", "runtime_error", "compile_error"], best_teacher=0)


def test_every_method_is_registered_and_configures_the_run(tmp_path):
    assert METHODS.names() == ALL
    cfg = lambda m, **kw: RRTFConfig(output_dir=str(tmp_path / m), method=m, **kw)  # noqa: E731
    assert cfg("rrtf").rank_weighting == "paper" and cfg("rrtf").rank_loss
    assert cfg("rrtf_gap").rank_weighting == "score_gap"
    assert not cfg("sft").rank_loss and not cfg("rft").rank_loss
    assert cfg("multi_round").rounds == 2 and cfg("multi_round", rounds=3).rounds == 3
    # the method is part of the run's identity: two methods never share an output directory by default
    assert RRTFConfig(method="sft").output_dir != RRTFConfig().output_dir == "outputs/rrtf-default"
    with pytest.raises(ValueError, match="unknown training method 'ppo'"):
        RRTFConfig(output_dir=str(tmp_path / "x"), method="ppo")


def test_what_each_method_trains_on_is_chosen_from_the_verdicts():
    g = group()
    rft = passing_groups([g])
    assert [x.responses for x in rft] == [[g.responses[0]], [g.responses[1]]]  # teacher and student, both passing
    assert all(x.best_teacher == 0 and x.statuses == ["passed"] for x in rft)
    # rrtf_best: RRHF's target, the best passing candidate of any source -- the passing teacher while there is
    # one (its bonus), else the best passing student; a group where nothing passes keeps no target
    assert best_candidate_targets([g])[0].best_teacher == 0
    students = RankedGroup(task_id="t", prompt="p", responses=g.responses[1:], rewards=g.rewards[1:], sources=g.sources[1:],
                           statuses=g.statuses[1:], best_teacher=-1)
    assert best_candidate_targets([students])[0].best_teacher == 0
    failing = RankedGroup(task_id="t", prompt="p", responses=g.responses[2:], rewards=g.rewards[2:], statuses=g.statuses[2:])
    assert best_candidate_targets([failing])[0].best_teacher == -1
    (pair,) = preference_pairs([g])
    assert (pair["chosen"], pair["rejected"]) == (g.responses[0], g.responses[3])  # best vs worst by verdict
    tie = RankedGroup(task_id="t", prompt="p", responses=["a", "b"], rewards=[1.0, 1.0])
    assert preference_pairs([tie]) == [] and passing_groups([tie]) == []
    assert per_round_samples(6, 2) == 3 and per_round_samples(5, 2) == 3 and per_round_samples(0, 2) == 0
    assert build_method("multi_round").sampler_overrides(RRTFConfig(output_dir="/tmp/x", method="multi_round"), 1) == {"num_samples": 3}


@pytest.mark.parametrize("name", ["rrtf", "rrtf_gap", "sft", "rft", "dpo", "multi_round"])
def test_each_method_trains_and_lowers_its_loss(name, tiny_dir, tmp_path):
    """The method's own trainer (RRTFTrainer or TRL's DPOTrainer) on its own selection of the ranked group."""
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.trainer import RRTFTrainer
    from rrtf.tuning import build_tuning_method

    torch.manual_seed(0)
    config = RRTFConfig(output_dir=str(tmp_path), model_name_or_path=str(tiny_dir), method=name, max_steps=6, learning_rate=5e-3,
                        per_device_train_batch_size=1, logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True)
    training, tuning = build_method(config), build_tuning_method(config)
    model = tuning.apply(load_model(str(tiny_dir), dtype=torch.float32), config)
    tokenizer = load_tokenizer(str(tiny_dir))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = training.training_groups([group()])
    trainer = training.make_trainer(config, model, tokenizer, data, tuning, config) or RRTFTrainer(
        model=model, args=config, train_dataset=[g.to_record() for g in data], processing_class=tokenizer, tuning_method=tuning)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items() if k in before)
    if name == "dpo":
        assert abs(losses[0] - 0.6931) < 1e-2  # the policy starts equal to its reference: -log sigmoid(0)


def test_grpo_trains_a_step_from_sandbox_rewards(sandbox, tmp_path):
    """GRPO's own trainer (rrtf.methods.grpo.grpo_trainer: TRL's GRPOTrainer, SandboxReward) on the warm tiny
    StarCoder, which sometimes passes: rewards differ within a group, so the policy loss is non-zero and moves
    the weights; every completion is judged and logged."""
    from rrtf.datasets import load_dataset
    from rrtf.methods.grpo import REWARD_KIND, grpo_trainer
    from rrtf.modeling import load_model, load_tokenizer
    from rrtf.rollout import ask
    from rrtf.rollout.reward import SandboxReward
    from rrtf.tiny import ensure_tiny_model

    path = str(ensure_tiny_model("warm", progress=False))
    asked = ask("tiny-tasks", load_dataset("tiny-tasks").problems[:4])
    config = RRTFConfig(output_dir=str(tmp_path), method="grpo", max_steps=2, num_samples=4, max_new_tokens=32, learning_rate=1e-3,
                        per_device_train_batch_size=2, logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True,
                        num_train_epochs=1)
    model = load_model(path, dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with SandboxReward(asked, kind=REWARD_KIND, sandbox=sandbox, log_path=tmp_path / "v.jsonl") as reward:
        trainer = grpo_trainer(config, config, model, load_tokenizer(path), asked, reward)
        trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and any(h["loss"] != 0 for h in logs), logs
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    judged = (tmp_path / "v.jsonl").read_text().splitlines()
    assert len(judged) == 2 * 2 * 4  # 2 steps x 2 prompts x 4 completions, each judged once


HACKS = {
    "exits early (sys.exit)": "import sys\nsys.exit(0)\ndef update(xs):\n    return min(xs)\n",
    "exits early inside the call": "def update(xs):\n    import os\n    os._exit(0)\n",
    "forges a pass marker": "def update(xs):\n    print('PASSED: all tests passed'); print('{\"passed\": true, \"status\": \"passed\"}')\n"
                            "    raise SystemExit(0)\n",
    "silences the asserts": "import builtins\nbuiltins.AssertionError = BaseException\ndef update(xs):\n    return 0\n",
    "equal to everything": "class A:\n    def __eq__(self, o): return True\ndef update(xs):\n    return A()\n",
}


def test_grpo_reward_gives_planted_reward_hacks_nothing(sandbox, tmp_path):
    """The reward GRPO trains with (rrtf.methods.grpo: SandboxReward, pass fraction), called as GRPOTrainer calls it,
    on completions that try to look like passes: each gets reward 0, and the real answer still gets 1."""
    from rrtf.datasets import load_dataset
    from rrtf.methods.grpo import REWARD_KIND
    from rrtf.rollout import ask
    from rrtf.rollout.reward import SandboxReward

    asked = ask("tiny-tasks", load_dataset("tiny-tasks").problems[:1])
    completions = ["def update(xs):\n    return min(xs)\n", *HACKS.values()]
    with SandboxReward(asked, kind=REWARD_KIND, sandbox=sandbox, log_path=tmp_path / "v.jsonl") as reward:
        got = reward(prompts=[asked[0].prompt()] * len(completions), completions=completions, task_id=[asked[0].task_id] * len(completions),
                     trainer_state=None)
    assert got[0] == 1.0
    assert dict(zip(HACKS, got[1:])) == dict.fromkeys(HACKS, 0.0)
    log = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["status"] == "passed" for r in log] == [True] + [False] * len(HACKS)


def run_train(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "rrtf.train", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.extended  # each method trains for real here; test_methods.py covers each method's step in seconds
@pytest.mark.parametrize("name", ALL)
def test_train_runs_each_method_end_to_end(name, tmp_path):
    """`python -m rrtf.train --method NAME` on the warm tiny default (few prompts): trains, evaluates, reports."""
    out = tmp_path / name
    proc = run_train("--method", name, "--output_dir", str(out), "--max_problems", "8", "--eval_max_problems", "4", "--num_samples", "4",
                     "--max_new_tokens", "48", "--max_steps", "2", "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == name and "pass@1" in metrics["eval_after"]
    history = json.loads((out / "round0" / "log_history.json").read_text())
    assert [h["loss"] for h in history if "loss" in h], history
    if name == "grpo":  # online: every completion judged and logged, no ranking
        log = [json.loads(line) for line in (out / "round0" / "reward_verdicts.process0.jsonl").read_text().splitlines()]
        # one generation of 4 prompts x 4 completions, optimised on for both steps (num_iterations = 3 epochs)
        assert len(log) == 4 * 4 and not (out / "round0" / "ranked.jsonl").exists()
        stats = json.loads((out / "round0" / "rank_stats.json").read_text())
        assert sum(stats["statuses"]["student"].values()) == len(log)
    if name == "multi_round":  # round 1 re-sampled the student trained in round 0, half the samples each round
        cands = [json.loads(line) for line in (out / "round1" / "candidates.jsonl").read_text().splitlines()]
        assert {c["round"] for c in cands} == {1} and sum(c["source"] == "student" for c in cands) == 8 * 2
    # a second run of the same command resumes: nothing left to do
    again = run_train("--method", name, "--output_dir", str(out), "--max_problems", "8", "--eval_max_problems", "4", "--num_samples", "4",
                      "--max_new_tokens", "48", "--max_steps", "2", "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["eval_after"] == metrics["eval_after"]
