"""Ranked groups -> model inputs -> one score p_i per candidate (docs/loss.md, "Packed layout").

A group is one prompt with N candidate responses. The packed layout puts a whole group in ONE row,

    [prompt][cand 1 + EOS][cand 2 + EOS] ... [cand N + EOS][pad ...]

with a 4-D block mask (each candidate sees the prompt and, causally, itself) and position ids that
restart at len(prompt) for every candidate, so each candidate is scored exactly as in a separate
prompt+candidate sequence while the prompt is run once instead of N times. The `separate` layout
(N rows of prompt+candidate) is the reference the packed one is tested against, and the fallback for
attention kernels that take no custom 4-D mask (flash-attention).

Prompt and responses are tokenized SEPARATELY and the ids concatenated: StarCoder's tokenizer merges
a newline with the next line's indent, so tokenizing prompt+response as one string would give the
model a prompt ending it never sees at inference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from rrtf.losses import sequence_scores, token_logprobs

logger = logging.getLogger(__name__)

PROMPT_SEGMENT = 0  # segment id of prompt tokens; candidate k (0-based) is segment k + 1
PAD_SEGMENT = -1


@dataclass
class EncodedGroup:
    """A ranked group as token ids, already fitted to the length limits."""

    task_id: str
    prompt_ids: list[int]
    response_ids: list[list[int]]  # each ends with EOS so the model learns to stop
    rewards: list[float]
    best: int  # index into response_ids of the SFT target (best teacher), -1 if none

    @property
    def packed_length(self) -> int:
        return len(self.prompt_ids) + sum(map(len, self.response_ids))


@dataclass
class DenseBatch:
    """Any layout's batch as plain tensors, for tuning methods that run the model their own way
    (rrtf.tuning: virtual tokens, Bitune): every row starts with its prompt (prompt_lengths [B] tokens),
    `allowed` [B, 1, L, L] is the bool attention mask (True = may attend), `keep` [B, L] the positions
    whose logits the layout's `scores_from_logits` reads (in row-major order)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    allowed: torch.Tensor
    keep: torch.Tensor
    prompt_lengths: torch.Tensor


def group_field(group: Any, name: str, default: Any = None) -> Any:
    return group.get(name, default) if isinstance(group, dict) else getattr(group, name, default)


def encode_group(
    tokenizer,
    group: Any,
    *,
    max_length: int,
    max_packed_length: int | None = None,
    only_best_teacher: bool = False,
) -> EncodedGroup | None:
    """Tokenize a RankedGroup (record, dict or dataclass) and fit it to the limits; None if nothing is left.

    Nothing is truncated: a cut response would be trained with the reward of the whole one, and a
    cut prompt is a different problem. Instead a candidate whose prompt+response exceeds
    `max_length` is dropped, then candidates are dropped until the packed row fits
    `max_packed_length` (the best teacher is kept first, the others in the ranker's order), and every
    drop is logged. A group is kept only if it still teaches something: a teacher answer for the SFT
    term or two candidates with different rewards.
    """
    task_id = str(group_field(group, "task_id", "?"))
    responses, rewards = list(group_field(group, "responses")), [float(x) for x in group_field(group, "rewards")]
    if len(responses) != len(rewards):
        raise ValueError(f"group {task_id}: {len(rewards)} rewards for {len(responses)} responses")
    best = int(group_field(group, "best_teacher", -1))
    if best >= len(responses):
        raise ValueError(f"group {task_id}: best_teacher={best} but only {len(responses)} responses")
    order = [best] if only_best_teacher else [best] + [i for i in range(len(responses)) if i != best]
    order = [i for i in order if i >= 0]
    if not order:
        return None

    eos = tokenizer.eos_token_id
    prompt_ids = tokenizer(group_field(group, "prompt"), add_special_tokens=False)["input_ids"]
    if not prompt_ids:  # something must predict the first response token: start from BOS as generation would
        prompt_ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos]
    cap = max_packed_length if max_packed_length is not None else 4 * max_length
    total, kept, too_long, over_cap = len(prompt_ids), [], 0, 0
    tokenized = tokenizer([responses[i] for i in order], add_special_tokens=False)["input_ids"]
    for i, ids in zip(order, tokenized):
        ids = ids + [eos]
        if len(prompt_ids) + len(ids) > max_length:
            too_long += 1
        elif total + len(ids) > cap:
            over_cap += 1
        else:
            kept.append((i, ids))
            total += len(ids)
    if too_long or over_cap:
        logger.warning(
            "group %s: dropped %d of %d candidates (%d over max_length=%d with a %d-token prompt, %d over max_packed_length=%d)",
            task_id, too_long + over_cap, len(order), too_long, max_length, len(prompt_ids), over_cap, cap,
        )
    kept.sort()  # back to the ranker's order; the mask makes the order irrelevant to the scores
    encoded = EncodedGroup(
        task_id=task_id,
        prompt_ids=prompt_ids,
        response_ids=[ids for _, ids in kept],
        rewards=[rewards[i] for i, _ in kept],
        best=next((k for k, (i, _) in enumerate(kept) if i == best), -1),
    )
    if encoded.best < 0 and len(set(encoded.rewards)) < 2:
        logger.info("group %s: no teacher answer and no two distinct rewards left; nothing to learn, skipped", task_id)
        return None
    return encoded


def _candidate_fields(groups: list[EncodedGroup]) -> dict[str, torch.Tensor]:
    """rewards / candidate_mask [G, N] and best_index [G], shared by both layouts."""
    n = max(len(g.response_ids) for g in groups)
    rewards = torch.zeros(len(groups), n)
    mask = torch.zeros(len(groups), n, dtype=torch.bool)
    for b, g in enumerate(groups):
        rewards[b, : len(g.rewards)] = torch.tensor(g.rewards)
        mask[b, : len(g.rewards)] = True
    best = torch.tensor([g.best for g in groups], dtype=torch.long)
    return {"rewards": rewards, "candidate_mask": mask, "best_index": best}


def _wants_additive_mask(model) -> bool:
    """Eager attention adds the mask to the scores (needs floats); SDPA and flex take a bool mask."""
    model = getattr(model, "module", model)  # DistributedDataParallel hides the config
    impl = getattr(getattr(model, "config", None), "_attn_implementation", "eager")
    if impl and "flash" in impl:
        raise ValueError(f"attention implementation {impl!r} takes no custom 4-D mask: use the 'separate' layout")
    return impl in (None, "eager")


def packed_attention_mask(segment_ids: torch.Tensor, *, additive: bool) -> torch.Tensor:
    """[B, 1, L, L] mask: query q may see key k iff k <= q and k is a prompt token or in q's segment.

    Padding tokens see only earlier padding (never an empty row, so no NaN), and nobody sees them.
    `additive=True` gives 0 / -inf-like floats for eager attention (which adds the mask to the scores);
    otherwise bool (True = attend), which SDPA takes as is.
    """
    seg_q, seg_k = segment_ids.unsqueeze(-1), segment_ids.unsqueeze(-2)
    length = segment_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segment_ids.device).tril()
    allowed = causal & ((seg_k == PROMPT_SEGMENT) & (seg_q != PAD_SEGMENT) | (seg_k == seg_q))
    allowed = allowed.unsqueeze(1)
    if not additive:
        return allowed
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, torch.finfo(torch.float32).min)


class PackedLayout:
    """One row per group: the prompt once, then every candidate (see module docstring)."""

    name = "packed"

    def collate(self, groups: list[EncodedGroup], pad_id: int) -> dict[str, torch.Tensor]:
        length = max(g.packed_length for g in groups)
        shape = (len(groups), length)
        input_ids = torch.full(shape, pad_id, dtype=torch.long)
        position_ids = torch.zeros(shape, dtype=torch.long)
        segment_ids = torch.full(shape, PAD_SEGMENT, dtype=torch.long)
        source_index = torch.zeros(shape, dtype=torch.long)  # position whose logits predict this token
        source_mask = torch.zeros(shape, dtype=torch.bool)  # positions whose logits are needed at all
        for b, g in enumerate(groups):
            n_prompt = len(g.prompt_ids)
            input_ids[b, :n_prompt] = torch.tensor(g.prompt_ids, dtype=torch.long)
            position_ids[b, :n_prompt] = torch.arange(n_prompt)
            segment_ids[b, :n_prompt] = PROMPT_SEGMENT
            start = n_prompt
            for k, ids in enumerate(g.response_ids):
                end = start + len(ids)
                input_ids[b, start:end] = torch.tensor(ids, dtype=torch.long)
                position_ids[b, start:end] = torch.arange(n_prompt, n_prompt + len(ids))
                segment_ids[b, start:end] = k + 1
                # the first token is predicted by the last prompt token (shared), the rest by their predecessor
                source_index[b, start] = n_prompt - 1
                source_index[b, start + 1 : end] = torch.arange(start, end - 1)
                source_mask[b, start : end - 1] = True  # a candidate's last token (EOS) predicts nothing
                start = end
            source_mask[b, n_prompt - 1] = True
        return {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "segment_ids": segment_ids,
            "source_index": source_index,
            "source_mask": source_mask,
            **_candidate_fields(groups),
        }

    def scores(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        segment_ids = batch["segment_ids"]
        mask = packed_attention_mask(segment_ids, additive=_wants_additive_mask(model)).to(segment_ids.device)
        # logits_to_keep (bool [B, L]): the LM head runs only where a prediction is needed (not on the
        # prompt, the vocabulary is 49k wide) and returns them flattened, [K, V]
        logits = model(
            input_ids=batch["input_ids"], attention_mask=mask, position_ids=batch["position_ids"], use_cache=False,
            logits_to_keep=batch["source_mask"],
        ).logits
        return self.scores_from_logits(logits, batch)

    @staticmethod
    def dense(batch: dict[str, torch.Tensor]) -> DenseBatch:
        segment_ids = batch["segment_ids"]
        return DenseBatch(batch["input_ids"], batch["position_ids"], packed_attention_mask(segment_ids, additive=False),
                          batch["source_mask"], (segment_ids == PROMPT_SEGMENT).sum(-1))

    @staticmethod
    def scores_from_logits(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """p [G, N] from the logits at the batch's source positions ([K, V]), or from full logits [B, L, V]."""
        segment_ids, source_mask = batch["segment_ids"], batch["source_mask"]
        if logits.dim() == 3:
            logits = logits[source_mask]
        flat_row = (source_mask.flatten().cumsum(0) - 1).view(source_mask.shape)  # position -> row of `logits`
        rows, cols = torch.nonzero(segment_ids > PROMPT_SEGMENT, as_tuple=True)
        src = flat_row[rows, batch["source_index"][rows, cols]]
        # log P(token) = its logit - logsumexp over the vocabulary, without a [tokens, V] copy of the logits
        log_z = torch.logsumexp(logits.float(), dim=-1)
        token_lp = torch.zeros(segment_ids.shape, dtype=torch.float32, device=logits.device)
        token_lp = token_lp.index_put((rows, cols), logits[src, batch["input_ids"][rows, cols]].float() - log_z[src])
        n = batch["candidate_mask"].shape[1]
        per_candidate = segment_ids.unsqueeze(1) == torch.arange(1, n + 1, device=segment_ids.device).view(1, n, 1)
        return sequence_scores(token_lp.unsqueeze(1), per_candidate)  # [G, N]


class SeparateLayout:
    """The naive layout: one row per (group, candidate), prompt repeated; the reference for PackedLayout."""

    name = "separate"

    def collate(self, groups: list[EncodedGroup], pad_id: int) -> dict[str, torch.Tensor]:
        rows = [(b, k, g.prompt_ids + ids, len(g.prompt_ids)) for b, g in enumerate(groups) for k, ids in enumerate(g.response_ids)]
        length = max(len(ids) for _, _, ids, _ in rows)
        input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        response_mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for r, (_, _, ids, n_prompt) in enumerate(rows):
            input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[r, : len(ids)] = 1
            response_mask[r, n_prompt : len(ids)] = True
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "response_mask": response_mask,
            "row_group": torch.tensor([b for b, *_ in rows], dtype=torch.long),
            "row_candidate": torch.tensor([k for _, k, *_ in rows], dtype=torch.long),
            **_candidate_fields(groups),
        }

    def scores(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                       logits_to_keep=self.logits_to_keep(batch)).logits  # [K, V], row-major over (row, position)
        return self.scores_from_logits(logits, batch)

    @staticmethod
    def logits_to_keep(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # position t predicts token t+1: keep the LM head only where t+1 is a response token (as PackedLayout)
        return torch.nn.functional.pad(batch["response_mask"][:, 1:], (0, 1))

    @classmethod
    def dense(cls, batch: dict[str, torch.Tensor]) -> DenseBatch:
        valid = batch["attention_mask"].bool()
        length = valid.shape[-1]
        causal = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
        allowed = (causal & valid.unsqueeze(-2)).unsqueeze(1)
        positions = torch.arange(length, device=valid.device).expand(valid.shape[0], length)
        return DenseBatch(batch["input_ids"], positions, allowed, cls.logits_to_keep(batch), (valid & ~batch["response_mask"]).sum(-1))

    @staticmethod
    def scores_from_logits(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """p [G, N] from the logits at the kept positions ([K, V], as `logits_to_keep` selects them)."""
        targets = batch["response_mask"][:, 1:]
        rows, cols = torch.nonzero(targets, as_tuple=True)
        token_lp = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)
        token_lp = token_lp.index_put((rows, cols), token_logprobs(logits, batch["input_ids"][:, 1:][rows, cols]))
        p_rows = sequence_scores(token_lp, targets)
        p = torch.zeros(batch["candidate_mask"].shape, dtype=p_rows.dtype, device=p_rows.device)
        return p.index_put((batch["row_group"], batch["row_candidate"]), p_rows)


LAYOUTS = {layout.name: layout for layout in (PackedLayout, SeparateLayout)}


class MethodLayout:
    """A layout whose model call belongs to a tuning method: `forward(model, dense) -> logits [K, V]`
    at `dense.keep`, scored exactly as the wrapped layout scores its own logits."""

    def __init__(self, inner, forward):
        self.inner, self.forward, self.name = inner, forward, inner.name

    def scores(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inner.scores_from_logits(self.forward(model, self.inner.dense(batch)), batch)


class RRTFCollator:
    """Turn a list of ranked groups (RankedGroup, its record dict, or EncodedGroup) into one batch.

    only_best_teacher=True keeps only each group's best teacher response: the SFT baseline
    (config.rank_loss=False) then trains on the same data at the cost of one response per prompt.
    """

    def __init__(self, tokenizer, max_length: int, *, max_packed_length: int | None = None,
                 only_best_teacher: bool = False, layout: str = "packed"):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_packed_length = max_packed_length
        self.only_best_teacher = only_best_teacher
        self.layout = LAYOUTS[layout]()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(self, group: Any) -> EncodedGroup | None:
        if isinstance(group, EncodedGroup):
            return group
        return encode_group(
            self.tokenizer, group, max_length=self.max_length, max_packed_length=self.max_packed_length,
            only_best_teacher=self.only_best_teacher,
        )

    def __call__(self, features: list[Any]) -> dict[str, torch.Tensor]:
        groups = [g for g in map(self.encode, features) if g is not None]
        if not groups:
            raise ValueError(f"none of the {len(features)} groups in this batch fits the length limits or carries a training signal")
        return self.layout.collate(groups, self.pad_id)
