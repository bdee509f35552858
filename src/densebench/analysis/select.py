"""Which images an analysis looks at: a seeded choice that depends only on the sample keys.

Runs of different models on the same test split therefore show the same gallery images, and the
token analysis of two models reads the same images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def select_indices(keys: Sequence[str], n: int | None, seed: int) -> list[int]:
    """Indices of `n` of `keys` (all when n is None or ≥ len), chosen by `seed`, in key order."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if n is None or n >= len(keys):
        return order
    chosen = np.random.default_rng(seed).choice(len(keys), size=max(int(n), 0), replace=False)
    return [order[i] for i in sorted(chosen)]
