"""The config's one home: where `configs/` is, its groups, and composing a run config with Hydra's API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from densebench.errors import ConfigError


GROUPS = ("model", "adapter", "dataset", "train", "eval", "experiment", "finetune")


def config_dir() -> Path:
    """The `configs/` directory next to `src/` (editable installs and checkouts)."""
    env = os.environ.get("DENSEBENCH_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "configs"
    if not (path / "config.yaml").is_file():
        raise ConfigError(
            f"config directory {path} not found; install with `pip install -e .` from a clone or set DENSEBENCH_CONFIG_DIR"
        )
    return path


def load_yaml(path: Path) -> DictConfig:
    """A YAML file of settings (a mapping at the top; anything else is a ConfigError naming the file)."""
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, found a list")
    return cfg


def merge(*configs: Any) -> DictConfig:
    """`OmegaConf.merge` of mappings, typed as the mapping it returns."""
    merged = OmegaConf.merge(*configs)
    if not isinstance(merged, DictConfig):
        raise ConfigError("expected mappings of settings to merge, found a list")
    return merged


def to_dict(node: Any, resolve: bool = True) -> dict[str, Any]:
    """A config mapping as a plain dict (JSON-ready; interpolations resolved unless `resolve=False`)."""
    out = OmegaConf.to_container(node, resolve=resolve) if OmegaConf.is_config(node) else node
    if not isinstance(out, dict):
        raise ConfigError(f"expected a mapping of settings, found {type(out).__name__}")
    return out  # type: ignore[return-value]  # keys of a config mapping are strings


def check_group_choices(argv: list[str], configs: Path) -> None:
    """`model=nope` → one clear line listing the known models (Hydra prints several lines otherwise)."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in GROUPS or value.startswith(("glob(", "range(", "choice(", "${")):
            continue
        known = sorted(p.stem for p in (configs / key).glob("*.yaml"))
        for choice in value.split(","):
            if choice and choice != "null" and choice not in known:
                raise ConfigError(f"unknown {key} '{choice}'; known: {', '.join(known)} (configs/{key}/)")


def compose(overrides: list[str], check_groups: bool = True) -> DictConfig:
    """The same config `densebench run <overrides>` would use; Hydra's errors become one ConfigError line.

    `check_groups` first names the known options of a mistyped group choice (`model=nope`).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    configs = config_dir()
    if check_groups:
        check_group_choices(overrides, configs)
    try:
        with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot compose the config from {overrides}: {first}") from None
