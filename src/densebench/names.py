"""Config names, display names and published keys of models, datasets and strategies.

Reports join the user's runs (config names: `uni`, `glas`, `lora`) with the published PFM-DenseBench
results (keys: `uni_v1`, `GlaS`, `lora`) and print the paper's display names (`UNI`, `CNN Adapter`).
All three come from the YAML files in `configs/` (`name`, `display_name`, `published_key`), read
directly: no Hydra composition is needed to look up a few fields. A name without a config is kept as
it is, so a report of published results works before every config exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from densebench.errors import DenseBenchError

# report kind -> config group directory
GROUPS = {"model": "model", "dataset": "dataset", "strategy": "adapter"}

# The PFM-DenseBench website's dataset categories (compute_stats.py / performance.js), by published
# key. They describe the published leaderboard (Janowczyk sits under Tissue there although the data
# is nuclei), so they apply to every dataset that has one of these keys; other datasets use the
# `level` of their config.
PAPER_CATEGORIES = {
    "Nuclear": ("CoNIC2022", "CoNSeP", "cpm15", "cpm17", "kumar", "Lizard", "NuCLS", "PanNuke", "TNBC"),
    "Gland": ("GlaS", "CRAG", "RINGS"),
    "Tissue": ("BCSS", "CoCaHis", "COSAS24", "EBHI", "WSSS4LUAD", "Janowczyk"),
}
CATEGORY_ORDER = ("Nuclear", "Gland", "Tissue")
_LEVEL_WORDS = {"nucle": "Nuclear", "gland": "Gland", "tissue": "Tissue"}
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}
# Colours of strategies no adapter config places (report_color): grey tones, distinct from the configs' colours.
_OTHER_COLOURS = ("#555555", "#999999", "#332288", "#882255", "#117733")


def _config_entry(path: Path, group: str) -> dict[str, Any]:
    """The group's mapping in one config file (`# @package _global_` files nest it under the group)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DenseBenchError(f"{path}: cannot read ({exc}); fix the YAML") from exc
    if isinstance(data.get(group), dict):
        data = data[group]
    return data if isinstance(data, dict) else {}


def parse_count(value: Any) -> float | None:
    """A parameter count written as 303350784, 3.0e8, "303M" or "1.1B" (or {value: ...}); None if absent."""
    if isinstance(value, dict):
        value = value.get("value", value.get("count"))
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmbg]?)\s*", str(value).lower())
    if not match:
        return None
    return float(match.group(1)) * _SUFFIX.get(match.group(2), 1.0)


@dataclass
class Catalog:
    """Lookups over the configs of one configs/ directory (empty when there is none)."""

    configs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # kind -> name -> entry
    learned: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # from runs' metrics.json

    @classmethod
    def load(cls, config_dir: Path | None) -> Catalog:
        configs: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in GROUPS}
        if config_dir is not None:
            from densebench.config import user_config_dirs

            for kind, group in GROUPS.items():  # user folders (--config-dir) last: their entries win
                for path in [
                    p
                    for root in (config_dir, *reversed(user_config_dirs()))
                    for p in sorted((root / group).glob("*.yaml"))
                ]:
                    entry = _config_entry(path, group)
                    configs[kind][str(entry.get("name") or path.stem)] = entry
        return cls(configs)

    def _entry(self, kind: str, name: str) -> dict[str, Any]:
        """The config's fields, completed by what runs recorded about a name no config describes."""
        name = split_settings(name)[0]
        return self.configs.get(kind, {}).get(name) or self.learned.get((kind, name), {})

    def learn(self, kind: str, name: str, display: str | None, published_key: str | None) -> None:
        """Remember the display name and published key a run recorded (its config may not be here)."""
        entry = self.learned.setdefault((kind, name), {})
        if display:
            entry.setdefault("display_name", display)
        if published_key:
            entry.setdefault("published_key", published_key)

    def from_published(self, kind: str, key: str) -> str:
        """Our config name for a published key; the key itself when no config claims it."""
        for name, entry in self.configs.get(kind, {}).items():
            if entry.get("published_key") == key:
                return name
        for (learned_kind, name), entry in self.learned.items():
            if learned_kind == kind and entry.get("published_key") == key:
                return name
        return key

    def published_key(self, kind: str, name: str) -> str:
        """The published key of a config name (the name itself when its config has none)."""
        return str(self._entry(kind, name).get("published_key") or name)

    def display(self, kind: str, name: str) -> str:
        """The display name; a dataset with its own settings (`glas [dataset.min_side=96]`) keeps them."""
        base, settings = split_settings(name)
        shown = str(self._entry(kind, base).get("display_name") or base)
        return f"{shown} [{settings}]" if settings else shown

    def strategy_order(self, strategies: Iterable[str]) -> list[str]:
        """Strategies in the one order every table and figure uses: the adapter configs' `report_order`
        (frozen, LoRA, DoRA, CNN adapter, Transformer adapter, full), then others by display name."""

        def key(s: str) -> tuple[float, str]:
            order = self._entry("strategy", s).get("report_order")
            return (float(order) if isinstance(order, (int, float)) else math.inf, self.display("strategy", s).lower())

        return sorted(dict.fromkeys(strategies), key=key)

    def strategy_color(self, strategy: str) -> str:
        """The strategy's one colour in every figure (`report_color` of its adapter config)."""
        colour = self._entry("strategy", strategy).get("report_color")
        if colour:
            return str(colour)
        others = sorted(
            s for s in self.configs.get("strategy", {}) if not self.configs["strategy"][s].get("report_color")
        )
        index = others.index(strategy) if strategy in others else sum(map(ord, strategy))
        return _OTHER_COLOURS[index % len(_OTHER_COLOURS)]

    def published_params(self, model: str) -> float | None:
        return parse_count(self._entry("model", model).get("published_params"))

    def category(self, dataset: str) -> str:
        """The paper website's category for its datasets, else the config's `level`, else 'Other'."""
        key = self.published_key("dataset", dataset)
        for category, keys in PAPER_CATEGORIES.items():
            if key in keys:
                return category
        level = str(self._entry("dataset", dataset).get("level") or "").lower()
        for word, category in _LEVEL_WORDS.items():
            if word in level:
                return category
        return level.capitalize() if level else "Other"


def split_settings(name: str) -> tuple[str, str]:
    """`glas [dataset.min_side=96]` → ("glas", "dataset.min_side=96"); a plain name → (name, "")."""
    base, sep, rest = name.partition(" [")
    return (base, rest[:-1]) if sep and rest.endswith("]") else (name, "")


def category_sort_key(category: str) -> tuple[int, str]:
    return (CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER), category)
