"""The config's one home: where `configs/` is, its groups, and composing a run config with Hydra's API."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

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


def did_you_mean(word: str, choices: list[str] | set[str], cutoff: float = 0.7) -> str | None:
    """The nearest of `choices` to a mistyped `word` (difflib ratio ≥ cutoff), else None."""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=cutoff)
    return match[0] if match else None


def check_group_choices(argv: list[str], configs: Path) -> None:
    """`model=unii` → one clear line: did you mean uni, and the known models (Hydra prints several lines otherwise)."""
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
                near = did_you_mean(choice, known, 0.6)
                hint = f"did you mean {key}={near}? " if near else ""
                raise ConfigError(f"unknown {key} '{choice}'; {hint}known: {', '.join(known)} (configs/{key}/)")


_ABSENT = object()


def _dotted_keys(tree: Any, prefix: str = "") -> set[str]:
    """Every key path of a config tree, inner nodes included (`train`, `train.epochs`, ...)."""
    out: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            out.add(path)
            out |= _dotted_keys(value, path + ".")
    return out


def check_keys(argv: list[str]) -> None:
    """`trian.epochs=1` → "did you mean train.epochs?" instead of Hydra's advice to add `+trian.epochs`
    (which would train with the default in silence); `+trian.epochs=1` too, unless forced with `++`.
    A key with no near match is refused with how to add a new key on purpose."""
    from omegaconf import OmegaConf

    keyed = [(a.split("=", 1)[0], a.split("=", 1)[1]) for a in argv if "=" in a and not a.startswith("-")]
    checks = [(k, v) for k, v in keyed if not k.startswith(("~", "++")) and not k.lstrip("+").startswith("hydra")
              and "/" not in k and k.lstrip("+") not in GROUPS]
    if not checks:
        return
    groups = [f"{k}={v.split(',')[0]}" for k, v in keyed if k in GROUPS and "(" not in v]
    try:
        cfg = compose(groups, check_groups=False)
    except ConfigError:
        return  # Hydra reports what it cannot compose
    container = OmegaConf.to_container(cfg, resolve=False)
    keys = _dotted_keys(container) | set(GROUPS)
    for key, value in checks:
        name = key.lstrip("+")
        if OmegaConf.select(cfg, name, default=_ABSENT, throw_on_missing=False) is not _ABSENT:
            continue
        near = did_you_mean(name, keys)
        if near is not None:
            raise ConfigError(f"unknown key '{name}' in '{key}={value}'; did you mean {near}? ({near}={value})"
                              + (" Write ++ to add the new key anyway." if key.startswith("+") else ""))
        if not key.startswith("+"):
            raise ConfigError(f"unknown key '{name}' in '{key}={value}': the config has no such setting "
                              f"(`densebench run --cfg job` prints them all); to add a new key on purpose write +{key}={value}")


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
