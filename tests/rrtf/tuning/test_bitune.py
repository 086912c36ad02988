"""Bitune: a padded batch scores (and so trains on) exactly what its examples score one by one, in both
layouts, on GPTBigCode's multi-query cache and on Llama; gradients reach both prompt passes, both
adapters and the mixing coefficients; the mixing is the paper's formula; the ablations are what they
say. (Generation against training: test_generation.py.)"""
from __future__ import annotations

import pytest
import torch
from tuningkit import make_groups, perturb

from rrtf.losses import rrtf_loss
from rrtf.modeling import load_model
from rrtf.packing import LAYOUTS, RRTFCollator
from rrtf.tuning import build_tuning_method
from rrtf.tuning._bitune_model import BIDIR_ADAPTER, BituneMix
from rrtf.tuning.base import count_parameters
from rrtf.tuning.bitune import BituneOptions


@pytest.fixture(params=["gpt_bigcode", "llama"])
def model_dir(request, tiny_dir, llama_dir):
    return tiny_dir if request.param == "gpt_bigcode" else llama_dir


def bitune(model_dir, **options):
    method = build_tuning_method("bitune", BituneOptions(bitune_lora_dropout=0.0, **options))
    torch.manual_seed(0)
    model = method.apply(load_model(model_dir, dtype=torch.float32))
    perturb(model)
    return method, model


def scores_and_loss(method, model, tok, groups, layout):
    batch = RRTFCollator(tok, 64, layout=layout)([g.to_record() for g in groups])
    p = method.layout(LAYOUTS[layout]()).scores(model, batch)
    loss, _ = rrtf_loss(p, batch["rewards"], batch["candidate_mask"], batch["best_index"])
    return p, loss


@pytest.mark.parametrize("layout", ["packed", "separate"])
def test_a_padded_batch_gives_the_losses_of_its_examples_one_by_one(model_dir, tok, layout):
    method, model = bitune(model_dir)
    model.eval()
    groups = make_groups(5)  # prompts of 1..5 lines, 2..4 candidates: padding everywhere
    with torch.no_grad():
        p, loss = scores_and_loss(method, model, tok, groups, layout)
        alone = [scores_and_loss(method, model, tok, [g], layout) for g in groups]
    for row, (p_one, _) in enumerate(alone):
        torch.testing.assert_close(p[row, : p_one.shape[1]], p_one[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, torch.stack([one for _, one in alone]).mean(), rtol=1e-5, atol=1e-5)


def test_gradients_flow_through_both_prompt_passes(tiny_dir, llama_dir, tok):
    method, model = bitune(llama_dir)
    seen = {}
    mix_forward = model.mix.forward

    def recording(which, layer, causal, bidir):
        if causal.requires_grad:
            causal.retain_grad()
            bidir.retain_grad()
            seen[(which, layer)] = (causal, bidir)
        return mix_forward(which, layer, causal, bidir)

    model.mix.forward = recording
    model.train()
    p, loss = scores_and_loss(method, model, tok, make_groups(), "packed")
    loss.backward()
    assert len(seen) == 2 * 2  # keys and values of both layers
    for causal, bidir in seen.values():
        assert causal.grad.abs().sum() > 0 and bidir.grad.abs().sum() > 0
    grads = {n: q.grad for n, q in model.named_parameters() if q.requires_grad}
    assert all(g is not None for g in grads.values())  # every parameter takes part (DistributedDataParallel needs it)
    assert all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B.default." in n)
    for name, g in grads.items():
        if f"lora_B.{BIDIR_ADAPTER}." in name:
            # the bidirectional pass gives keys and values only: the last layer's q, o and MLP feed nothing
            feeds = "layers.0." in name or "k_proj" in name or "v_proj" in name
            assert (g.abs().sum() > 0) == feeds, name
    assert grads["mix.theta_k"].abs().min() > 0 and grads["mix.theta_v"].abs().min() > 0


def test_mixing_is_the_papers_formula():
    mix = BituneMix(2, init=0.01)
    causal, bidir = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    torch.testing.assert_close(mix("k", 0, causal, bidir), (causal + bidir) / 2)  # theta = s: a 50/50 start
    with torch.no_grad():
        mix.theta_v[1] = -0.03  # |theta|: the sign does not matter
    torch.testing.assert_close(mix("v", 1, causal, bidir), (causal * 0.01 + bidir * 0.03) / 0.04)
    torch.testing.assert_close(mix("k", 1, causal, bidir), (causal + bidir) / 2)  # keys and values have their own theta
    assert torch.equal(BituneMix(2, mixing=False)("k", 0, causal, bidir), bidir)


def test_no_mixing_is_the_limit_of_mixing_towards_the_bidirectional_features(tiny_dir, llama_dir, tok):
    _, mixing = bitune(llama_dir)
    method, plain = bitune(llama_dir, bitune_mixing=False)
    assert not any("theta" in n for n, _ in plain.named_parameters())
    with torch.no_grad():
        mixing.mix.theta_k.fill_(1e7)
        mixing.mix.theta_v.fill_(1e7)
    for model in (mixing, plain):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(scores_and_loss(method, mixing, tok, make_groups(), "packed")[0],
                                   scores_and_loss(method, plain, tok, make_groups(), "packed")[0], rtol=1e-4, atol=1e-4)


def test_shared_weights_use_one_adapter_for_both_passes(llama_dir, tok):
    method, shared = bitune(llama_dir, bitune_shared_weights=True)
    assert list(shared.inner.peft_config) == ["default"]
    _, two = bitune(llama_dir)
    lora = build_tuning_method("lora").apply(load_model(llama_dir, dtype=torch.float32))
    lora_params = count_parameters(lora)[0]
    assert count_parameters(two)[0] == 2 * lora_params + 2 * 2 and count_parameters(shared)[0] == lora_params + 2 * 2
    # two adapters holding the same weights compute what one shared adapter does
    with torch.no_grad():
        params = dict(two.named_parameters())
        for name, value in shared.named_parameters():
            params[name].copy_(value)
            if ".default." in name:
                params[name.replace(".default.", f".{BIDIR_ADAPTER}.")].copy_(value)
    shared.eval()
    two.eval()
    with torch.no_grad():
        torch.testing.assert_close(scores_and_loss(method, two, tok, make_groups(), "packed")[0],
                                   scores_and_loss(method, shared, tok, make_groups(), "packed")[0], rtol=1e-6, atol=1e-6)


def test_the_bidirectional_pass_is_bidirectional(llama_dir, tok):
    """Changing a later prompt token changes what the earlier ones contribute (it would not, causally)."""
    method, model = bitune(llama_dir)
    model.eval()
    captured = []
    encode = model.encode_head

    def recording(*args):
        captured.append(encode(*args))
        return captured[-1]

    model.encode_head = recording
    ids = [tok("def f(x):\n    return x + 1\n", add_special_tokens=False)["input_ids"]]
    ids.append(ids[0][:-2] + [ids[0][-1], ids[0][-2]])  # the same prompt but the last two tokens swapped
    for row in ids:
        n = len(row)
        with torch.no_grad():
            model(input_ids=torch.tensor([row]), position_ids=torch.arange(n)[None], allowed=torch.ones(n, n, dtype=torch.bool).tril()[None, None],
                  keep=torch.zeros(1, n, dtype=torch.bool).index_fill(1, torch.tensor([n - 1]), True), prompt_lengths=torch.tensor([n]))
    first_keys = [c.keys[1][:, :, 0] for c in captured]  # the first token's key at the second layer
    assert not torch.allclose(first_keys[0], first_keys[1])


def test_the_papers_adapter_settings_are_offered_by_name(model_dir):
    """`--bitune_settings paper` is the official code's adapter (r 8, alpha 1, no dropout, every projection of
    attention and MLP); the default stays LoRA's so a Bitune-vs-LoRA comparison differs only in Bitune itself."""
    from peft import PeftModel

    paper = build_tuning_method("bitune", BituneOptions(bitune_settings="paper"))
    model = paper.apply(load_model(model_dir, dtype=torch.float32))
    peft_model = next(m for m in [model, *model.modules()] if isinstance(m, PeftModel))
    cfg = peft_model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (8, 1, 0.0)
    adapted = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if hasattr(m, "lora_A") and "mlp" in name}
    assert adapted >= ({"c_fc", "c_proj"} if "c_fc" in str(model) else {"gate_proj", "up_proj", "down_proj"})
    default = build_tuning_method("bitune", BituneOptions())
    assert default.settings() == {"r": 8, "alpha": 16, "dropout": 0.05, "targets": "lora"}
    assert build_tuning_method("bitune", BituneOptions(bitune_settings="paper", bitune_lora_r=4)).settings()["r"] == 4
    with pytest.raises(ValueError, match="bitune_settings must be one of lora, paper"):
        build_tuning_method("bitune", BituneOptions(bitune_settings="official")).settings()
