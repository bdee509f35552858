"""The dataset seam: a *source* reads one release format; everything else is generic.

A source lists `Sample`s (with the release's own split tag and patient/slide group when known) and
decodes one sample into a `Record`. Splitting, caching, augmentation and batching are shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from densebench.errors import ConfigError, DataError

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Sample:
    """One image of a release. `split` is the release's own tag (train/val/test) or None."""

    key: str
    split: str | None = None
    group: str | None = None
    paths: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Record:
    """A decoded sample: RGB uint8 (H,W,3), class ids (H,W) with 255 = ignore, optional instance ids."""

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None = None


def class_id(classes: list[str], name: str | int, option: str) -> int:
    """A class given by name (or id) in a config table -> its id; unknown names are config errors."""
    if isinstance(name, int) and 0 <= name < len(classes):
        return name
    if str(name) in classes:
        return classes.index(str(name))
    raise ConfigError(f"{option}: class '{name}' is not in dataset.classes {classes}")


def class_mode(cfg: DictConfig) -> DictConfig | None:
    """The `dataset.class_modes` entry chosen by `dataset.class_mode` (default | paper | ...).

    A mode may switch the class list and code table (configs interpolate them from the entry) and/or
    list classes to score as ignore (`ignore: [names]`). Unknown modes are a config error.
    """
    modes = cfg.get("class_modes") or {}
    mode = cfg.get("class_mode") or "default"
    if not modes:
        if mode != "default":
            raise ConfigError(f"dataset '{cfg.name}' has no class modes; drop dataset.class_mode={mode}")
        return None
    if mode not in modes:
        raise ConfigError(f"dataset.class_mode={mode} is not defined for '{cfg.name}'; use one of {sorted(modes)}")
    return modes[mode]


class SegmentationSource(ABC):
    """Base class for a release-format reader. Subclasses implement `samples` and `load`.

    Class names, colours, ignore codes and split rules come from the dataset config (`cfg`).
    """

    has_instances: bool = False

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        mode = class_mode(cfg)
        self.classes: list[str] = list(cfg.classes)
        self.ignore_index: int = int(cfg.ignore_index)
        # Classes the chosen class mode scores as "not annotated" (e.g. BCSS outside_roi by default).
        ignore = (mode.get("ignore") if mode else None) or []
        self.ignored_classes = [class_id(self.classes, n, "dataset.class_modes.<mode>.ignore") for n in ignore]
        # (file, reason) for release files that `samples()` left out (e.g. an image without a mask):
        # logged when listed, and a problem for `densebench data check`, so nothing is dropped silently.
        self.excluded: list[tuple[str, str]] = []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def root(self) -> Path:
        root = self.cfg.get("root")
        if not root:
            raise DataError(f"dataset '{self.cfg.name}' needs dataset.root=PATH (the unzipped release)")
        path = Path(str(root)).expanduser()
        if not path.is_dir():
            raise DataError(
                f"dataset '{self.cfg.name}': dataset.root={path} is not a directory; point it at the unzipped release"
            )
        return path

    @abstractmethod
    def samples(self) -> list[Sample]:
        """Every sample of the release, with its official split tag and group."""

    @abstractmethod
    def load(self, sample: Sample) -> Record:
        """Decode one sample (call `check_record` on the result)."""

    def check_record(self, sample: Sample, record: Record) -> Record:
        """Reject masks that disagree with their image or hold labels outside the class list, then
        turn the class mode's ignored classes into the ignore label (every source ends here)."""
        img, mask = record.image, record.mask
        where = sample.paths[-1] if sample.paths else sample.key
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise DataError(f"{where}: image must decode to uint8 RGB, got {img.dtype} {img.shape}")
        if mask.shape != img.shape[:2]:
            raise DataError(f"{where}: mask size {mask.shape[::-1]} differs from image size {img.shape[1::-1]}")
        bad = np.setdiff1d(np.unique(mask), [*range(self.num_classes), self.ignore_index])
        if bad.size:
            raise DataError(
                f"{where}: label values {bad[:5].tolist()} are outside classes 0..{self.num_classes - 1} "
                f"(and ignore {self.ignore_index}); check dataset.classes"
            )
        if self.ignored_classes:
            mask[np.isin(mask, self.ignored_classes)] = self.ignore_index
        return record
