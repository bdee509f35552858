"""What a run is about: model entry, dataset, protocol and ablation axes, from parsed, typed settings.

Runs are told apart by their *settings*: the values that differ from the defaults their model, adapter
and dataset configs compose to (Hydra, cached per triple). Values are compared typed (`false`, `False`
and a default `false` are one setting, none), in no particular order. When the configs cannot be
composed (a model no config describes), a run's overrides are parsed as YAML values instead, without
removing defaults. Each setting then belongs to one of four kinds:

- `model`: settings that change the model entry (`model.pretrained`, `model.variant`, ...),
- `dataset`: the dataset's own settings (`dataset.classes`, `dataset.min_side`, ...),
- `axis`: ablation axes (adapter rank, input size): their runs go to ablation plots, not leaderboards,
- `protocol`: the rest (training and evaluation settings): runs of different protocols are never ranked
  together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from omegaconf import OmegaConf

from densebench.runs.rundir import IDENTITY_KEYS, RUNTIME_KEYS, semantic_overrides

# Ablation axes: plotted against, never part of a leaderboard entry.
AXIS_KEYS = ("adapter.rank", "adapter.alpha", "input_size", "input_size_target", "finetune")
KINDS = ("model", "dataset", "protocol", "axis")
# Keys that say where or how a run ran, not what it computed (besides the engine's runtime keys).
_IGNORED_PREFIXES = ("hydra", "output_dir", "cache_dir", "seed", "experiment")


def _ignored(key: str) -> bool:
    return (
        key in IDENTITY_KEYS
        or key.endswith((".name", ".display_name", ".published_key"))
        or any(key == k or key.startswith(k + ".") for k in (*RUNTIME_KEYS, *_IGNORED_PREFIXES))
    )


def kind_of(key: str) -> str:
    if key in AXIS_KEYS:
        return "axis"
    top = key.split(".", 1)[0]
    return top if top in ("model", "dataset") else "protocol"


def _freeze(value: Any) -> Any:
    """A hashable, order-insensitive-for-mappings form of a typed value (lists keep their order)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested mapping; lists are leaves."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def parse_value(text: str) -> Any:
    """An override's value as the typed value Hydra would give it (`False` = `false`, `[a,b]` a list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def label(settings: Iterable[tuple[str, Any]]) -> str:
    """`key=value key=value`, sorted by key (the text a report shows)."""
    return " ".join(f"{k}={_show(v)}" for k, v in sorted(settings))


@dataclass
class Identity:
    """One run's settings by kind: {kind: frozenset((key, typed value))}."""

    settings: dict[str, frozenset[tuple[str, Any]]] = field(default_factory=lambda: {k: frozenset() for k in KINDS})

    def label(self, kind: str, shared: frozenset[tuple[str, Any]] = frozenset()) -> str:
        return label(self.settings[kind] - shared)


class Defaults:
    """Default configs composed per (model, adapter, dataset), flattened; None where composing fails."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.cache: dict[tuple[str, str, str], dict[str, Any] | None] = {}

    def get(self, model: str, adapter: str, dataset: str) -> dict[str, Any] | None:
        key = (model, adapter, dataset)
        if key not in self.cache:
            self.cache[key] = self._compose(key) if self.enabled else None
        return self.cache[key]

    @staticmethod
    def _compose(key: tuple[str, str, str]) -> dict[str, Any] | None:
        from densebench.config import compose
        from densebench.errors import DenseBenchError

        try:
            cfg = compose([f"model={key[0]}", f"adapter={key[1]}", f"dataset={key[2]}"])
            return flatten(OmegaConf.to_container(cfg, resolve=False))
        except (DenseBenchError, Exception):  # noqa: BLE001 - any name no config describes: no defaults
            return None


def identify(doc: dict[str, Any], defaults: Defaults) -> Identity:
    """The settings of one metrics.json document, by kind (see the module docstring)."""
    run = doc.get("run") or {}
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    base = defaults.get(str(run.get("model")), str(run.get("adapter")), str(run.get("dataset")))
    found: dict[str, Any] = {}
    if base is not None:
        ran = flatten(config)
        for key, value in ran.items():
            if _ignored(key):
                continue
            if key not in base:  # a key the run added (+key=value)
                found[key] = _freeze(value)
            # an interpolation in the defaults (e.g. ${dataset.min_side}) is compared by its resolved value only
            elif _freeze(value) != _freeze(base[key]) and not (isinstance(base[key], str) and "${" in base[key]):
                found[key] = _freeze(value)
        # overrides of keys the recorded config lacks still count (a config block that was not recorded); group
        # choices (train=..., finetune=...) count by the values they set, except in the fallback below
        for override in semantic_overrides(list(run.get("overrides") or [])):
            key, _, text = override.partition("=")
            key = key.lstrip("~")
            if "." not in key and key not in ran:
                continue
            if (
                key not in ran
                and not _ignored(key)
                and (key not in base or _freeze(parse_value(text)) != _freeze(base[key]))
            ):
                found[key] = _freeze(parse_value(text))
    else:
        for override in semantic_overrides(list(run.get("overrides") or [])):
            key, _, text = override.partition("=")
            key = key.lstrip("~")
            if not _ignored(key):
                found[key] = _freeze(parse_value(text))
    out: dict[str, set[tuple[str, Any]]] = {k: set() for k in KINDS}
    for key, value in found.items():
        out[kind_of(key)].add((key, value))
    return Identity({k: frozenset(v) for k, v in out.items()})
