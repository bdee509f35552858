"""Instance scoring of a test set, image by image: settings from `eval.instance`, then one block.

`InstanceScorer` is handed each prediction as it is made (the semantic path is untouched), keeps
only the per-image statistics, and builds the `test.instance` block and a per-image table at the end.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from densebench.errors import ConfigError
from densebench.metrics.instance.aggregate import instance_block, per_image_table
from densebench.metrics.instance.matching import image_stats
from densebench.metrics.instance.objects import METHODS, Objects, extract, ground_truth, masked


@dataclass(frozen=True)
class InstanceSettings:
    """How objects are extracted from a semantic prediction and matched (see configs/eval/default.yaml)."""

    method: str = "components"
    per_class: bool = False
    connectivity: int = 4
    min_size: int = 10
    watershed_h: float = 2.0
    match_iou: float = 0.5
    detection_radius: float = 12.0
    hausdorff: bool = True

    def __post_init__(self) -> None:
        where = "instance scoring (eval.instance.* in a run, --options of `densebench evaluate --instances`)"
        if self.method not in METHODS:
            raise ConfigError(f"{where}: method={self.method} is not known; use {' or '.join(METHODS)}")
        if self.connectivity not in (4, 8):
            raise ConfigError(f"{where}: connectivity={self.connectivity}; use 4 or 8")
        if not 0.5 <= self.match_iou < 1:
            raise ConfigError(
                f"{where}: match_iou={self.match_iou}; use a value in [0.5, 1) (below 0.5 matches stop being unique)"
            )
        if self.min_size < 0 or self.detection_radius <= 0 or self.watershed_h <= 0:
            raise ConfigError(f"{where}: min_size must be >= 0, detection_radius and watershed_h > 0")

    @classmethod
    def from_config(cls, cfg: Mapping) -> "InstanceSettings":
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in cfg.items() if k in known}
        return cls(**{k: type(getattr(cls, k))(v) for k, v in values.items()})


def object_classes(
    classes: Sequence[str], chosen: Sequence[str] | None, option: str = "eval.instance.classes"
) -> list[int]:
    """Ids of the classes scored as objects: the chosen names, else every class but the background.

    The background is the class named `background` when there is one (PanNuke's paper mode puts it
    last), else class 0.
    """
    if chosen:
        unknown = [c for c in chosen if c not in classes]
        if unknown:
            raise ConfigError(f"{option}: {unknown} are not classes of this dataset ({list(classes)})")
        return [classes.index(c) for c in chosen]
    background = classes.index("background") if "background" in classes else 0
    return [i for i in range(len(classes)) if i != background]


class InstanceScorer:
    """Collects per-image instance statistics; call it with each (prediction, target, instances)."""

    def __init__(
        self, classes: Sequence[str], object_ids: Sequence[int], settings: InstanceSettings, ignore_index: int = 255
    ) -> None:
        if not object_ids:
            raise ConfigError("eval.instance.classes: no class is left to score as objects")
        self.classes = list(classes)
        self.object_ids = list(object_ids)
        self.settings = settings
        self.ignore_index = ignore_index
        self.rows: list[dict[str, np.ndarray]] = []

    @classmethod
    def for_dataset(cls, cfg: DictConfig, classes: Sequence[str], ignore_index: int) -> "InstanceScorer | None":
        """The scorer `eval.instance` asks for, or None when it is disabled."""
        if not cfg.enabled:
            return None
        chosen = cfg.classes
        return cls(
            classes,
            object_classes(classes, list(chosen) if chosen else None),
            InstanceSettings.from_config(cfg),
            ignore_index,
        )

    @property
    def object_names(self) -> list[str]:
        return [self.classes[i] for i in self.object_ids]

    def add(self, gt: Objects, pred: Objects) -> None:
        s = self.settings
        self.rows.append(image_stats(gt, pred, len(self.object_ids), s.match_iou, s.detection_radius, s.hausdorff))

    def add_semantic(self, pred: np.ndarray, mask: np.ndarray, instances: np.ndarray) -> None:
        """Score one image: instances extracted from the class map `pred` against the release's instances."""
        s = self.settings
        valid = mask != self.ignore_index
        objects = extract(pred, self.object_ids, s.method, s.per_class, s.connectivity, s.min_size, s.watershed_h)
        if not valid.all():
            objects = masked(objects, valid)
        self.add(ground_truth(instances, mask, self.object_ids, valid), objects)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, instances: torch.Tensor | None) -> None:
        """The per-image hook of `engine.inference.evaluate`."""
        if instances is None:
            raise ValueError("instance scoring needs the ground-truth instance map of every test image")
        self.add_semantic(pred.cpu().numpy(), target.cpu().numpy(), instances.cpu().numpy())

    def block(self, n_resamples: int, ci: float, seed: int, **extra_settings) -> dict:
        return instance_block(
            self.rows, self.object_names, {**asdict(self.settings), **extra_settings}, n_resamples, ci, seed
        )

    def per_image_csv(self, keys: Sequence[str]) -> bytes:
        rows = per_image_table(self.rows, keys)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["key"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows)
        return buf.getvalue().encode()
