"""Compose the run configuration outside `densebench run` (bench, data, analyses) with Hydra's API."""

from __future__ import annotations

from omegaconf import DictConfig

from densebench.errors import ConfigError


def compose(overrides: list[str], check_groups: bool = True) -> DictConfig:
    """The same config `densebench run <overrides>` would use; Hydra's errors become one ConfigError line.

    `check_groups` first names the known options of a mistyped group choice (`model=nope`).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from densebench.cli import config_dir
    from densebench.engine.run import check_group_choices

    configs = config_dir()
    if check_groups:
        check_group_choices(overrides, configs)
    try:
        with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot compose the config from {overrides}: {first}") from None
