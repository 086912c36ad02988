"""Helpers of the tuning tests (tests/rrtf/tuning): every method's name, small ranked groups of uneven
prompt and answer lengths, and nudges that make every part of a freshly applied method matter."""
from __future__ import annotations

import torch

from rrtf.records import RankedGroup

ALL_METHODS = ["full", "lora", "ia3", "p_tuning", "prompt_tuning", "adapter_h", "adapter_p", "parallel_adapter", "bitune"]
RESPONSES = ["    return x + 1\n", "    return x\n", "    pass\n", "    return -x  # negate\n"]


def make_groups(n: int = 4) -> list[RankedGroup]:
    """Prompts of different lengths, groups of 2-4 candidates with distinct rewards and a teacher."""
    groups = []
    for i in range(n):
        k = 2 + i % 3
        prompt = f"def f{i}(x):\n" + "    # step\n" * i
        groups.append(RankedGroup(task_id=f"f{i}", prompt=prompt, responses=RESPONSES[:k], rewards=[float(k - j) for j in range(k)],
                                  best_teacher=0))
    return groups


def perturb(model, seed: int = 0) -> None:
    """Give every trainable parameter a random nudge (zero-initialised adapter halves included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
