"""Assertions shared by the dataset tests (nuclei and gland/tissue)."""

from __future__ import annotations

import numpy as np

from densebench.data.base import SegmentationSource


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two instance maps label the same pixel sets (ids may be renumbered)."""
    if a.shape != b.shape or not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def assert_reads_as_released(source: SegmentationSource, expected: dict) -> None:
    """`source` lists exactly the expected keys and decodes each to the expected split, group and arrays."""
    samples = source.samples()
    assert sorted(s.key for s in samples) == sorted(expected)
    for sample in samples:
        want, got = expected[sample.key], source.load(sample)
        assert (sample.split, sample.group) == (want.split, want.group), sample.key
        assert got.image.dtype == np.uint8 and np.array_equal(got.image, want.image), sample.key
        assert got.mask.dtype == np.uint8 and np.array_equal(got.mask, want.mask), sample.key
        if want.instances is None:
            assert got.instances is None, sample.key
        else:
            assert got.instances.dtype == np.int32 and same_partition(got.instances, want.instances), sample.key
    assert source.has_instances == any(e.instances is not None for e in expected.values())
