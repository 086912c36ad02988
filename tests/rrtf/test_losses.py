"""RRTF's loss functions against values worked out by hand (see the comments next to each number)."""
import math

import pytest
import torch

from rrtf.losses import rank_accuracy, rank_loss, rrtf_loss, sequence_scores, sft_loss, token_logprobs

# Two groups of up to three candidates; the second group has only two (third slot is padding).
#   group 0: p = [-2.0, -0.5, -1.0], r = [3, 1, 0]
#   group 1: p = [-1.0, -3.0, junk],  r = [0, 1, junk]
P = torch.tensor([[-2.0, -0.5, -1.0], [-1.0, -3.0, -10.0]])
R = torch.tensor([[3.0, 1.0, 0.0], [0.0, 1.0, 9.0]])
MASK = torch.tensor([[True, True, True], [True, True, False]])

# Ordered pairs (i, j) with r_i > r_j, their weight r_i - r_j and min(0, p_i - p_j):
#   group 0: (0,1): w=2, min(0, -2.0 + 0.5) = -1.5  -> 2 * 1.5 = 3.0   (unweighted 1.5)
#            (0,2): w=3, min(0, -2.0 + 1.0) = -1.0  -> 3 * 1.0 = 3.0   (unweighted 1.0)
#            (1,2): w=1, min(0, -0.5 + 1.0) =  0    -> 0                (model already right)
#            sum: weighted 6.0, unweighted 2.5
#   group 1: (1,0): w=1, min(0, -3.0 + 1.0) = -2.0  -> 2.0              (unweighted 2.0)
#   mean over the 2 groups: weighted (6 + 2) / 2 = 4.0, unweighted (2.5 + 2) / 2 = 2.25
WEIGHTED, UNWEIGHTED = 4.0, 2.25


def test_weighted_rank_loss_by_hand():
    assert rank_loss(P, R, MASK, weighted=True).item() == pytest.approx(WEIGHTED)


def test_the_default_rank_loss_is_the_papers_unweighted_hinge():
    """PanGu-Coder2 eqs. 2-4 (RRHF's): sum over r_i > r_j of max(0, p_j - p_i), every pair once -- the default of the
    pure function and of the config (`rank_weighting="paper"`); the gap weights are the named variant."""
    from rrtf.config import RRTFConfig

    assert rank_loss(P, R, MASK).item() == pytest.approx(UNWEIGHTED)
    assert rank_loss(P, R, MASK, weighted=False).item() == pytest.approx(UNWEIGHTED)
    assert RRTFConfig.__dataclass_fields__["rank_weighting"].default == "paper"
    with pytest.raises(ValueError, match="rank_weighting must be one of paper, score_gap"):
        RRTFConfig(rank_weighting="gap", output_dir="/tmp/x", report_to="none")


def test_masked_candidate_is_ignored():
    # Without the mask the junk candidate (r=9, p=-10) would beat both others:
    #   (2,0): 9 * 9 = 81 and (2,1): 8 * 7 = 56 -> group 1 = 2 + 137, mean (6 + 139) / 2 = 72.5
    assert rank_loss(P, R, weighted=True).item() == pytest.approx(72.5)
    assert rank_loss(P, R, MASK, weighted=True).item() == pytest.approx(WEIGHTED)


def test_ties_get_zero_weight_and_teacher_margin_breaks_them():
    p = torch.tensor([[-2.0, -1.0]])
    tied = torch.tensor([[1.0, 1.0]])  # same status: no preference, no loss, no gradient
    p_grad = p.clone().requires_grad_(True)
    loss = rank_loss(p_grad, tied)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(p_grad.grad == 0)
    # the ranker's teacher tie-break: same status, the teacher (index 0) gets +0.5
    #   (0,1): w = 0.5, min(0, -2 + 1) = -1 -> 0.5
    assert rank_loss(p, torch.tensor([[1.5, 1.0]]), weighted=True).item() == pytest.approx(0.5)
    assert rank_loss(p, torch.tensor([[1.5, 1.0]]), weighted=False).item() == pytest.approx(1.0)


def test_rank_loss_gradient_by_hand():
    # group 0 has both pairs (0,1), (0,2) active: L0 = -[2 (p0 - p1) + 3 (p0 - p2)] = -5 p0 + 2 p1 + 3 p2
    # group 1: L1 = -(p1 - p0) = p0 - p1.  Both divided by G = 2.
    p = P.clone().requires_grad_(True)
    rank_loss(p, R, MASK, weighted=True).backward()
    assert torch.allclose(p.grad, torch.tensor([[-2.5, 1.0, 1.5], [0.5, -0.5, 0.0]]))


def test_rank_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="groups, candidates"):
        rank_loss(torch.zeros(3), torch.zeros(3))


def test_sequence_scores_use_only_response_tokens_and_ignore_padding():
    # prompt token (mask 0) log-prob -1 is excluded; response tokens -2, -3 -> p = -5 / 2 = -2.5
    lp = torch.tensor([[-1.0, -2.0, -3.0]])
    mask = torch.tensor([[0, 1, 1]])
    assert sequence_scores(lp, mask).item() == pytest.approx(-2.5)
    # more padding, with arbitrary values under it, changes nothing (RRHF issue #37 divides by padded length)
    lp_padded = torch.tensor([[-1.0, -2.0, -3.0, -100.0, 7.0]])
    mask_padded = torch.tensor([[0, 1, 1, 0, 0]])
    assert sequence_scores(lp_padded, mask_padded).item() == pytest.approx(-2.5)
    # a row without response tokens scores 0 rather than NaN
    assert sequence_scores(lp, torch.zeros_like(mask)).item() == 0.0


def test_token_logprobs_match_log_softmax():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])
    targets = torch.tensor([[2, 1]])
    # log softmax([1,2,3])[2] = 3 - log(e + e^2 + e^3); uniform over 3 -> -log 3
    expected = torch.tensor([[3 - math.log(math.e + math.e**2 + math.e**3), -math.log(3)]])
    assert torch.allclose(token_logprobs(logits, targets), expected)


def test_sft_loss_is_minus_best_teacher_score_over_groups_with_a_teacher():
    # group 0's teacher is candidate 0 (p = -2.0); group 1 has no teacher -> L_ft = 2.0
    assert sft_loss(P, torch.tensor([0, -1])).item() == pytest.approx(2.0)
    # both: (-(-0.5) + -(-3.0)) / 2 = 1.75
    assert sft_loss(P, torch.tensor([1, 1])).item() == pytest.approx(1.75)
    none = sft_loss(P.clone().requires_grad_(True), torch.tensor([-1, -1]))
    assert none.item() == 0.0 and none.requires_grad


def test_rank_accuracy_counts_ordered_pairs():
    # right: group 0 (1,2) only; wrong: (0,1), (0,2), group 1 (1,0) -> 1 / 4
    assert rank_accuracy(P, R, MASK).item() == pytest.approx(0.25)
    assert math.isnan(rank_accuracy(P, torch.ones_like(R)).item())  # all ties: no pairs


def test_rrtf_loss_combines_terms_and_sft_only_mode():
    best = torch.tensor([0, 1])  # teachers: p = -2.0 and p = -3.0 -> L_ft = 2.5
    total, parts = rrtf_loss(P, R, MASK, best, weighted=True, sft_weight=0.5)
    assert total.item() == pytest.approx(WEIGHTED + 0.5 * 2.5)
    assert parts["loss_rank"].item() == pytest.approx(WEIGHTED)
    assert parts["loss_sft"].item() == pytest.approx(2.5)
    assert parts["rank_accuracy"].item() == pytest.approx(0.25)
    total, parts = rrtf_loss(P, R, MASK, best, weighted=False)
    assert total.item() == pytest.approx(UNWEIGHTED + 2.5)
    # ranking off: pure SFT; the gradient touches only the teachers' scores
    p = P.clone().requires_grad_(True)
    total, parts = rrtf_loss(p, R, MASK, best, rank=False)
    total.backward()
    assert total.item() == pytest.approx(2.5) and parts["loss_rank"].item() == 0.0
    assert torch.allclose(p.grad, torch.tensor([[-0.5, 0.0, 0.0], [0.0, -0.5, 0.0]]))
