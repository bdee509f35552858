"""Releases shipped as numpy stacks: PanNuke (`pannuke_npy`) and CoNIC (`conic_npy`).

Both put thousands of 256x256 patches in single `.npy` files of several GB, so the stacks are
memory-mapped and a sample reads only its own slice. The maps are opened lazily in each process
(never pickled into DataLoader workers, which would copy the whole array).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data import SOURCES
from densebench.data.base import Record, Sample
from densebench.data.formats._nuclei import NucleiSource, as_instances
from densebench.data.io import open_npy
from densebench.errors import DataError


class _Stacks(NucleiSource):
    """Lazily memory-mapped stacks, shared by the two array releases."""

    has_instances = True

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self._maps: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def stack(self, path: str) -> np.ndarray:
        if path not in self._maps:
            self._maps[path] = open_npy(path)
        return self._maps[path]

    def check_stack(self, path: Path, ndim: int, channels: int | None, n: int | None = None) -> np.ndarray:
        arr = self.stack(str(path))
        if arr.ndim != ndim or (channels is not None and arr.shape[-1] != channels):
            want = f"{ndim}-D" + (f" with {channels} channels last" if channels else "")
            raise DataError(f"{path}: expected a {want} array, got shape {arr.shape}")
        if n is not None and arr.shape[0] != n:
            raise DataError(f"{path}: holds {arr.shape[0]} patches but its images.npy holds {n}")
        return arr

    def rgb(self, sample: Sample, images: np.ndarray, index: int) -> np.ndarray:
        """A patch as uint8 RGB; float stacks (PanNuke) must hold whole numbers in 0..255."""
        patch = np.asarray(images[index])
        if patch.dtype == np.uint8:
            return np.ascontiguousarray(patch)
        if patch.min() < 0 or patch.max() > 255 or not np.all(np.mod(patch, 1) == 0):
            raise DataError(f"{sample.paths[0]}[{index}]: pixel values are not whole numbers in 0..255")
        return patch.astype(np.uint8)


@SOURCES.register("pannuke_npy")
class PanNuke(_Stacks):
    """Per fold `images.npy` (N,256,256,3), `masks.npy` (N,256,256,6), `types.npy` (N,) tissue names.

    Mask channels 0-4 hold instance ids of the five nucleus types; channel 5 is the background flag.
    The raw code of a pixel is the channel of its nucleus (0-4), or 5 where no nucleus channel is set;
    `codes` maps it to a class. A pixel claimed by two nucleus channels gets code 6 (ambiguous), which
    the configs send to ignore. Instances are relabelled 1..N over (channel, id) pairs, since ids may
    repeat across channels.
    """

    def samples(self) -> list[Sample]:
        folds = self._folds()
        table = {int(k): str(v) for k, v in self.layout.folds.items()}
        out = []
        for fold in sorted(folds):
            files = folds[fold]
            for need in ("images", "masks"):
                if need not in files:
                    raise DataError(f"dataset '{self.cfg.name}': fold {fold} has no {need}.npy under {self.root}")
            if fold not in table:
                raise DataError(
                    f"dataset '{self.cfg.name}': fold {fold} ({files['images']}) is not in layout.folds {sorted(table)}"
                )
            images = self.check_stack(files["images"], 4, 3)
            n = images.shape[0]
            self.check_stack(files["masks"], 4, 6, n)
            tissue = self._types(files.get("types"), n)
            for i in range(n):
                meta = {"index": i, "fold": fold, "tissue": tissue[i] if tissue is not None else None}
                out.append(
                    Sample(f"fold{fold}_{i:05d}", table[fold], None, (str(files["images"]), str(files["masks"])), meta)
                )
        return out

    def _folds(self) -> dict[int, dict[str, Path]]:
        """Group the stacks by fold number: the last `fold<k>` in each file's folder path."""
        files = self.scan("files", (".npy",))
        if not any(p.name == "images.npy" for p in files):
            raise self.nothing_found("PanNuke images.npy")
        folds: dict[int, dict[str, Path]] = defaultdict(dict)
        for p in files:
            hits = re.findall(r"fold[ _]?(\d+)", p.parent.relative_to(self.root).as_posix(), re.IGNORECASE)
            if not hits:
                raise DataError(f"{p}: cannot tell its fold (no 'fold<k>' folder above it)")
            fold, kind = int(hits[-1]), p.stem
            if kind in folds[fold]:
                raise DataError(
                    f"dataset '{self.cfg.name}': two {kind}.npy for fold {fold}: {folds[fold][kind]} and {p}"
                )
            folds[fold][kind] = p
        return folds

    def _types(self, path: Path | None, n: int) -> list[str] | None:
        if path is None:
            return None
        types = np.load(path, allow_pickle=False)
        if types.shape != (n,):
            raise DataError(f"{path}: holds {types.shape} tissue names for {n} patches")
        return [str(t) for t in types]

    def load(self, sample: Sample) -> Record:
        index = int(sample.meta["index"])
        image = self.rgb(sample, self.stack(sample.paths[0]), index)
        channels = np.asarray(self.stack(sample.paths[1])[index])
        nuclei = channels[..., :5]
        present = nuclei > 0
        count = present.sum(axis=-1)
        raw = np.where(count == 0, 5, np.argmax(present, axis=-1))
        raw[count > 1] = 6
        pair = np.where(present, np.arange(5) * (int(nuclei.max(initial=0)) + 1) + nuclei, 0).max(axis=-1)
        instances = np.unique(pair, return_inverse=True)[1].reshape(pair.shape)
        if pair.min(initial=1) > 0:  # no background pixel: ids start at 1 already
            instances = instances + 1
        return self.finish(sample, image, raw.astype(np.uint8), as_instances(instances, sample.paths[1]))


@SOURCES.register("conic_npy")
class CoNIC(_Stacks):
    """`images.npy` (N,256,256,3) uint8, `labels.npy` (N,256,256,2) uint16 = (instance id, class code),
    `patch_info.csv` naming each row's source Lizard image (the patient-level group)."""

    def samples(self) -> list[Sample]:
        found = self.scan("images", (".npy",))
        if not found:
            raise self.nothing_found("CoNIC images.npy")
        if len(found) > 1:
            raise DataError(
                f"dataset '{self.cfg.name}': several images.npy under {self.root} ({found[0]}, {found[1]}); keep one copy"
            )
        folder = found[0].parent
        labels, info = folder / "labels.npy", folder / "patch_info.csv"
        for need in (labels, info):
            if not need.is_file():
                raise DataError(f"{need}: missing; the CoNIC release ships it beside images.npy")
        images = self.check_stack(found[0], 4, 3)
        self.check_stack(labels, 4, 2, images.shape[0])
        with open(info, newline="") as fh:
            rows = list(csv.reader(fh))
        names = [r[0].strip() for r in rows[1:] if r]
        if len(names) != images.shape[0]:
            raise DataError(f"{info}: names {len(names)} patches but images.npy holds {images.shape[0]}")
        return [
            Sample(name, None, self.group(name), (str(found[0]), str(labels)), {"index": i})
            for i, name in enumerate(names)
        ]

    def load(self, sample: Sample) -> Record:
        index = int(sample.meta["index"])
        image = self.rgb(sample, self.stack(sample.paths[0]), index)
        labels = np.asarray(self.stack(sample.paths[1])[index])
        return self.finish(sample, image, labels[..., 1], labels[..., 0])
