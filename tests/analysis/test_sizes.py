"""`densebench analyze sizes`: one trained model at several input sizes (rounded to the patch size)."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf

from densebench.analysis.cli import main
from densebench.analysis.sizes import resolve_sizes
from densebench.errors import ConfigError


def test_sizes_of_a_trained_run_give_metric_time_and_memory_per_size(runs, tmp_path) -> None:
    run = runs("frozen")
    out = tmp_path / "sizes"
    assert main(["sizes", f"run={run.dir}", "sizes=[20,41]", "n_images=2", "warmup=0", f"out={out}"]) == 0
    doc = json.loads((out / "sizes.json").read_text())
    assert doc["mode"] == "evaluate" and doc["metric"] == "Mean_Dice" and doc["base_input_size"] == 40
    assert [r["input_size"] for r in doc["rows"]] == [24, 40]  # 20 and 41 rounded to the 8-px patch
    for row in doc["rows"]:
        assert row["n_images"] == 2 and 0 <= row["metrics"]["Mean_Dice"] <= 1
        assert row["s_per_image"] > 0 and row["peak_memory_mb"] > 0
    with (out / "sizes.csv").open() as f:
        assert [r["input_size"] for r in csv.DictReader(f)] == ["24", "40"]
    assert (out / "sizes.png").read_bytes()[:4] == b"\x89PNG"


def test_default_sizes_are_factors_of_the_base_size_rounded_to_the_patch() -> None:
    options = OmegaConf.create({"sizes": None, "factors": [0.5, 1.0, 1.5, 2.0]})
    model = OmegaConf.create({"name": "m", "fixed_input_size": None})
    assert resolve_sizes(options, 224, 14, model) == [112, 224, 336, 448]
    assert resolve_sizes(options, 224, 16, model) == [112, 224, 336, 448]
    assert resolve_sizes(OmegaConf.create({"sizes": [5, 100, 105]}), 224, 16, model) == [16, 96, 112]


def test_a_fixed_input_model_cannot_sweep_sizes() -> None:
    model = OmegaConf.create({"name": "musk", "fixed_input_size": 384})
    with pytest.raises(ConfigError, match="only takes input_size=384"):
        resolve_sizes(OmegaConf.create({"sizes": [224]}), 384, 16, model)


def test_train_mode_refuses_an_input_size_override() -> None:
    with pytest.raises(ConfigError, match="input_size= is what sizes= varies"):
        main(["sizes", "input_size=64", "sizes=[32,64]"])


@pytest.mark.slow
def test_without_a_run_each_size_is_trained_as_its_own_run(tmp_path) -> None:
    from tests.analysis.conftest import TINY

    out = tmp_path / "sizes"
    assert main(["sizes", *TINY, f"output_dir={tmp_path}", "train.epochs=1", "sizes=[24,40]", f"out={out}"]) == 0
    doc = json.loads((out / "sizes.json").read_text())
    assert doc["mode"] == "train" and [r["input_size"] for r in doc["rows"]] == [24, 40]
    assert all((tmp_path / r["run_dir"]).joinpath("metrics.json").is_file() for r in doc["rows"])
    assert doc["rows"][0]["run_dir"] != doc["rows"][1]["run_dir"]
