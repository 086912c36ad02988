"""Generation runs what training scores: for every method (its weights nudged so every part matters),
the logits of greedy decoding from a left-padded batch -- a custom prefill for P-tuning, prompt tuning
and Bitune -- equal the logits the training forward gives the same tokens, and a padded batch decodes
exactly what the prompts decode one by one. On GPTBigCode (multi-query) and on Llama."""
from __future__ import annotations

import pytest
import torch
from tuningkit import ALL_METHODS, make_groups, perturb

from rrtf.backends import GenerationRequest, SamplingParams, build_backend
from rrtf.modeling import load_model
from rrtf.packing import EncodedGroup, SeparateLayout
from rrtf.tuning import build_tuning_method
from rrtf.tuning._method_model import MethodModel, attention_mask_for

NEW_TOKENS = 5


def teacher_forced_logits(model, prompt_ids: list[int], continuation: list[int]) -> torch.Tensor:
    """[len(continuation), V]: the training forward's logits predicting each continuation token."""
    batch = SeparateLayout().collate([EncodedGroup("x", prompt_ids, [continuation], [1.0], 0)], pad_id=0)
    dense = SeparateLayout.dense(batch)
    keep = torch.zeros_like(dense.keep)
    keep[0, len(prompt_ids) - 1: len(prompt_ids) - 1 + len(continuation)] = True
    with torch.no_grad():
        if isinstance(model, MethodModel):
            return model(input_ids=dense.input_ids, position_ids=dense.position_ids, allowed=dense.allowed, keep=keep,
                         prompt_lengths=dense.prompt_lengths)
        return model(input_ids=dense.input_ids, attention_mask=attention_mask_for(model, dense.allowed),
                     position_ids=dense.position_ids, logits_to_keep=keep, use_cache=False).logits


@pytest.fixture(params=["gpt_bigcode", "llama"])
def model_dir(request, tiny_dir, llama_dir):
    return tiny_dir if request.param == "gpt_bigcode" else llama_dir


@pytest.mark.parametrize("name", ALL_METHODS)
def test_generation_logits_are_the_training_logits(name, model_dir, tok):
    method = build_tuning_method(name)
    model = method.apply(load_model(model_dir, dtype=torch.float32))
    perturb(model)
    model.eval()
    gen = method.generation_model(model)
    prompts = [g.prompt for g in make_groups()]
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    assert len(set(enc["attention_mask"].sum(-1).tolist())) > 1, "the batch must be padded"
    out = gen.generate(**enc, max_new_tokens=NEW_TOKENS, do_sample=False, output_scores=True, return_dict_in_generate=True,
                       pad_token_id=0, eos_token_id=None)
    new = out.sequences[:, enc["input_ids"].shape[1]:]
    assert new.shape[1] == NEW_TOKENS
    scores = torch.stack(out.scores, 1)
    for row, prompt in enumerate(prompts):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        torch.testing.assert_close(teacher_forced_logits(model, ids, new[row].tolist()), scores[row], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["p_tuning", "bitune"])
def test_a_padded_batch_generates_what_each_prompt_generates_alone(name, model_dir, tok):
    method = build_tuning_method(name)
    model = method.apply(load_model(model_dir, dtype=torch.float32))
    perturb(model)
    backend = build_backend("transformers", model=method.generation_model(model), tokenizer=tok)
    requests = [GenerationRequest(prompt=g.prompt, key=g.task_id) for g in make_groups()]
    for params in (SamplingParams(n=1, temperature=0.0, max_new_tokens=6), SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3)):
        together = backend.generate(requests, params)
        alone = [backend.generate([r], params)[0] for r in requests]
        assert together == alone
    assert len({text for texts in together for text in texts}) > 1  # the sampled texts differ: a real comparison
