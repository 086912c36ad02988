"""Every tuning method on the tiny StarCoder: it trains only what it should, in RRTF and SFT mode and in
both layouts; it saves and reloads to identical outputs; it resumes a Trainer checkpoint onto the
uninterrupted run's weights; activation checkpointing changes nothing; it merges where that is possible
and refuses what cannot work before training starts."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from tuningkit import ALL_METHODS, make_groups, perturb, trainable_state

from rrtf.config import RRTFConfig
from rrtf.modeling import load_model
from rrtf.packing import LAYOUTS, PackedLayout, RRTFCollator
from rrtf.trainer import build_trainer
from rrtf.tuning import NotMergeable, build_tuning_method, load_saved
from rrtf.tuning.base import count_parameters

MERGEABLE = {"full", "lora", "ia3"}


def config(tmp_path, method: str, options=None, **overrides) -> RRTFConfig:
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-2,
                lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                max_length=64, seed=0, tuning_method=method, disable_tqdm=True)
    cfg = RRTFConfig(**(base | overrides))
    cfg.tuning_options = options
    return cfg


def scores(method, model, tok, groups, layout: str = "packed") -> torch.Tensor:
    batch = RRTFCollator(tok, 64, layout=layout)([g.to_record() for g in groups])
    was = model.training
    model.eval()
    with torch.no_grad():
        p = method.layout(LAYOUTS[layout]()).scores(model, batch)
    model.train(was)
    return p


def applied(method_name: str, model_dir, options=None, *, nudge: bool = True):
    method = build_tuning_method(method_name, options)
    model = method.apply(load_model(model_dir, dtype=torch.float32))
    if nudge:
        perturb(model)
    return method, model


@pytest.mark.parametrize("rank_loss", [True, False], ids=["rrtf", "sft"])
@pytest.mark.parametrize("name", ALL_METHODS)
def test_trains_only_its_parameters_and_reloads_identically(name, rank_loss, tiny_dir, tok, tmp_path):
    groups = make_groups()
    model = load_model(tiny_dir, dtype=torch.float32)
    trainer = build_trainer(model, tok, config(tmp_path, name, rank_loss=rank_loss), [g.to_record() for g in groups])
    method, model = trainer.tuning_method, trainer.model
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = trainable_state(model)
    trainable, total = count_parameters(model)
    assert trainable == sum(p.numel() for p in before.values()) and total == sum(p.numel() for p in model.parameters())
    assert (trainable == total) == (name == "full") and bool(frozen) == method.is_adapter
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed, "training changed nothing"
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen), "a frozen weight moved"

    method.save(model, tmp_path / "saved")
    reloaded = method.load(tiny_dir, tmp_path / "saved", trainable=False)
    assert not any(p.requires_grad for p in reloaded.parameters())
    named, _ = load_saved(tiny_dir, tmp_path / "saved")  # the directory says which method wrote it
    assert named.registry_name == name and named.options == method.options
    assert torch.equal(scores(method, model, tok, groups), scores(method, reloaded, tok, groups))
    # the packed layout scores exactly what one row per candidate scores
    torch.testing.assert_close(scores(method, model, tok, groups), scores(method, model, tok, groups, "separate"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_resuming_a_checkpoint_lands_on_the_uninterrupted_weights(name, tiny_dir, tok, tmp_path):
    records = [g.to_record() for g in make_groups()]
    run = dict(max_steps=4, save_strategy="steps", save_steps=2, lr_scheduler_type="linear")
    ref = build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, config(tmp_path / "ref", name, **run), records)
    ref.train()
    ckpt = tmp_path / "ref" / "out" / "checkpoint-2"
    assert (ckpt / "trainer_state.json").exists()
    if ref.tuning_method.is_adapter:  # a checkpoint holds the adapter only, as peft saves it
        assert (ckpt / "adapter_model.safetensors").exists() and not (ckpt / "model.safetensors").exists()
    resumed = build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, config(tmp_path / "resumed", name, **run), records)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.state.global_step == 4
    want, got = trainable_state(ref.model), trainable_state(resumed.model)
    assert want.keys() == got.keys()
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-6, msg=n)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_activation_checkpointing_gives_the_same_training(name, tiny_dir, tok, tmp_path):
    records = [g.to_record() for g in make_groups()]
    results = []
    for checkpointing in (False, True):
        cfg = config(tmp_path / str(checkpointing), name, activation_checkpointing=checkpointing)
        trainer = build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, cfg, records)
        trainer.train()
        results.append(trainable_state(trainer.model))
    for n in results[0]:
        torch.testing.assert_close(results[1][n], results[0][n], rtol=1e-5, atol=1e-6, msg=n)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_merge_where_possible(name, tiny_dir, tok):
    method, model = applied(name, tiny_dir)
    if name not in MERGEABLE:
        assert not method.mergeable
        with pytest.raises(NotMergeable, match=name):
            method.merge(model)
        return
    plain = method.merge(model)
    assert type(plain).__name__ == "GPTBigCodeForCausalLM"
    torch.testing.assert_close(scores(build_tuning_method("full"), plain, tok, make_groups()), scores(method, model, tok, make_groups()),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_the_untrained_method_is_the_base_model_iff_it_says_so(name, llama_dir, tok):
    """On the two-layer Llama (with one layer, Bitune's two passes give the same keys: they differ from
    the second layer on), so every method's Llama targets are exercised too."""
    groups = make_groups()
    base = scores(build_tuning_method("full"), load_model(llama_dir, dtype=torch.float32), tok, groups)
    method, model = applied(name, llama_dir, nudge=False)
    same = torch.allclose(scores(method, model, tok, groups), base, atol=1e-6)
    assert same == method.identity_at_init


def test_adapters_offer_astraios_normal_init_which_changes_the_model(tiny_dir, tok):
    from rrtf.tuning.adapter_h import AdapterHOptions

    method, model = applied("adapter_h", tiny_dir, AdapterHOptions(adapter_h_init="normal"), nudge=False)
    assert not method.identity_at_init
    ups = [p for n, p in model.named_parameters() if "adapter_up" in n]
    assert ups and all(0.01 < p.std().item() < 0.03 for p in ups)  # N(0, 0.02), as the BERT init


@pytest.mark.parametrize("name, options, message", [
    ("lora", {"lora_target_modules": ["q_attn"]}, "target module 'q_attn' is not in this gpt_bigcode model"),
    ("ia3", {"ia3_target_modules": ["c_attn"], "ia3_feedforward_modules": ["mlp.c_proj"]}, "must also be target modules"),
    ("adapter_h", {"adapter_h_target_modules": ["down_proj:output"]}, "'down_proj' is not in this gpt_bigcode model"),
    ("adapter_p", {"adapter_p_target_modules": ["c_fc:sideways"]}, "placement must be one of"),
    ("parallel_adapter", {"parallel_adapter_target_modules": ["ln_1"]}, "not a linear layer"),
    ("bitune", {"bitune_target_modules": ["o_proj"]}, "'o_proj' is not in this gpt_bigcode model"),
    ("p_tuning", {"p_tuning_num_virtual_tokens": 600}, "600 virtual tokens exceed the model's 512 positions"),
])
def test_incompatible_choices_are_refused_before_training(name, options, message, tiny_dir, tok, tmp_path):
    cls = build_tuning_method(name).options_class
    opts = dataclasses.replace(cls(), **options)
    with pytest.raises(ValueError, match=message):
        build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, config(tmp_path, name, opts), [g.to_record() for g in make_groups()])


def test_bitune_refuses_reentrant_checkpointing(tiny_dir, tok, tmp_path):
    cfg = config(tmp_path, "bitune", activation_checkpointing=True, activation_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(ValueError, match="use_reentrant=True"):
        build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, cfg, [g.to_record() for g in make_groups()])


def test_every_method_parses_from_the_command_line():
    from rrtf.config import parse_train_args

    cfg = parse_train_args(["--tuning_method", "adapter_p", "--adapter_p_bottleneck_size", "64", "--adapter_p_init", "normal",
                            "--use_cpu", "true"])
    assert type(cfg.tuning_options).__name__ == "AdapterPOptions"
    # Another method's flag is a mistake, refused with one line rather than accepted and dropped.
    with pytest.raises(ValueError, match="--adapter_h_bottleneck_size is an option of AdapterHOptions, not of --tuning_method adapter_p"):
        parse_train_args(["--tuning_method", "adapter_p", "--adapter_h_bottleneck_size", "8", "--use_cpu", "true"])
    assert cfg.tuning_options.adapter_p_bottleneck_size == 64 and cfg.tuning_options.adapter_p_init == "normal"
    cfg = parse_train_args(["--tuning_method", "bitune", "--bitune_mixing", "false", "--use_cpu", "true"])
    assert cfg.tuning_options.bitune_mixing is False and cfg.tuning_options.bitune_shared_weights is False


def test_packed_layout_is_the_default_for_every_method(tiny_dir, tok, tmp_path):
    trainer = build_trainer(load_model(tiny_dir, dtype=torch.float32), tok, config(tmp_path, "bitune"), [g.to_record() for g in make_groups()])
    assert isinstance(trainer.layout.inner, PackedLayout)
