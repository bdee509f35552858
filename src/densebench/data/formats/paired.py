"""`paired`: releases that ship each image next to one or more mask files, found by naming patterns.

GlaS, CRAG, RINGS, BCSS, COSAS24, EBHI-Seg, WSSS4LUAD, Janowczyk and the generic `folder` type differ
only in data: where the files live (regexes over the path below the root, so renamed or doubled
unzip folders still match), how a mask encodes its labels (instance ids, binary, integer codes,
palette/RGB colours, plain class ids), and where the official split, the patient and the class of a
binary mask come from. All of that is in `configs/dataset/<name>.yaml`; this module only reads it.

Masks are *layers* painted in order onto background (class 0): a full-map layer (codes, colours,
ids) must come first; binary and instance layers paint their class where set, so a later layer wins
(RINGS: tumour over gland).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from densebench.data import SOURCES
from densebench.data.base import Record, Sample, SegmentationSource, class_id
from densebench.data.io import (
    colours_to_ids,
    find_files,
    find_matches,
    read_class_ids,
    read_colour_label,
    read_image,
    read_label,
    read_table,
    remap,
    single_channel,
)
from densebench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FULL_MAP = ("codes", "colours", "ids")  # the layer decides every pixel's class
PAINT = ("binary", "instances")  # the layer paints one class where it is set
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def fill(template: str | None, fields: Mapping[str, str]) -> str | None:
    """Format a `{field}` template from regex groups; None when a field it names was not captured."""
    if not template:
        return None
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if any(n not in fields for n in names):
        return None
    return template.format(**fields)


@dataclass(frozen=True)
class Layer:
    """One mask file per image, decoded by `encoding` (see the module docstring)."""

    name: str  # how messages call this file (e.g. "label", "MANUAL TUMOR")
    pattern: str
    encoding: str
    cls: int | None  # paint layers: class painted where set; None = from the image's class field
    threshold: int
    required: bool
    codes: dict[int, int] | None  # codes: raw value -> class id
    colours: tuple[tuple[tuple[int, int, int], int], ...] | None  # colours: (rgb, class id)


@SOURCES.register("paired")
class PairedFiles(SegmentationSource):
    """Image files paired with mask files by a key built from regex groups of their paths."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.layers = [self._layer(i, spec) for i, spec in enumerate(cfg.masks)]
        self.has_instances = any(l.encoding == "instances" for l in self.layers) or cfg.get("instances") == "components"
        self.class_map = {
            str(k).lower(): class_id(self.classes, v, "dataset.class_map")
            for k, v in (cfg.get("class_map") or {}).items()
        }
        self.split_map = {str(k).lower(): str(v) for k, v in (cfg.get("split_map") or {}).items()}
        bad = set(self.split_map.values()) - {"train", "val", "test"}
        if bad:
            raise ConfigError(f"dataset.split_map: splits {sorted(bad)} are not train, val or test")

    def _layer(self, index: int, spec: DictConfig) -> Layer:
        option = f"dataset.masks[{index}]"
        encoding = spec.get("encoding")
        if encoding not in FULL_MAP + PAINT:
            raise ConfigError(f"{option}.encoding={encoding} is not known; use one of {', '.join(FULL_MAP + PAINT)}")
        if encoding in FULL_MAP and index > 0:
            raise ConfigError(f"{option}: a '{encoding}' layer decides every pixel, so it must be the first mask layer")
        cls = spec.get("class")
        if encoding in PAINT and cls is None and not self.cfg.get("class_field"):
            raise ConfigError(f"{option} needs `class:` (or dataset.class_field to take it from the path)")
        codes = colours = None
        if encoding == "codes":
            codes = {int(k): class_id(self.classes, v, f"{option}.codes") for k, v in spec.codes.items()}
        if encoding == "colours":
            table = spec.get("colours")
            if not table:
                raise ConfigError(f"{option}: a 'colours' layer needs `colours:` (class name -> RGB of the release)")
            colours = tuple(
                ((int(rgb[0]), int(rgb[1]), int(rgb[2])), class_id(self.classes, n, f"{option}.colours"))
                for n, rgb in table.items()
            )
        return Layer(
            name=str(spec.get("name") or "mask"),
            pattern=str(spec.pattern),
            encoding=encoding,
            cls=None if cls is None else class_id(self.classes, cls, f"{option}.class"),
            threshold=int(spec.get("threshold", 0)),
            required=bool(spec.get("required", True)),
            codes=codes,
            colours=colours,
        )

    # ---- listing ------------------------------------------------------------------------------
    def _index(self, root: Path, pattern: str, what: str) -> dict[str, tuple[Path, dict[str, str]]]:
        out: dict[str, tuple[Path, dict[str, str]]] = {}
        template = self.cfg.get("key") or "{key}"
        for path, fields in find_matches(root, pattern):
            key = fill(template, fields)
            if key is None:
                raise ConfigError(
                    f"dataset.key={template}: {what} pattern {pattern!r} does not capture its fields ({path})"
                )
            if key in out:
                raise DataError(
                    f"{what} files {out[key][0]} and {path} both have key '{key}'; remove the duplicate copy"
                )
            out[key] = (path, fields)
        return out

    def _group_table(self, root: Path) -> dict[str, str] | None:
        spec = self.cfg.get("group_table")
        if not spec:
            return None
        found = find_files(root, spec.pattern, TABLE_SUFFIXES)
        if not found:
            log.warning(
                "%s: no %s under %s; patients unknown, validation is carved per image",
                self.cfg.name,
                spec.pattern,
                root,
            )
            return None
        rows = read_table(found[0])
        try:
            return {r[spec.key_column]: r[spec.group_column] for r in rows}
        except KeyError as exc:
            raise DataError(
                f"{found[0]}: column {exc} missing (dataset.group_table expects "
                f"'{spec.key_column}' and '{spec.group_column}')"
            ) from None

    def _split(self, fields: Mapping[str, str], path: Path) -> str | None:
        field = self.cfg.get("split_field")
        if not field or field not in fields:
            return None
        value = fields[field].lower()
        split = self.split_map.get(value, self.split_map.get("*"))
        if split is None:
            raise DataError(
                f"{path}: release split '{fields[field]}' is not in dataset.split_map {sorted(self.split_map)}"
            )
        return split

    def samples(self) -> list[Sample]:
        root = self.root
        self.excluded = []
        self._check_code_table(root)
        images = self._index(root, self.cfg.image, "image")
        if not images:
            raise DataError(
                f"dataset '{self.cfg.name}': no image matches {self.cfg.image!r} under {root}; "
                "is dataset.root the unzipped release?"
            )
        masks = [self._index(root, layer.pattern, f"mask layer {i}") for i, layer in enumerate(self.layers)]
        table = self._group_table(root)
        policy = self.cfg.get("missing_mask") or "error"
        out = []
        for key, (path, fields) in sorted(images.items()):
            present = [i for i, index in enumerate(masks) if key in index]
            lacking = [
                self.layers[i].name for i, index in enumerate(masks) if self.layers[i].required and key not in index
            ]
            if lacking or not present:
                what = f"no {' or '.join(lacking or [l.name for l in self.layers])} file for this image"
                if policy != "exclude":
                    raise DataError(f"{path}: {what}; restore the mask or remove the image")
                self.excluded.append((path.relative_to(root).as_posix(), what))
                continue
            if table is not None and key not in table:
                raise DataError(
                    f"{path}: key '{key}' has no row in the dataset's group table ({self.cfg.group_table.pattern})"
                )
            group = table[key] if table is not None else fill(self.cfg.get("group"), fields)
            out.append(
                Sample(
                    key=key,
                    split=self._split(fields, path),
                    group=group,
                    paths=(str(path), *(str(masks[i][key][0]) for i in present)),
                    meta={"fields": fields, "layers": tuple(present)},
                )
            )
        for i, layer in enumerate(self.layers):
            absent = sum(s.key not in masks[i] for s in out)
            if not layer.required and absent > 0:
                log.info(
                    "%s: %d of %d images have no %s file; read as none of that class (required: false)",
                    self.cfg.name,
                    absent,
                    len(out),
                    layer.name,
                )
        for i, index in enumerate(masks):
            for key, (path, _) in index.items():
                if key not in images:
                    self.excluded.append(
                        (path.relative_to(root).as_posix(), f"{self.layers[i].name} file without an image")
                    )
        if self.excluded:
            listing = "; ".join(f"{f} ({why})" for f, why in self.excluded)
            log.warning("%s: left out %d file(s): %s", self.cfg.name, len(self.excluded), listing)
        return out

    def _check_code_table(self, root: Path) -> None:
        """Where the release ships its own code table (BCSS gtruth_codes.tsv), it must agree with the config."""
        spec = self.cfg.get("code_table")
        if not spec:
            return
        found = find_files(root, spec.pattern, TABLE_SUFFIXES)
        if not found:
            return
        codes = self.layers[0].codes or {}
        for row in read_table(found[0]):
            name, code = row.get(spec.name_column), row.get(spec.code_column)
            if name is None or code is None or not code.isdigit():
                raise DataError(f"{found[0]}: expected columns '{spec.name_column}' and '{spec.code_column}'")
            if codes.get(int(code)) != (self.classes.index(name) if name in self.classes else None):
                raise DataError(
                    f"{found[0]}: code {code} = '{name}' disagrees with dataset.masks[0].codes; "
                    "this copy of the release uses a different code table"
                )

    # ---- decoding -----------------------------------------------------------------------------
    def load(self, sample: Sample) -> Record:
        image = read_image(sample.paths[0])
        shape = image.shape[:2]
        mask = np.zeros(shape, np.uint8)
        instances = np.zeros(shape, np.int32) if self.has_instances else None
        fields = sample.meta["fields"]
        for index, path in zip(sample.meta["layers"], sample.paths[1:]):
            layer = self.layers[index]
            cls = layer.cls
            if cls is None and layer.encoding in PAINT:
                cls = self._field_class(fields, sample.paths[0])
            self._paint(layer, path, cls, shape, mask, instances)
        if self.cfg.get("instances") == "components":
            _, instances = cv2.connectedComponents((mask != 0).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        return self.check_record(sample, Record(image=image, mask=mask, instances=instances))

    def _field_class(self, fields: Mapping[str, str], where: str) -> int:
        value = fields.get(self.cfg.get("class_field"), "")
        if value.lower() not in self.class_map:
            raise DataError(
                f"{where}: '{value}' (dataset.class_field={self.cfg.get('class_field')}) is not in dataset.class_map"
            )
        return self.class_map[value.lower()]

    def _paint(
        self,
        layer: Layer,
        path: str,
        cls: int | None,
        shape: tuple[int, ...],
        mask: np.ndarray,
        instances: np.ndarray | None,
    ) -> None:
        if layer.encoding == "colours":
            raw = read_colour_label(path)
        elif layer.encoding == "ids":
            raw = read_class_ids(path)
        else:
            raw = single_channel(read_label(path), path)
        if raw.shape[:2] != shape:
            raise DataError(
                f"{path}: mask size {raw.shape[1]}x{raw.shape[0]} differs from its image's {shape[1]}x{shape[0]}"
            )
        if layer.encoding == "codes":
            assert layer.codes is not None  # set for this encoding by _layer()
            mask[:] = remap(raw, layer.codes, path)
        elif layer.encoding == "colours":
            assert layer.colours is not None  # set for this encoding by _layer()
            rgbs, ids = zip(*layer.colours)
            mask[:] = np.asarray(ids, np.uint8)[colours_to_ids(raw, rgbs, path)]
        elif layer.encoding == "ids":
            mask[:] = raw
        else:
            on = raw > layer.threshold
            mask[on] = cls
            if layer.encoding == "instances" and instances is not None:
                instances[on] = raw[on].astype(np.int32) + instances.max(initial=0)
