"""`experiment=` presets (configs/experiment/): each names existing configs, expands to its grid, and
composes one cell without -m (what `--cfg job` shows)."""

from __future__ import annotations

import math

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from densebench.cli import main
from densebench.config import config_dir
from densebench.engine.setup import nearest_patch_multiple
from densebench.errors import ConfigError

CONFIGS = config_dir()
PRESETS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
# The paper's models: every model config with published results; its datasets: every benchmark dataset config
# (not the demo's synthetic data, not the user-data formats).
PAPER_MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml") if OmegaConf.load(p).published_key)
PAPER_DATASETS = sorted(
    p.stem
    for p in (CONFIGS / "dataset").glob("*.yaml")
    if OmegaConf.load(p).get("level") in ("tissue", "nuclei", "gland")
)


def sweep_params(name: str) -> dict[str, list[str]]:
    text = OmegaConf.load(CONFIGS / "experiment" / f"{name}.yaml")
    return {k: str(v).split(",") for k, v in text.hydra.sweeper.params.items()}


def missing_configs(name: str) -> list[str]:
    """Swept group choices without a config file."""
    return [
        f"{group}/{choice}"
        for group, choices in sweep_params(name).items()
        if (CONFIGS / group).is_dir()
        for choice in choices
        if not (CONFIGS / group / f"{choice}.yaml").is_file()
    ]


def compose_cell(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return hydra_compose("config", overrides=[f"experiment={name}", *overrides], return_hydra_config=True)


def test_presets_cover_the_grids_of_the_paper_and_its_ablations():
    assert PRESETS == ["input_size", "lora_rank", "paper_grid", "smoke", "strategy_comparison"]
    grid = sweep_params("paper_grid")
    assert sorted(grid["model"]) == PAPER_MODELS and sorted(grid["dataset"]) == PAPER_DATASETS
    assert grid["adapter"] == ["frozen", "lora", "dora", "cnn", "transformer"]
    assert sweep_params("lora_rank")["finetune"] == ["lora_r4", "lora_r8", "lora_r16", "lora_r32", "lora_r64", "full"]
    assert sweep_params("input_size")["input_size_target"] == ["224", "448", "672", "896", "1024"]
    assert math.prod(len(v) for v in sweep_params("smoke").values()) == 4


@pytest.mark.parametrize("name", PRESETS)
def test_every_swept_choice_names_a_config_and_one_cell_composes(name):
    assert missing_configs(name) == []
    cfg = compose_cell(name)
    params = sweep_params(name)
    for group in ("model", "dataset", "adapter"):
        if group in params:
            assert cfg[group].name in params[group]  # without -m: a cell of the grid
    assert cfg.hydra.sweeper.params is not None


def test_cfg_job_prints_one_cell_of_a_preset(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "experiment=smoke", "--cfg", "job"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "name: demo_vit" in out and "variant: tiny" in out and "name: frozen" in out


def test_the_rank_ablation_arms_set_adapter_and_rank():
    assert compose_cell("lora_rank", "finetune=lora_r4").adapter.rank == 4
    assert compose_cell("lora_rank", "finetune=full").adapter.name == "full"


@pytest.mark.parametrize(
    "target,patch,size",
    [
        (224, 14, 224),
        (448, 14, 448),
        (1024, 14, 1022),
        (1024, 16, 1024),
        (672, 8, 672),
        (1000, 14, 994),
        (1001, 14, 1008),
        (5, 16, 16),
    ],
)
def test_input_size_target_is_the_nearest_multiple_of_the_patch_size(target, patch, size):
    assert nearest_patch_multiple(target, patch, "m") == size


def test_a_fixed_input_model_refuses_an_input_size_target():
    with pytest.raises(ConfigError, match="model musk only takes input_size=384; drop input_size_target"):
        nearest_patch_multiple(448, 16, "musk", fixed=384)


def test_input_size_target_sets_the_run_input_size(compose_cfg):
    from densebench.engine.setup import resolve_input_size

    class Backbone:
        patch_size = 14

    assert resolve_input_size(compose_cfg(["input_size_target=1024"]), Backbone()) == 1022
    assert resolve_input_size(compose_cfg(["input_size_target=1024", "input_size=448"]), Backbone()) == 448


@pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema:UserWarning")
@pytest.mark.parametrize(
    "launcher,expected",
    [
        ("submitit_slurm", {"gpus_per_node": 1, "tasks_per_node": 1, "timeout_min": 720, "max_num_timeout": 20}),
        ("submitit_local", {"tasks_per_node": 1}),
        ("joblib", {"n_jobs": 1}),
    ],
)
def test_launchers_carry_densebench_defaults(launcher, expected, monkeypatch):
    monkeypatch.setenv("SBATCH_PARTITION", "gpu-long")
    cfg = compose_cell("smoke", f"hydra/launcher={launcher}").hydra.launcher
    assert {k: cfg[k] for k in expected} == expected
    if launcher == "submitit_slurm":
        assert cfg.partition == "gpu-long" and cfg.account is None  # from $SBATCH_PARTITION; unset: sbatch's default
