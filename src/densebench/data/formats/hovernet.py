"""`hovernet_mat`: an image folder plus MATLAB label files with an `inst_map` (the HoVer-Net family).

CoNSeP, Lizard, CPM-17 and the HoVer-Net copies of Kumar, CPM-15 and TNBC all ship
`Images/<name>.png|tif` with `Labels/<name>.mat`. They differ only in where the class of a pixel
comes from (`layout.semantic`):

- `binary`: nucleus wherever `inst_map` > 0 (Kumar, CPM, TNBC);
- `type_map`: the per-pixel type map stored beside the instances (CoNSeP);
- `id_class`: per-instance `id`/`class` vectors looked up through `inst_map` (Lizard), whose order
  need not follow the ids.

Official splits come from folder names (`layout.split_tags`) or from a release table such as
Lizard's `info.csv` (`layout.split_table`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data import SOURCES
from densebench.data.base import Record, Sample
from densebench.data.formats._nuclei import NucleiSource, SplitLookup, as_instances, table_lookup
from densebench.data.io import read_image, read_mat
from densebench.errors import ConfigError, DataError

SEMANTICS = ("binary", "type_map", "id_class")


@SOURCES.register("hovernet_mat")
class HoVerNetMat(NucleiSource):
    has_instances = True
    label_suffixes = (".mat",)
    label_kind = ".mat label"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.semantic = str(self.layout.get("semantic", "binary"))
        if self.semantic not in SEMANTICS:
            raise ConfigError(f"dataset '{cfg.name}': layout.semantic={self.semantic} must be one of {SEMANTICS}")

    def split_lookup(self) -> SplitLookup | None:
        """Lizard-style split table: a CSV naming each image's fold, mapped to train/val/test by config."""
        spec = self.layout.get("split_table")
        if not spec:
            return None
        path = self.scan_one(str(spec.file), (".csv",), "split table")
        folds = {str(k): str(v) for k, v in spec.folds.items()}
        table = {}
        for i, row in enumerate(self.read_split_csv(path, (spec.key_column, spec.split_column)), start=2):
            fold = row[spec.split_column].strip()
            if fold not in folds:
                raise DataError(
                    f"{path} line {i}: split value {fold!r} is not one of {sorted(folds)} (dataset.layout.split_table.folds)"
                )
            table[Path(row[spec.key_column].strip()).stem] = folds[fold]
        return table_lookup(table, lambda stem: stem, path, "the release's split table")

    def load(self, sample: Sample) -> Record:
        image_path, label_path = sample.paths
        image = read_image(image_path)
        mat = read_mat(label_path)
        if "inst_map" not in mat:
            raise DataError(f"{label_path}: no 'inst_map' in the .mat (keys: {sorted(mat)})")
        inst = as_instances(np.asarray(mat["inst_map"]), label_path)
        if self.semantic == "binary":
            raw = (inst > 0).astype(np.uint8)
        elif self.semantic == "type_map":
            if "type_map" not in mat:
                raise DataError(f"{label_path}: no 'type_map' in the .mat (keys: {sorted(mat)})")
            raw = as_instances(np.asarray(mat["type_map"]), label_path)
        else:
            raw = id_class_map(mat, inst, label_path)
        return self.finish(sample, image, raw, inst)


def id_class_map(mat: dict[str, np.ndarray], inst: np.ndarray, where: str) -> np.ndarray:
    """Per-pixel class from per-instance `id` and `class` vectors (either (N,) or (N, 1))."""
    for k in ("id", "class"):
        if k not in mat:
            raise DataError(f"{where}: no '{k}' in the .mat (keys: {sorted(mat)})")
    ids = np.asarray(mat["id"]).astype(np.int64).ravel()
    classes = np.asarray(mat["class"]).astype(np.int64).ravel()
    if ids.shape != classes.shape:
        raise DataError(f"{where}: 'id' has {ids.size} entries but 'class' has {classes.size}")
    lut = np.zeros(max(int(inst.max(initial=0)), int(ids.max(initial=0))) + 1, dtype=np.int64)
    known = np.zeros(lut.size, dtype=bool)
    lut[ids], known[ids] = classes, True
    known[0] = True
    present = np.unique(inst)
    unknown = present[~known[present]]
    if unknown.size:
        raise DataError(f"{where}: instance ids {unknown[:5].tolist()} in inst_map have no entry in 'id'/'class'")
    return lut[inst]
