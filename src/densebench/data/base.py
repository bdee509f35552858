"""The dataset seam: a *source* reads one release format; everything else is generic.

A source lists `Sample`s (with the release's own split tag and patient/slide group when known) and
decodes one sample into a `Record`. Splitting, caching, augmentation and batching are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abc import ABC, abstractmethod

import numpy as np
from omegaconf import DictConfig

from densebench.errors import DataError

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


class SegmentationSource(ABC):
    """Base class for a release-format reader. Subclasses implement `samples` and `load`.

    Class names, colours, ignore codes and split rules come from the dataset config (`cfg`).
    """

    has_instances: bool = False

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.classes: list[str] = list(cfg.classes)
        self.ignore_index: int = int(cfg.get("ignore_index", IGNORE_INDEX))
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
            raise DataError(f"dataset '{self.cfg.name}': dataset.root={path} is not a directory; point it at the unzipped release")
        return path

    @abstractmethod
    def samples(self) -> list[Sample]:
        """Every sample of the release, with its official split tag and group."""

    @abstractmethod
    def load(self, sample: Sample) -> Record:
        """Decode one sample (call `check_record` on the result)."""

    def check_record(self, sample: Sample, record: Record) -> Record:
        """Reject masks that disagree with their image or hold labels outside the class list."""
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
        return record
