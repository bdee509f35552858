"""`densebench plan` (bench/plan.py): the sweeper's cells, their states, and compute/memory estimates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from densebench.bench.flops import train_flops_per_image
from densebench.config import compose
from densebench.files import write_json
from densebench.model import build_model
from densebench.bench.plan import ModelCosts, cell_compute, expand, model_costs, plan, validations
from tests.conftest import densebench
from tests.sweeps import TINY

GRID = [*TINY, "adapter=frozen,lora", "seed=0,1"]


def test_the_grid_expands_like_the_sweeper_and_command_line_lists_narrow_a_preset():
    assert len(expand(["experiment=smoke"])) == 4  # adapter frozen,full x seed 0,1 from the preset
    cells = expand(["experiment=smoke", "seed=1"])
    assert len(cells) == 2 and all("seed=1" in c for c in cells)


def test_finished_cells_are_done_and_the_rest_pending(tmp_path):
    cells = plan([*GRID, f"output_dir={tmp_path}"], rate=1e9, views=None)
    done = cells[0]
    Path(done.run_dir).mkdir(parents=True)
    write_json(Path(done.run_dir) / "metrics.json", {"status": "complete"})
    states = [c.state for c in plan([*GRID, f"output_dir={tmp_path}"], rate=1e9, views=None)]
    assert states == ["done", "missing", "missing", "missing"]


def test_meta_device_flops_equal_a_real_training_step():
    cfg = compose([*TINY, "adapter=cnn"])
    costs = model_costs(cfg, num_classes=3, input_size=64)
    torch.manual_seed(0)
    real = train_flops_per_image(build_model(cfg, 3), 64, torch.device("cpu"))
    assert costs.train_flops == real and costs.reusable and 0 < costs.backbone_flops < costs.eval_flops


def test_reuse_saves_the_backbone_forward_of_every_validation_after_the_first_and_views_after_k_epochs():
    cfg = compose([*TINY, "train.epochs=10", "train.val_every=2"])  # validations after epochs 2,4,...,10
    costs = ModelCosts(
        train_flops=30.0,
        eval_flops=10.0,
        backbone_flops=8.0,
        reusable=True,
        weights_bytes=0,
        trainable_bytes=0,
        activation_bytes=0,
    )
    images, windows = {"train": 5, "val": 3, "test": 4}, {"val": 6, "test": 7}
    configured, plain, views = cell_compute(cfg, costs, images, windows, views=4)
    assert validations(10, 2) == 5
    assert plain == 30 * 5 * 10 + 10 * 6 * 5 + 10 * 7
    assert configured == plain - 8 * 6 * 4
    assert views == configured - 8 * 5 * (10 - 4)
    assert cell_compute(cfg, costs, images, windows, views=None)[2] is None


def test_cli_prints_json_with_cells_and_totals(tmp_path):
    proc = densebench(
        "plan", *GRID, "train.epochs=3", f"output_dir={tmp_path}", "--device-tflops", "0.05", "--views", "2", "--json"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["totals"]["cells"] == 4 and out["totals"]["pending"] == 4 and out["totals"]["unknown"] == 0
    frozen = [c for c in out["cells"] if c["adapter"] == "frozen"]
    lora = [c for c in out["cells"] if c["adapter"] == "lora"]
    assert all(c["tflop"] < c["tflop_no_reuse"] and c["tflop_with_views"] < c["tflop"] for c in frozen)
    assert all(c["tflop"] == c["tflop_no_reuse"] and c["tflop_with_views"] is None for c in lora)
    assert out["totals"]["hours_pending"] == pytest.approx(sum(c["hours"] for c in out["cells"]))


def test_a_cell_without_its_data_is_named_and_left_out_of_the_totals(tmp_path):
    cells = plan(
        ["dataset=glas", f"dataset.root={tmp_path / 'nope'}", "model=demo_vit", f"output_dir={tmp_path}"],
        rate=1e9,
        views=None,
    )
    assert cells[0].tflop is None and "data not found" in cells[0].note


@pytest.mark.parametrize("flag", [["--views", "0"], ["--device-tflops", "-1"], ["--nope"]])
def test_bad_plan_options_are_one_line(flag):
    proc = densebench("plan", *TINY, *flag)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_bench_result_gives_the_rate_and_a_wrong_file_is_a_config_error(tmp_path):
    from densebench.errors import ConfigError
    from densebench.bench.plan import bench_rate

    write_json(tmp_path / "rate.json", {"gflop_per_s": 50.0})
    assert bench_rate(str(tmp_path / "rate.json"))[0] == 50e9
    write_json(tmp_path / "other.json", {"train": {}})
    with pytest.raises(ConfigError, match="--bench"):
        bench_rate(str(tmp_path / "other.json"))
