"""`hdf5`: a release shipped as one HDF5 file of stacked images and masks (CoCaHis).

Per-image metadata (official split, patient) are attribute arrays on one HDF5 object; dataset paths,
attribute names and the mask's encoding come from the dataset config. Rows are read one at a time
(the file stays on disk), and the file is reopened per read so DataLoader workers can share a source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data import SOURCES
from densebench.data.base import Record, Sample, SegmentationSource, class_id
from densebench.data.io import find_files
from densebench.errors import DataError

SUFFIXES = (".hdf5", ".h5", ".he5")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@SOURCES.register("hdf5")
class HDF5Stack(SegmentationSource):
    """Row i of `images` with row i of `mask`; a mask value above `mask_threshold` is `mask_class`."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.mask_class = class_id(self.classes, cfg.mask_class, "dataset.mask_class")
        self.split_map = {str(k).lower(): str(v) for k, v in (cfg.get("split_map") or {}).items()}

    def _file(self) -> Path:
        root = self.root
        found = find_files(root, self.cfg.file, SUFFIXES)
        if len(found) != 1:
            what = "no file" if not found else f"{len(found)} files ({', '.join(map(str, found))})"
            raise DataError(f"dataset '{self.cfg.name}': {what} matching {self.cfg.file!r} under {root}")
        return found[0]

    def samples(self) -> list[Sample]:
        import h5py

        path = self._file()
        try:
            with h5py.File(path, "r") as f:
                n_images, n_masks = (
                    len(self._dataset(f, self.cfg.images, path)),
                    len(self._dataset(f, self.cfg.mask, path)),
                )
                holder = self.cfg.get("attrs")
                attrs = dict(f[holder].attrs) if holder and holder in f else {}
        except OSError as exc:
            raise DataError(f"{path}: cannot read HDF5 ({exc}); the file may be truncated") from None
        if n_images != n_masks:
            raise DataError(f"{path}: {n_images} images in {self.cfg.images} but {n_masks} masks in {self.cfg.mask}")
        splits = self._column(attrs, "split_attr", n_images, path)
        groups = self._column(attrs, "group_attr", n_images, path)
        out = []
        for i in range(n_images):
            split = None
            if splits is not None:
                split = self.split_map.get(splits[i].lower())
                if split is None:
                    raise DataError(
                        f"{path}: row {i} has split '{splits[i]}', not in dataset.split_map {sorted(self.split_map)}"
                    )
            out.append(
                Sample(
                    key=str(self.cfg.key).format(index=i),
                    split=split,
                    group=None if groups is None else groups[i],
                    paths=(str(path),),
                    meta={"row": i},
                )
            )
        return out

    def _dataset(self, f, name: str, path: Path):
        if name not in f:
            raise DataError(f"{path}: no dataset '{name}' (found {sorted(f.keys())}); is this the right release?")
        return f[name]

    def _column(self, attrs: dict, option: str, n: int, path: Path) -> list[str] | None:
        name = self.cfg.get(option)
        if not name:
            return None
        if name not in attrs:
            raise DataError(f"{path}: attribute '{name}' (dataset.{option}) not on '{self.cfg.attrs}'")
        values = np.atleast_1d(attrs[name])
        if len(values) != n:
            raise DataError(f"{path}: attribute '{name}' has {len(values)} values for {n} images")
        return [_text(v).strip() for v in values]

    def load(self, sample: Sample) -> Record:
        import h5py

        path, row = sample.paths[0], int(sample.meta["row"])
        where = f"{path}[{row}]"
        try:
            with h5py.File(path, "r") as f:
                image = np.asarray(f[self.cfg.images][row])
                raw = np.asarray(f[self.cfg.mask][row])
        except (OSError, KeyError) as exc:
            raise DataError(f"{where}: cannot read ({exc})") from None
        if image.dtype != np.uint8:
            raise DataError(f"{where}: image dtype {image.dtype}, expected uint8 RGB")
        if raw.ndim == 3 and raw.shape[-1] == 1:
            raw = raw[..., 0]
        mask = np.where(raw > float(self.cfg.get("mask_threshold", 0)), self.mask_class, 0).astype(np.uint8)
        return self.check_record(Sample(sample.key, sample.split, sample.group, (where,)), Record(image, mask))
