"""`json_list`: the PFM-DenseBench code's dataset JSON, for data already converted for that code.

`{"num_classes": K, "data": {"train"|"val"|"test": [{"image_path", "mask_path"}, ...]}}`. Paths are
relative to the JSON file's folder or absolute; the JSON's lists are the samples' official split tags.
Unlike the paper's loader, masks are read by their true values (no luminance conversion) and a value
outside 0..K-1/255 or a missing mask is an error naming the entry, not a silent 255 or a dropped split.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from densebench.config import merge
from densebench.data import SOURCES
from densebench.data.base import Record, Sample, SegmentationSource
from densebench.data.io import read_class_ids, read_image
from densebench.errors import ConfigError, DataError

SPLIT_NAMES = ("train", "val", "test")


def _json_path(cfg: DictConfig) -> Path | None:
    """`dataset.root` may name the JSON file, or a folder holding exactly one JSON file."""
    if not cfg.get("root"):
        return None
    root = Path(str(cfg.root)).expanduser()
    if root.is_file():
        return root
    if root.is_dir():
        found = sorted(p for p in root.glob("*.json") if not p.name.startswith("."))
        if len(found) == 1:
            return found[0]
        raise DataError(
            f"dataset.root={root} holds {len(found)} .json files; point dataset.root at the dataset JSON itself"
        )
    raise DataError(f"dataset.root={root} does not exist; point it at the dataset JSON file")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable dataset JSON ({exc})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("data"), dict)
        or not isinstance(data.get("num_classes"), int)
    ):
        raise DataError(f'{path}: expected {{"num_classes": K, "data": {{"train": [...], ...}}}}')
    unknown = set(data["data"]) - set(SPLIT_NAMES)
    if unknown:
        raise DataError(f"{path}: unknown split lists {sorted(unknown)}; use train, val and test")
    return data


@SOURCES.register("json_list")
class JsonList(SegmentationSource):
    """Image/mask pairs listed in a dataset JSON; classes default to class_0..class_{K-1}."""

    def __init__(self, cfg: DictConfig) -> None:
        self.json_path = _json_path(cfg)
        self.data = _read(self.json_path) if self.json_path else None
        if self.data is not None:
            k = self.data["num_classes"]
            classes = list(cfg.classes) if cfg.get("classes") else [f"class_{i}" for i in range(k)]
            if len(classes) != k:
                raise ConfigError(
                    f"dataset.classes lists {len(classes)} classes but {self.json_path} has num_classes={k}"
                )
            cfg = merge(cfg, {"classes": classes})
        elif not cfg.get("classes"):
            cfg = merge(cfg, {"classes": []})
        super().__init__(cfg)

    @property
    def root(self) -> Path:
        if self.json_path is None:
            raise DataError("dataset 'json_list' needs dataset.root=PATH (the dataset JSON file)")
        return self.json_path.parent

    def samples(self) -> list[Sample]:
        base = self.root
        out: list[Sample] = []
        seen: dict[str, str] = {}
        assert self.data is not None  # __init__ read it (a missing root fails there)
        for split in SPLIT_NAMES:
            for i, entry in enumerate(self.data["data"].get(split) or []):
                where = f"{self.json_path} data.{split}[{i}]"
                if not isinstance(entry, dict) or not entry.get("image_path"):
                    raise DataError(f"{where}: entry needs an image_path")
                if not entry.get("mask_path"):
                    raise DataError(f"{where}: no mask_path; every image needs its mask to be trained or scored")
                image, mask = (base / Path(entry[k]).expanduser() for k in ("image_path", "mask_path"))
                for p in (image, mask):
                    if not p.is_file():
                        raise DataError(f"{where}: {p} does not exist")
                if image.stem in seen:
                    raise DataError(
                        f"{where}: image name {image.stem} also listed as {seen[image.stem]}; names must be unique"
                    )
                seen[image.stem] = str(image)
                out.append(Sample(key=image.stem, split=split, paths=(str(image), str(mask))))
        if not out:
            raise DataError(f"{self.json_path}: lists no images")
        return out

    def load(self, sample: Sample) -> Record:
        image = read_image(sample.paths[0])
        return self.check_record(sample, Record(image=image, mask=read_class_ids(sample.paths[1])))
