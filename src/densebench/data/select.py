"""Which images an analysis looks at: a seeded choice that depends only on the sample keys.

Runs of different models on the same test split therefore show the same gallery images, and the
token analysis of two models reads the same images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from densebench.data.base import Sample
from densebench.errors import ConfigError


def select_indices(keys: Sequence[str], n: int | None, seed: int) -> list[int]:
    """Indices of `n` of `keys` (all when n is None or ≥ len), chosen by `seed`, in key order."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if n is None or n >= len(keys):
        return order
    chosen = np.random.default_rng(seed).choice(len(keys), size=max(int(n), 0), replace=False)
    return [order[i] for i in sorted(chosen)]


def choose(splits: dict[str, list[Sample]], split: str, n: int | None, seed: int) -> list[Sample]:
    """`n` samples (all when None) of a split, seeded as `select_indices`; a clear error for a bad or empty split."""
    if split not in splits:
        raise ConfigError(f"split={split} is not known; use one of {', '.join(splits)}")
    samples = splits[split]
    if not samples:
        raise ConfigError(f"the {split} split has no images; choose another split=")
    return [samples[i] for i in select_indices([s.key for s in samples], n, seed)]
