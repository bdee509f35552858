"""A run scores instances where the dataset's loader gives instance maps, and only there."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from densebench.config import compose

TINY = [
    "train.epochs=1",
    "input_size=32",
    "model.variant=tiny",
    "decoder.stem_channels=16",
    "decoder.channels=[8,8,8,8]",
    "train.num_workers=0",
    "train.augment=none",
    "train.batch_size=4",
    "eval.bootstrap.n=20",
    "progress=none",
]


def execute(overrides):
    from densebench.engine.train import execute as run

    return run(compose(overrides), overrides)


def test_a_run_on_a_dataset_with_instances_writes_the_instance_block_and_per_image_table(tmp_path):
    overrides = [
        "dataset=synthetic",
        "dataset.n_train=4",
        "dataset.n_val=1",
        "dataset.n_test=2",
        "dataset.min_size=48",
        "dataset.max_size=64",
        "dataset.min_side=48",
        f"output_dir={tmp_path}",
        *TINY,
    ]
    record = execute(overrides)
    block = record["test"]["instance"]
    assert block["n_images"] == 2 and block["objects"] == ["nucleus"]  # dataset.instance_eval.classes
    assert block["counts"]["gt_objects"] > 0
    assert block["settings"]["method"] == "components" and block["settings"]["eval_mode"] == "slide"
    assert set(block["metrics"]) == set(block["bootstrap"]["metrics"])
    (run_dir,) = {p.parent for p in tmp_path.rglob("metrics.json")}
    rows = list(csv.DictReader((run_dir / "instance_per_image.csv").open()))
    assert [r["key"] for r in rows] == json.loads((run_dir / "splits.json").read_text())["test"]
    assert sum(int(r["gt_objects"]) for r in rows) == block["counts"]["gt_objects"]


def test_a_run_on_a_dataset_without_instances_has_no_instance_block(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for folder in ("images", "masks"):
            (root / folder / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                root / "images" / split / f"{i}.png"
            )
            Image.fromarray((rng.random((40, 40)) > 0.5).astype(np.uint8)).save(root / "masks" / split / f"{i}.png")
    overrides = [
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.split=official",
        "dataset.min_side=40",
        f"output_dir={tmp_path / 'runs'}",
        *TINY,
    ]
    record = execute(overrides)
    assert "instance" not in record["test"]  # absent, not zero
    assert not list((tmp_path / "runs").rglob("instance_per_image.csv"))
