"""RRTF's loss as small pure functions on tensors (no model, no tokenizer): see docs/loss.md.

Shapes: a batch holds G groups (one prompt each) of up to N candidates; `p`, `r` and the candidate
`mask` are [G, N]. Padding candidates (mask False) never enter a pair, and padding tokens never enter
a score, so how a batch happens to be padded cannot change the loss.

    p_i     = (1/|y_i|) * sum_t log P(y_i,t | x, y_i,<t)          (sequence_scores)
    L_rank  = -sum_{i,j: r_i > r_j} (r_i - r_j) * min(0, p_i - p_j)  (rank_loss, per group, mean over groups)
    L_ft    = -p_best = token-mean NLL of the best teacher response   (sft_loss)
    L       = L_rank + lambda * L_ft                                  (rrtf_loss)
"""
from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) under `logits` ([..., V]) for each target id ([...]), without a full log_softmax copy."""
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked.float() - torch.logsumexp(logits.float(), dim=-1)


def sequence_scores(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """p = mean log-prob of the masked (response) tokens along the last dim.

    The sum AND the count both use only masked tokens, so extra padding changes neither (RRHF's
    reference code divides its SFT term by the padded length: huggingface RRHF issue #37). A row with
    no response token scores 0 instead of NaN; such rows are masked out of the loss by the caller.
    """
    mask = mask.to(logprobs.dtype)
    return (logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def _ordered_pairs(r: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """[G, N, N] bool: (i, j) is a pair that counts, i.e. r_i > r_j with both candidates present.

    Ties (r_i == r_j) are not pairs: they carry no preference, so they get zero weight.
    """
    pairs = r.unsqueeze(-1) > r.unsqueeze(-2)
    if mask is not None:
        mask = mask.bool()
        pairs = pairs & mask.unsqueeze(-1) & mask.unsqueeze(-2)
    return pairs


RANK_WEIGHTINGS = ("paper", "score_gap")  # how a pair r_i > r_j weighs in L_rank (RRTFConfig.rank_weighting)


def rank_loss(p: torch.Tensor, r: torch.Tensor, mask: torch.Tensor | None = None, weighted: bool = False) -> torch.Tensor:
    """List-wise ranking loss over all ordered pairs of each group, averaged over the G groups.

    weighted=False is the paper's: PanGu-Coder2 eqs. 2-4 (RRHF's hinge), every ordered pair counts once.
    weighted=True is this project's "score_gap" variant: a pair counts (r_i - r_j) times, so "passes vs.
    does not compile" pushes harder than "passes vs. fails one test".
    Only pairs the model currently orders wrongly (p_i < p_j) contribute: min(0, p_i - p_j).
    """
    if p.shape != r.shape or p.dim() != 2:
        raise ValueError(f"p and r must both be [groups, candidates]; got {tuple(p.shape)} and {tuple(r.shape)}")
    pairs = _ordered_pairs(r, mask)
    r = r.to(p.dtype)
    weight = (r.unsqueeze(-1) - r.unsqueeze(-2)) if weighted else 1.0
    violation = (p.unsqueeze(-1) - p.unsqueeze(-2)).clamp(max=0.0)  # min(0, p_i - p_j)
    per_group = -(weight * violation * pairs).sum(dim=(-1, -2))
    return per_group.mean() if per_group.numel() else p.sum() * 0.0


def rank_accuracy(p: torch.Tensor, r: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of ordered pairs (r_i > r_j) that the model already orders right (p_i > p_j); NaN if none."""
    pairs = _ordered_pairs(r, mask)
    right = (p.unsqueeze(-1) > p.unsqueeze(-2)) & pairs
    n = pairs.sum()
    return right.sum().float() / n if n > 0 else torch.tensor(float("nan"), device=p.device)


def sft_loss(p: torch.Tensor, best_index: torch.Tensor) -> torch.Tensor:
    """L_ft: token-mean NLL of each group's best teacher response (= -p_best), mean over groups having one.

    `best_index` [G] holds the column of the teacher response in `p`, -1 for groups without a teacher.
    Token-mean (as RRHF's code intends) keeps L_ft on the same per-token scale as the p_i in L_rank,
    so lambda = 1 balances the two terms whatever the response length, and a long teacher answer
    does not outweigh a short one in the batch. 0 (still attached to the graph) if no group has one.
    """
    has = best_index >= 0
    if not bool(has.any()):
        return p.sum() * 0.0
    rows = torch.nonzero(has, as_tuple=True)[0]
    return -p[rows, best_index[rows]].mean()


def rrtf_loss(
    p: torch.Tensor,
    r: torch.Tensor,
    mask: torch.Tensor | None,
    best_index: torch.Tensor,
    *,
    rank: bool = True,
    weighted: bool = False,
    sft_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = L_rank + sft_weight * L_ft; rank=False leaves pure SFT on the best teacher (the baseline).

    Returns the total and its detached parts for logging: loss_rank, loss_sft, rank_accuracy.
    """
    l_sft = sft_loss(p, best_index)
    l_rank = rank_loss(p, r, mask, weighted=weighted) if rank else p.sum() * 0.0
    total = l_rank + sft_weight * l_sft
    parts = {
        "loss_rank": l_rank.detach(),
        "loss_sft": l_sft.detach(),
        "rank_accuracy": rank_accuracy(p.detach(), r, mask),
    }
    return total, parts
