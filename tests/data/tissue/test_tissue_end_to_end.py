"""`densebench run` trains and evaluates on each miniature release (one per format family by default)."""

from __future__ import annotations

import pytest

from densebench.data.cli import compose
from tests.data.fixtures_tissue import make

FAST = ["glas", "cocahis", "json_list"]  # paired files with instances, HDF5, dataset JSON
SLOW = ["crag", "rings", "bcss", "cosas24", "ebhi", "wsss4luad", "janowczyk", "folder"]
TINY = [
    "train.epochs=1",
    "input_size=32",
    "model.variant=tiny",
    "decoder.stem_channels=16",
    "decoder.channels=[8,8,8,8]",
    "train.num_workers=0",
    "train.augment=none",
    "eval.bootstrap.n=20",
    "progress=none",
]


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_run_trains_and_evaluates_on_the_miniature_release(name, tmp_path):
    from densebench.engine.train import execute

    root, expected = make(name, tmp_path / "release")
    overrides = [f"dataset={name}", f"dataset.root={root}", f"output_dir={tmp_path / 'runs'}", *TINY]
    record = execute(compose(overrides), overrides)
    assert record["status"] == "complete"
    assert sum(record["data"]["sizes"].values()) == len(expected)
    assert record["test"]["n_images"] == record["data"]["sizes"]["test"]
    assert 0.0 <= record["test"]["metrics"]["Mean_Dice"] <= 1.0
    assert any((tmp_path / "runs" / name).rglob("metrics.json"))
