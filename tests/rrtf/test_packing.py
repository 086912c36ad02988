"""The packed layout: token ids, mask, positions, length limits, and scores equal to naive separate rows."""
import logging

import pytest
import torch

from rrtf.modeling import build_tiny_model, load_model, load_starcoder_tokenizer
from rrtf.packing import (
    PAD_SEGMENT,
    PackedLayout,
    RRTFCollator,
    SeparateLayout,
    encode_group,
    packed_attention_mask,
)
from rrtf.records import RankedGroup


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


GROUPS = [
    RankedGroup(
        task_id="inc",
        prompt="def inc(x):\n    ",
        responses=["return x + 1\n", "return x\n", "pass", "return x +  1  # add one\n"],
        rewards=[3.5, 1.0, 0.0, 3.0],
        best_teacher=0,
    ),
    RankedGroup(  # shorter row: the batch pads it
        task_id="add",
        prompt="# add\ndef add(a, b):\n",
        responses=["    return a + b", "    return a - b\n"],
        rewards=[3.0, 1.0],
    ),
]


@pytest.fixture(scope="module")
def tok():
    return load_starcoder_tokenizer()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), n_layer=2, n_embd=32)


def load(model_dir, impl):
    model = load_model(model_dir, dtype=torch.float32)
    model.config._attn_implementation = impl
    torch.manual_seed(1)
    with torch.no_grad():  # a random init is nearly uniform; make attention matter so a wrong mask shows
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    return model.eval()


def test_prompt_and_responses_are_tokenized_separately_with_eos(tok):
    enc = encode_group(tok, GROUPS[0], max_length=256)
    prompt_ids = tok(GROUPS[0].prompt, add_special_tokens=False)["input_ids"]
    assert enc.prompt_ids == prompt_ids
    for ids, text in zip(enc.response_ids, GROUPS[0].responses):
        assert ids == tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    # why separately: jointly the prompt's trailing "\n    " merges with the response, a prompt ending
    # the model never sees at inference
    joint = tok(GROUPS[0].prompt + GROUPS[0].responses[0], add_special_tokens=False)["input_ids"]
    assert joint[: len(prompt_ids)] != prompt_ids


def test_packed_row_positions_and_sources(tok):
    batch = RRTFCollator(tok, 256)(GROUPS)
    enc = encode_group(tok, GROUPS[1], max_length=256)
    n_prompt, lens = len(enc.prompt_ids), [len(ids) for ids in enc.response_ids]
    row = 1
    assert batch["input_ids"][row, : n_prompt + sum(lens)].tolist() == enc.prompt_ids + enc.response_ids[0] + enc.response_ids[1]
    expected_pos = list(range(n_prompt)) + list(range(n_prompt, n_prompt + lens[0])) + list(range(n_prompt, n_prompt + lens[1]))
    assert batch["position_ids"][row, : len(expected_pos)].tolist() == expected_pos
    assert batch["segment_ids"][row, : len(expected_pos)].tolist() == [0] * n_prompt + [1] * lens[0] + [2] * lens[1]
    assert torch.all(batch["segment_ids"][row, len(expected_pos) :] == PAD_SEGMENT)
    # both candidates' first token is predicted by the last prompt token
    second_start = n_prompt + lens[0]
    assert batch["source_index"][row, n_prompt] == n_prompt - 1
    assert batch["source_index"][row, second_start] == n_prompt - 1
    assert batch["source_index"][row, second_start + 1] == second_start
    # the LM head runs only where a candidate token is predicted: last prompt token + all but each candidate's EOS
    assert batch["source_mask"][row].tolist() == ([False] * (n_prompt - 1) + [True] + [True] * (lens[0] - 1) + [False]
                                                  + [True] * (lens[1] - 1) + [False] + [False] * (batch["input_ids"].shape[1] - len(expected_pos)))
    assert batch["candidate_mask"].tolist() == [[True] * 4, [True, True, False, False]]
    assert batch["best_index"].tolist() == [0, -1]


def test_block_mask_shape_and_pattern():
    seg = torch.tensor([[0, 0, 1, 1, 2, -1]])
    allowed = packed_attention_mask(seg, additive=False)
    assert allowed.shape == (1, 1, 6, 6)
    a = allowed[0, 0].int().tolist()
    assert a[3] == [1, 1, 1, 1, 0, 0]  # cand 1, 2nd token: prompt + itself causally
    assert a[4] == [1, 1, 0, 0, 1, 0]  # cand 2 does not see cand 1
    assert a[5] == [0, 0, 0, 0, 0, 1]  # padding sees only padding
    additive = packed_attention_mask(seg, additive=True)
    assert additive.dtype == torch.float32 and torch.equal(additive == 0, allowed)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_packed_scores_equal_separate_rows(model_dir, tok, impl):
    model = load(model_dir, impl)
    packed = RRTFCollator(tok, 256)(GROUPS)
    separate = RRTFCollator(tok, 256, layout="separate")(GROUPS)
    with torch.no_grad():
        p_packed = PackedLayout().scores(model, packed)
        p_separate = SeparateLayout().scores(model, separate)
        # each group alone, unpadded: padding the batch must not change a score
        p_alone = [PackedLayout().scores(model, RRTFCollator(tok, 256)([g]))[0] for g in GROUPS]
        # controls: the same packed row with a plain causal mask (candidates see each other), or with
        # positions that run on instead of restarting after the prompt
        p_causal = PackedLayout.scores_from_logits(
            model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits, packed)
        p_no_restart = PackedLayout().scores(model, dict(packed, position_ids=torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"])))
        # the plainest reference: each prompt+candidate alone, full log-softmax, mean over the response
        p_plain = []
        for g in GROUPS:
            enc = encode_group(tok, g, max_length=256)
            for ids in enc.response_ids:
                row = torch.tensor([enc.prompt_ids + ids])
                lp = torch.log_softmax(model(input_ids=row).logits[0, :-1], -1).gather(-1, row[0, 1:, None]).squeeze(-1)
                p_plain.append(lp[len(enc.prompt_ids) - 1 :].mean())
    mask = packed["candidate_mask"]
    assert torch.allclose(p_packed[mask], torch.stack(p_plain), atol=1e-5)
    assert torch.allclose(p_packed[mask], p_separate[mask], atol=1e-5)
    for row, alone in enumerate(p_alone):
        assert torch.allclose(p_packed[row, : len(alone)], alone, atol=1e-5)
    assert p_packed[mask].std() > 0.05  # scores differ between candidates: the comparison means something
    # the first candidate sees only the prompt either way; every later one is changed by each control
    assert (p_causal - p_packed)[:, 1:][mask[:, 1:]].abs().min() > 1e-3
    assert (p_no_restart - p_packed)[:, 1:][mask[:, 1:]].abs().min() > 1e-3


def test_gradient_reaches_only_prompt_and_own_candidate(model_dir, tok):
    model = load(model_dir, "sdpa")
    batch = RRTFCollator(tok, 256)(GROUPS)
    captured = {}

    def keep(module, args, output):
        output.retain_grad()
        captured["emb"] = output

    handle = model.transformer.wte.register_forward_hook(keep)
    try:
        p = PackedLayout().scores(model, batch)
        p[0, 1].backward()  # second candidate of group 0
    finally:
        handle.remove()
    touched = captured["emb"].grad.abs().sum(-1) > 0  # [B, L]
    seg = batch["segment_ids"]
    # the candidate's last token (EOS) predicts nothing, so it gets no gradient; all its other tokens and the prompt do
    last_of_cand = torch.nonzero(seg[0] == 2).max()
    expected = (seg[0] == 0) | (seg[0] == 2)
    expected[last_of_cand] = False
    assert torch.equal(touched[0], expected)
    assert not touched[1].any()  # the other group of the batch is untouched


def test_too_long_candidates_are_dropped_and_logged(tok, caplog):
    n_prompt = len(tok(GROUPS[0].prompt, add_special_tokens=False)["input_ids"])
    lens = [len(tok(r, add_special_tokens=False)["input_ids"]) + 1 for r in GROUPS[0].responses]
    with caplog.at_level(logging.WARNING, logger="rrtf.packing"):
        # room for the two short responses per row, nothing truncated
        enc = encode_group(tok, GROUPS[0], max_length=n_prompt + sorted(lens)[1])
    kept = [r for r, n in zip(GROUPS[0].responses, lens) if n <= sorted(lens)[1]]
    assert [tok.decode(ids[:-1]) for ids in enc.response_ids] == kept
    assert "inc: dropped 2 of 4 candidates" in caplog.text
    assert GROUPS[0].responses[0] not in kept and enc.best == -1  # the teacher answer was too long: no SFT target


def test_packed_cap_keeps_best_teacher_first(tok):
    group = RankedGroup(task_id="cap", prompt="x = ", responses=["1", "2", "3", "4"], rewards=[0.0, 1.0, 2.0, 3.5], best_teacher=3)
    n_prompt = len(tok("x = ", add_special_tokens=False)["input_ids"])
    enc = encode_group(tok, group, max_length=64, max_packed_length=n_prompt + 2 * 2)  # room for two 2-token responses
    assert enc.rewards == [0.0, 3.5] and enc.best == 1  # teacher first, then the ranker's order
    # a prompt longer than max_length leaves nothing
    assert encode_group(tok, group, max_length=n_prompt) is None


def test_sft_only_collation_and_useless_groups(tok):
    batch = RRTFCollator(tok, 256, only_best_teacher=True)(GROUPS)  # group "add" has no teacher
    assert batch["candidate_mask"].tolist() == [[True]] and batch["best_index"].tolist() == [0]
    tied = RankedGroup(task_id="tied", prompt="a", responses=["b", "c"], rewards=[1.0, 1.0])
    assert encode_group(tok, tied, max_length=64) is None  # no teacher, no preference: nothing to learn
    with pytest.raises(ValueError, match="none of the 1 groups"):
        RRTFCollator(tok, 64)([tied])
    with pytest.raises(ValueError, match="2 rewards for 1 responses"):
        encode_group(tok, {"task_id": "bad", "prompt": "a", "responses": ["b"], "rewards": [1, 2]}, max_length=64)
