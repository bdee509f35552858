"""Shared pieces of the nuclei release readers: class-mode tables, layout scanning, instance handling.

Each nuclei release stores raw *codes* (a type id, a channel index, an instance-present flag); the
dataset config maps codes to class ids per class mode (`dataset.class_modes.<mode>.codes`, or a
top-level `codes` when the release has one handling). Keeping the table in the config means the
paper's handling and ours differ only in data.
"""

from __future__ import annotations

import csv
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data.base import Record, Sample, SegmentationSource
from densebench.data.io import IMAGE_SUFFIXES, find_files, name_group, pair_by_key, read_image, remap, split_tag
from densebench.errors import ConfigError, DataError


class NothingFound(DataError):
    """No file of this release layout exists under the root (lets `any_of` try the next layout)."""


SplitLookup = Callable[[str, Path], str | None]


class NucleiSource(SegmentationSource):
    """A release reader whose classes come from a code table; bump `decoder_version` when output changes.

    The default `samples()` pairs `layout.images` with `layout.labels` files by (split tag, stem);
    readers of single-file releases override it.
    """

    decoder_version = 1
    label_suffixes: tuple[str, ...] = IMAGE_SUFFIXES
    label_kind = "label"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        codes = cfg.get("codes")
        if codes is None:
            raise ConfigError(f"dataset '{cfg.name}' has no `codes` table (release code -> class id)")
        self.codes = {int(k): int(v) for k, v in codes.items()}
        self.layout: DictConfig = cfg.get("layout") or DictConfig({})

    def to_classes(self, raw: np.ndarray, where: str) -> np.ndarray:
        """Release codes → class ids (255 = ignore); a code missing from the table is an error."""
        return remap(raw, self.codes, where)

    def scan(self, pattern_key: str, suffixes: tuple[str, ...]) -> list[Path]:
        """Files whose path relative to the root matches `layout.<pattern_key>`."""
        pattern = self.layout.get(pattern_key)
        if not pattern:
            raise ConfigError(f"dataset '{self.cfg.name}': layout.{pattern_key} (a file-name pattern) is missing")
        return find_files(self.root, str(pattern), suffixes)

    def samples(self) -> list[Sample]:
        lookup = self.split_lookup()
        out = []
        for tag, stem, image, label in self.paired():
            split = tag if lookup is None else lookup(stem, image)
            out.append(Sample(self.key(stem, split), split, self.group(stem), (str(image), str(label))))
        return out

    def split_lookup(self) -> SplitLookup | None:
        """Official split from a release table instead of folder names (None: use `layout.split_tags`)."""
        return None

    def paired(self) -> list[tuple[str | None, str, Path, Path]]:
        """(split tag, stem, image, label) for every image; unpaired files and duplicates are errors."""
        what = f"dataset '{self.cfg.name}'"
        images = self.scan("images", IMAGE_SUFFIXES)
        if not images:
            raise self.nothing_found(f"images matching layout.images={self.layout.images!r}")
        labels = self.scan("labels", self.label_suffixes)
        if not labels:
            raise self.nothing_found(f"{self.label_kind} files matching layout.labels={self.layout.labels!r}")
        suffix = str(self.layout.get("label_suffix", ""))
        indexed: list[dict] = [{}, {}]
        for paths, out, strip in ((images, indexed[0], ""), (labels, indexed[1], suffix)):
            for p in paths:
                stem = p.stem[: len(p.stem) - len(strip)] if strip and p.stem.endswith(strip) else p.stem
                k = (self.tag(p), stem)
                if k in out:
                    raise DataError(f"{what}: two files for {stem}: {out[k]} and {p}; remove one copy")
                out[k] = p
        return [
            (tag, stem, image, label)
            for (tag, stem), image, label in pair_by_key(indexed[0], indexed[1], what, self.label_kind)
        ]

    def scan_one(self, pattern: str, suffixes: tuple[str, ...], what: str) -> Path:
        """The single file matching `pattern` (a release table such as a split list); none or several is an error."""
        found = find_files(self.root, pattern, suffixes)
        if len(found) != 1:
            seen = "none" if not found else f"{len(found)}: {found[0]}, {found[1]}"
            raise DataError(
                f"dataset '{self.cfg.name}': expected one {what} matching {pattern!r} under {self.root}, found {seen}"
            )
        return found[0]

    def nothing_found(self, what: str) -> NothingFound:
        return NothingFound(
            f"dataset '{self.cfg.name}': no {what} under {self.root}; point dataset.root at the unzipped release"
        )

    def tag(self, path: Path) -> str | None:
        return split_tag(path.relative_to(self.root).as_posix(), self.layout.get("split_tags"))

    def group(self, name: str) -> str | None:
        return name_group(name, self.layout.get("group"))

    def key(self, stem: str, split: str | None) -> str:
        """`layout.key` formats the sample key; releases whose splits reuse file names add the split."""
        return str(self.layout.get("key", "{stem}")).format(stem=stem, split=split)

    def read_split_csv(self, path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
        """Rows of a release table (split list, fold table) that must have `columns`."""
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if rows and not set(columns) <= set(rows[0]):
            raise DataError(f"{path}: needs columns {list(columns)}, found {list(rows[0])}")
        return rows

    def finish(self, sample: Sample, image: np.ndarray, raw: np.ndarray, instances: np.ndarray | None) -> Record:
        where = sample.paths[-1] if sample.paths else sample.key
        if raw.shape != image.shape[:2]:
            raise DataError(f"{where}: label size {raw.shape[::-1]} differs from image size {image.shape[1::-1]}")
        mask = self.to_classes(raw, where)
        inst = None if instances is None else as_instances(instances, where)
        return self.check_record(sample, Record(image=image, mask=mask, instances=inst))


class InstanceFileSource(NucleiSource):
    """Releases whose label file holds only nucleus outlines or ids: nucleus wherever an instance is."""

    has_instances = True

    @abstractmethod
    def read_instances(self, path: str, shape: tuple[int, int]) -> np.ndarray:
        """The instance-id map (H, W) stored in one label file."""

    def load(self, sample: Sample) -> Record:
        image_path, label_path = sample.paths
        image = read_image(image_path)
        instances = self.read_instances(label_path, image.shape[:2])
        return self.finish(sample, image, (instances > 0).astype(np.uint8), instances)


def table_lookup(table: dict[str, str], key_of: Callable[[str], str], source: Path, what: str) -> SplitLookup:
    """Split of a sample from a release table keyed by `key_of(stem)`; a sample missing from it is an error."""

    def lookup(stem: str, image: Path) -> str:
        key = key_of(stem)
        if key not in table:
            raise DataError(f"{image}: {key} is not listed in {what} ({source})")
        return table[key]

    return lookup


def as_instances(values: np.ndarray, where: str) -> np.ndarray:
    """Instance ids as int32; non-integral or negative ids (a corrupt map) are an error."""
    if values.ndim != 2:
        raise DataError(f"{where}: instance map must be 2-D, got shape {values.shape}")
    if values.dtype.kind == "f":
        if not np.all(np.mod(values, 1) == 0):
            raise DataError(f"{where}: instance map holds non-integer ids")
    if values.size and values.min() < 0:
        raise DataError(f"{where}: instance map holds negative ids")
    if values.size and values.max() > np.iinfo(np.int32).max:
        raise DataError(f"{where}: instance ids exceed int32")
    return np.ascontiguousarray(values, dtype=np.int32)
