"""RRTFTrainer on a tiny random StarCoder: ranking improves, LoRA trains only adapters, SFT mode, Trainer options."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from datasets import Dataset
from testkit import REPO

from rrtf.config import RRTFConfig
from rrtf.losses import rank_accuracy
from rrtf.modeling import load_model, load_starcoder_tokenizer
from rrtf.packing import PackedLayout, RRTFCollator
from rrtf.records import RankedGroup
from rrtf.trainer import build_trainer
from rrtf.tuning.lora import LoraOptions


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RESPONSES = ["    return x + 1\n", "    return x\n", "    pass\n", "    return None\n", "    return -x\n"]


@pytest.fixture(scope="module")
def tok():
    return load_starcoder_tokenizer()


@pytest.fixture(scope="module")
def model_dir(tiny_dir):
    return tiny_dir


def config(tmp_path, tuning_options=None, **overrides):
    base = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=12, learning_rate=1e-2,
        lr_scheduler_type="constant", logging_steps=4, save_strategy="no", report_to="none", use_cpu=True,
        max_length=64, seed=0,
    )
    cfg = RRTFConfig(**(base | overrides))
    cfg.tuning_options = tuning_options
    return cfg


def scores(model, tok, groups):
    batch = RRTFCollator(tok, 64)(groups)
    model.eval()
    with torch.no_grad():
        p = PackedLayout().scores(model, batch)
    return p, batch


def reversed_groups(model, tok):
    """Four prompts whose rewards order the candidates exactly opposite to the untrained model."""
    groups = [RankedGroup(task_id=f"f{i}", prompt=f"def f{i}(x):\n", responses=RESPONSES, rewards=[0.0, 1.0, 2.0, 3.0, 4.0]) for i in range(4)]
    p, _ = scores(model, tok, groups)
    for group, row in zip(groups, p):
        rank = row.argsort(descending=True).argsort()  # 0 = the model's favourite
        group.rewards = [float(x) for x in rank.tolist()]  # the favourite gets the lowest reward
        group.best_teacher = int(rank.argmax())  # the highest reward is the teacher's answer
    return groups


def test_training_reduces_loss_and_fixes_the_ranking(model_dir, tok, tmp_path):
    model = load_model(model_dir, dtype=torch.float32)
    groups = reversed_groups(model, tok)
    p, batch = scores(model, tok, groups)
    before = rank_accuracy(p, batch["rewards"], batch["candidate_mask"]).item()
    assert before == 0.0
    dataset = Dataset.from_list([g.to_record() for g in groups])  # the trainer takes datasets too
    trainer = build_trainer(model, tok, config(tmp_path), dataset)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss_rank" in h]
    assert len(logs) == 3 and {"loss", "loss_rank", "loss_sft", "rank_accuracy"} <= logs[0].keys()
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert logs[-1]["loss_rank"] < logs[0]["loss_rank"]
    p, batch = scores(trainer.model, tok, groups)
    after = rank_accuracy(p, batch["rewards"], batch["candidate_mask"]).item()
    assert after > 0.8, f"rank accuracy {before} -> {after}"
    metrics = trainer.evaluate(groups)  # the Trainer's eval loop runs the same loss
    assert metrics["eval_rank_accuracy"] == pytest.approx(after) and metrics["eval_loss"] < logs[0]["loss"]


def test_lora_trains_only_adapters_and_saves_an_adapter(model_dir, tok, tmp_path):
    model = load_model(model_dir, dtype=torch.float32)
    groups = reversed_groups(model, tok)
    base_before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(tmp_path, tuning_method="lora", max_steps=3,
                 tuning_options=LoraOptions(lora_r=4, lora_alpha=8, lora_dropout=0.0))
    trainer = build_trainer(model, tok, cfg, groups)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # Astraios' StarCoder targets by default: c_attn and c_proj (attention output and mlp.c_proj), not c_fc
    assert {".".join(n.split(".")[-5:-3]) for n in trainable if "lora_A" in n} == {"attn.c_attn", "attn.c_proj", "mlp.c_proj"}
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if "lora_B" in n and not torch.equal(p, lora_before[n])]
    assert changed
    base = trainer.model.get_base_model()
    for name, value in base.state_dict().items():
        if "lora_" not in name and "base_layer" not in name and name in base_before:
            assert torch.equal(value, base_before[name]), name
    trainer.save_model(str(tmp_path / "adapter"))
    saved = set(os.listdir(tmp_path / "adapter"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= saved and "model.safetensors" not in saved
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 4


def test_rank_loss_off_is_sft_on_the_best_teacher(model_dir, tok, tmp_path):
    model = load_model(model_dir, dtype=torch.float32)
    groups = reversed_groups(model, tok)
    groups.append(RankedGroup(task_id="no-teacher", prompt="x = ", responses=["1", "2"], rewards=[1.0, 0.0]))
    trainer = build_trainer(model, tok, config(tmp_path, rank_loss=False, max_steps=4), groups)
    assert len(trainer.train_dataset) == 4  # the group without a teacher has nothing to imitate
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["candidate_mask"].shape[1] == 1 and torch.all(batch["best_index"] == 0)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss_rank" in h]
    assert logs and all(h["loss_rank"] == 0.0 and h["loss"] == pytest.approx(h["loss_sft"], rel=1e-4) for h in logs)


def test_bf16_checkpointing_and_accumulation_go_through_training_arguments(model_dir, tok, tmp_path):
    model = load_model(model_dir, dtype=torch.float32)
    groups = reversed_groups(model, tok)
    cfg = config(tmp_path, bf16=True, activation_checkpointing=True, gradient_accumulation_steps=2,
                 per_device_train_batch_size=1, max_steps=2, logging_steps=1)
    before = model.transformer.h[0].attn.c_attn.weight.detach().clone()
    trainer = build_trainer(model, tok, cfg, groups)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in logs)
    assert not torch.equal(before, trainer.model.transformer.h[0].attn.c_attn.weight)


@pytest.mark.slow
def test_two_processes_with_torchrun(model_dir, tmp_path):
    """DDP on CPU (gloo): both ranks train the same model on their share of the groups."""
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        from rrtf.config import RRTFConfig
        from rrtf.modeling import load_model, load_starcoder_tokenizer
        from rrtf.records import RankedGroup
        from rrtf.trainer import build_trainer
        torch.set_num_threads(1)
        groups = [RankedGroup(task_id=f"f{{i}}", prompt=f"def f{{i}}(x):\\n", responses={RESPONSES!r},
                              rewards=[4.0, 3.0, 2.0, 1.0, 0.0], best_teacher=0) for i in range(4)]
        cfg = RRTFConfig(output_dir={str(tmp_path / 'out')!r}, per_device_train_batch_size=1, max_steps=2, logging_steps=1,
                         save_strategy="no", report_to="none", use_cpu=True, max_length=64, learning_rate=1e-3)
        trainer = build_trainer(load_model({str(model_dir)!r}, dtype=torch.float32), load_starcoder_tokenizer(), cfg, groups)
        trainer.train()
        w = trainer.model.transformer.h[0].attn.c_attn.weight
        # one file per rank: two processes printing to one pipe interleave their lines
        result = {{"rank": trainer.args.process_index, "world": trainer.args.world_size,
                  "checksum": float(w.double().sum()),
                  "logs": [h for h in trainer.state.log_history if "loss_rank" in h]}}
        with open({str(tmp_path)!r} + f"/result{{trainer.args.process_index}}.json", "w") as f:
            json.dump(result, f)
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531", str(script)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("result*.json"))]
    assert sorted(r["rank"] for r in results) == [0, 1] and all(r["world"] == 2 for r in results)
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], abs=1e-6)  # DDP kept them in sync
    assert len(results[0]["logs"]) == 2 and "rank_accuracy" in results[0]["logs"][0]
