"""Decode-once cache: each sample's decoded Record stored as uint8/int arrays under a cache directory.

Decoding a release (rasterising XML polygons, parsing ASCII masks, reading float64 PanNuke stacks,
inflating PNG/TIFF) costs far more than reading raw arrays back, and it would be repeated every
epoch. An entry is keyed by a fingerprint of everything that determines the decode: the source's
format and decoder version, the decode-relevant dataset config (classes, code tables, layout), the
sample key, and path + size + mtime of each source file. Changing any of them gives a new key, so
stale entries are never read (old files are simply left behind; delete the directory to reclaim
space). Writes go to a temporary file that is atomically renamed, so DataLoader workers decoding
the same sample at once never see a partial entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from densebench.config import to_dict
from densebench.data.base import Record, Sample, SegmentationSource
from densebench.files import write_atomic

# Config keys that choose samples or sizes but never change how a sample decodes.
NOT_DECODING = frozenset(
    {
        "split",
        "split_seed",
        "split_file",
        "val_fraction",
        "fractions",
        "display_name",
        "published_key",
        "min_side",
        "max_input_size",
        "paper_input_size",
        "level",
        "category",
        "root",
        "colors",
        "instance_eval",
    }
)


def config_digest(source: SegmentationSource) -> str:
    """Hash of the source's identity and the decode-relevant part of its dataset config."""
    relevant = {k: v for k, v in to_dict(source.cfg).items() if k not in NOT_DECODING}
    ident = {
        "source": f"{type(source).__module__}.{type(source).__qualname__}",
        "decoder_version": getattr(source, "decoder_version", 0),
        "config": relevant,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(sample: Sample, digest: str) -> str:
    """Key of one cache entry: config digest, sample key, and path/size/mtime of each source file."""
    h = hashlib.sha256(digest.encode())
    h.update(sample.key.encode())
    for path in sample.paths:
        st = os.stat(path)
        h.update(f"\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


class RecordCache:
    """Callable `Sample -> Record` that decodes through `source.load` once and then reads the cache.

    Picklable (DataLoader workers get their own copy); instances are stored in the smallest unsigned
    dtype that holds them and returned as int32.
    """

    def __init__(self, source: SegmentationSource, cache_dir: str | Path) -> None:
        self.source = source
        self.dir = Path(cache_dir) / str(source.cfg.name)
        self.digest = config_digest(source)
        self.hits = 0
        self.misses = 0

    def path(self, sample: Sample) -> Path:
        fp = fingerprint(sample, self.digest)
        return self.dir / fp[:2] / f"{fp}.npz"

    def __call__(self, sample: Sample) -> Record:
        path = self.path(sample)
        if path.is_file():
            record = _read(path)
            if record is not None:
                self.hits += 1
                return record
        record = self.source.load(sample)
        self.misses += 1
        _write(path, record)
        return record


def cached_loader(source: SegmentationSource, cache_dir: str | Path) -> Callable[[Sample], Record]:
    """`source.load` behind the decode-once cache in `cache_dir` (one sub-directory per dataset)."""
    return RecordCache(source, cache_dir)


def _smallest(instances: np.ndarray) -> np.ndarray:
    top = int(instances.max(initial=0))
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return instances.astype(dtype)
    return instances


def _write(path: Path, record: Record) -> None:
    arrays = {"image": record.image, "mask": record.mask}
    if record.instances is not None:
        arrays["instances"] = _smallest(record.instances)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its `allow_pickle` flag
    write_atomic(path, buf.getvalue(), durable=False)  # a lost entry is simply decoded again


def _read(path: Path) -> Record | None:
    """The cached Record, or None for an unreadable entry (it is then decoded and rewritten)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            instances = data["instances"].astype(np.int32) if "instances" in data.files else None
            return Record(image=data["image"], mask=data["mask"], instances=instances)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
