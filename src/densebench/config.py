"""Compose the run configuration outside `densebench run` (bench, data, analyses) with Hydra's API."""

from __future__ import annotations

from omegaconf import DictConfig


def compose(overrides: list[str]) -> DictConfig:
    """The same config `densebench run <overrides>` would use, with group names checked first."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from densebench.cli import config_dir
    from densebench.engine.run import check_group_choices

    configs = config_dir()
    check_group_choices(overrides, configs)
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))
