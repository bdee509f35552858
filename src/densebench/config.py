"""The config's one home: where `configs/` is, its groups, and composing a run config with Hydra's API.

User config folders (`--config-dir DIR` on any command, kept in `DENSEBENCH_CONFIG_PATH` so child
processes see them) come before the built-in `configs/`: Hydra gets them through the search-path
plugin in `hydra_plugins/densebench_searchpath`, direct YAML readers through `search_path()`.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from densebench.errors import ConfigError

GROUPS = ("model", "adapter", "dataset", "train", "eval", "experiment", "finetune")
USER_PATH_ENV = "DENSEBENCH_CONFIG_PATH"  # os.pathsep-separated user config folders, first wins
_NOTICED: set[Path] = set()


def config_dir() -> Path:
    """The `configs/` directory next to `src/` (editable installs and checkouts)."""
    env = os.environ.get("DENSEBENCH_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "configs"
    if not (path / "config.yaml").is_file():
        raise ConfigError(
            f"config directory {path} not found; install with `pip install -e .` from a clone or set DENSEBENCH_CONFIG_DIR"
        )
    return path


def user_config_dirs() -> list[Path]:
    """The user's config folders, in precedence order (each must exist)."""
    dirs = [Path(p).expanduser().resolve() for p in os.environ.get(USER_PATH_ENV, "").split(os.pathsep) if p]
    for path in dirs:
        if not path.is_dir():
            raise ConfigError(f"--config-dir {path} is not a folder ({USER_PATH_ENV}); create it or fix the path")
    return dirs


def add_user_config_dir(path: str | Path) -> None:
    """Put a user config folder first in the search path of this process and its children."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigError(
            f"--config-dir {path} is not a folder; create it (e.g. with a model/ subfolder) or fix the path"
        )
    rest = os.environ.get(USER_PATH_ENV, "")
    os.environ[USER_PATH_ENV] = os.pathsep.join([str(resolved), *([rest] if rest else [])])


def take_config_dirs(argv: list[str]) -> list[str]:
    """Remove `--config-dir DIR` / `--config-dir=DIR` / `-cd DIR` from argv, registering each folder."""
    out, i = [], 0
    found = []
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config-dir", "-cd"):
            if i + 1 >= len(argv):
                raise ConfigError(f"{arg} needs a folder, e.g. {arg} my_configs")
            found.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--config-dir="):
            found.append(arg.split("=", 1)[1])
        else:
            out.append(arg)
        i += 1
    for path in reversed(found):  # the first one given wins
        add_user_config_dir(path)
    return out


def search_path() -> list[Path]:
    """Config roots, highest precedence first: user folders, then the built-in `configs/`."""
    return [*user_config_dirs(), config_dir()]


def group_options(group: str) -> dict[str, Path]:
    """Option name → the YAML file that wins for it (user folders before built-ins)."""
    options: dict[str, Path] = {}
    for root in search_path():
        for path in sorted((root / group).glob("*.yaml")):
            options.setdefault(path.stem, path)
    return options


def find_option(group: str, name: str) -> Path | None:
    """The YAML file of `group=name`, with a one-line notice when a user file replaces a built-in one."""
    path = group_options(group).get(name)
    builtin = config_dir() / group / f"{name}.yaml"
    if path is not None and path != builtin and builtin.is_file() and path not in _NOTICED:
        _NOTICED.add(path)
        print(f"notice: {group} '{name}' comes from {path}, which replaces the built-in {builtin}", file=sys.stderr)
    return path


def did_you_mean(word: str, choices: list[str] | set[str], cutoff: float = 0.7) -> str | None:
    """The nearest of `choices` to a mistyped `word` (difflib ratio ≥ cutoff), else None."""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=cutoff)
    return match[0] if match else None


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


def check_group_choices(argv: list[str]) -> None:
    """`model=unii` → one clear line: did you mean uni, and the known models (Hydra prints several lines otherwise)."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in GROUPS or value.startswith(("glob(", "range(", "choice(", "${")):
            continue
        known = sorted(group_options(key))
        for choice in value.split(","):
            if choice and choice != "null" and find_option(key, choice) is None:
                near = did_you_mean(choice, known, 0.6)
                hint = f"did you mean {key}={near}? " if near else ""
                raise ConfigError(
                    f"unknown {key} '{choice}'; {hint}known: {', '.join(known)} (configs/{key}/ or --config-dir)"
                )


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


def _near_key(name: str, keys: set[str]) -> str | None:
    """The existing key `name` most likely meant: its first unknown segment matched against the keys
    beside it (`trian.epochs` → `train.epochs`, `eval.overlapp` → `eval.overlap`). Matching the whole
    path would pair any `train.<typo>` with some `train.<key>` through the shared prefix alone."""
    parts = name.split(".")
    depth = next(i for i in range(len(parts), -1, -1) if i == 0 or ".".join(parts[:i]) in keys)
    if depth == len(parts):
        return None
    parent = ".".join(parts[:depth])
    siblings = {k[len(parent) + 1 :] if parent else k for k in keys if (k.startswith(parent + ".") if parent else True)}
    near = did_you_mean(parts[depth], {s for s in siblings if "." not in s})
    if near is None:
        return None
    candidate = ".".join([*parts[:depth], near, *parts[depth + 1 :]])
    return candidate if candidate in keys else None


def check_keys(argv: list[str]) -> None:
    """`trian.epochs=1` → "did you mean train.epochs?" instead of Hydra's advice to add `+trian.epochs`
    (which would train with the default in silence); `+trian.epochs=1` too, unless forced with `++`.
    A key with no near match is refused with how to add a new key on purpose."""
    from omegaconf import OmegaConf

    keyed = [(a.split("=", 1)[0], a.split("=", 1)[1]) for a in argv if "=" in a and not a.startswith("-")]
    checks = [
        (k, v)
        for k, v in keyed
        if not k.startswith(("~", "++"))
        and not k.lstrip("+").startswith("hydra")
        and "/" not in k
        and k.lstrip("+") not in GROUPS
    ]
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
        near = _near_key(name, keys)
        if near is not None:
            raise ConfigError(
                f"unknown key '{name}' in '{key}={value}'; did you mean {near}? ({near}={value})"
                + (" Write ++ to add the new key anyway." if key.startswith("+") else "")
            )
        if not key.startswith("+"):
            raise ConfigError(
                f"unknown key '{name}' in '{key}={value}': the config has no such setting "
                f"(`densebench run --cfg job` prints them all); to add a new key on purpose write +{key}={value}"
            )


def compose(overrides: list[str], check_groups: bool = True, validate: bool = True) -> DictConfig:
    """The same config `densebench run <overrides>` would use; Hydra's errors become one ConfigError line.

    `check_groups` first names the known options of a mistyped group choice (`model=nope`); `validate`
    checks the settings' types and ranges (settings.py) before the config is handed out.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from densebench.settings import validate as validate_settings

    configs = config_dir()
    if check_groups:
        check_group_choices(overrides)
    try:
        with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
            cfg = hydra_compose("config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose the config from {overrides}: {hydra_message(exc)}") from None
    return validate_settings(cfg) if validate else cfg


def hydra_message(exc: Exception) -> str:
    """Hydra's multi-line error as one line (its hint to set HYDRA_FULL_ERROR left out), with the first
    line of its cause ("Key 'bogus' is not in struct": the key is unknown)."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    if exc.__cause__ is not None and str(exc.__cause__).strip():
        lines.insert(1, f"({str(exc.__cause__).strip().splitlines()[0]})")
    kept = [
        line
        for line in lines
        if line and not line.startswith(("Set the environment variable HYDRA_FULL_ERROR", "See https://hydra.cc"))
    ]
    return " ".join(kept) or type(exc).__name__
