"""`densebench run` trains and evaluates on every nuclei release fixture (slow: one process per dataset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.data.fixtures_nuclei import MAKERS, REPO, dataset_cfg

# The miniature releases hold 3-8 images; these overrides keep every split non-empty.
SMALL_SPLITS = {
    "consep": ["dataset.val_fraction=0.34"],
    "cpm17": ["dataset.val_fraction=0.5"],
    "kumar": ["dataset.val_fraction=0.34"],
    "nucls": ["dataset.val_fraction=0.5"],
    "cpm15": ["dataset.fractions=[0.34,0.34,0.32]"],
    "tnbc": ["dataset.fractions=[0.34,0.34,0.32]"],
    "conic2022": ["dataset.fractions=[0.5,0.25,0.25]"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_run_trains_and_evaluates_on_the_fixture(tmp_path, name):
    MAKERS[name](tmp_path / "data")
    args = [
        f"dataset={name}",
        f"dataset.root={tmp_path / 'data'}",
        "model=demo_vit",
        "train.epochs=1",
        "input_size=64",
        "train.num_workers=0",
        "train.batch_size=2",
        f"output_dir={tmp_path / 'runs'}",
        *SMALL_SPLITS.get(name, []),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "densebench", "run", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (metrics,) = (tmp_path / "runs").rglob("metrics.json")
    result = json.loads(metrics.read_text())
    assert result["status"] == "complete"
    assert result["data"]["class_names"] == list(dataset_cfg(name).classes) and result["test"]["n_images"] > 0
