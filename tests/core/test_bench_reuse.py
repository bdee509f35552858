"""The feature-reuse bench (bench/reuse.py): per-epoch parts of a real run, and the whole-run extrapolation."""

from __future__ import annotations

import pytest

from densebench.bench.reuse import extrapolate, run_epochs
from tests.sweeps import TINY


def test_run_epochs_times_each_epochs_training_and_validation_and_reports_the_memo():
    out = run_epochs([*TINY, "progress=none", "cache_dir=null", "train.feature_cache=views:1"], epochs=2)
    assert len(out["train_s"]) == len(out["val_s"]) == 2 and min(out["train_s"] + out["val_s"]) > 0
    assert out["feature_cache"]["train_views"] == 1 and out["feature_cache"]["hits"] > 0
    assert out["gflop_per_s"] > 0


def test_extrapolation_uses_uncached_epochs_then_cached_ones():
    rows = {
        "uncached": {"train_s": [10, 10], "val_s": [6, 6]},
        "val reuse": {"train_s": [10, 10], "val_s": [7, 1]},
        "val reuse + views": {"train_s": [11, 2], "val_s": [7, 1]},
    }
    whole = extrapolate(rows, epochs=150, views=4)
    assert whole["uncached"] == 150 * 16
    assert whole["val reuse"] == 150 * 10 + 7 + 149 * 1
    assert whole["val reuse + views"] == pytest.approx(4 * 11 + 146 * 2 + 7 + 149 * 1)
