"""Shared reading helpers for release formats: file discovery and decoding by true encoding.

Users unzip releases into differently named folders (spaces vs underscores, doubled folders,
`__MACOSX` litter), so discovery matches file-name patterns anywhere under the root. Masks are
decoded by their real encoding (palette indices, RGB colours, raw integer values), never through
a luminance conversion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from densebench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def is_litter(path: Path) -> bool:
    """macOS resource forks and hidden files that zips leave behind."""
    return any(part == "__MACOSX" or part.startswith("._") or part == ".DS_Store" for part in path.parts)


def find_files(root: Path, pattern: str, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Files under `root` whose POSIX path relative to root matches regex `pattern` (searched, case-insensitive)."""
    rx = re.compile(pattern, re.IGNORECASE)
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes and not is_litter(path.relative_to(root)):
            if rx.search(path.relative_to(root).as_posix()):
                out.append(path)
    return out


def unique_by_stem(paths: Iterable[Path], what: str) -> dict[str, Path]:
    """Map stem → path, failing on duplicates (e.g. the same release unzipped twice)."""
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise DataError(f"{what}: two files named {p.stem}: {out[p.stem]} and {p}; remove one copy")
        out[p.stem] = p
    return out


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except Exception as exc:
        raise DataError(f"{path}: cannot decode ({type(exc).__name__}: {exc}); the file may be truncated") from None


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3). Alpha is dropped (releases such as CPM-15/TNBC ship RGBA), grey is replicated."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = _read_tiff(path)
    else:
        img = _open(path)
        arr = np.asarray(img.convert("RGB") if img.mode not in ("RGB", "RGBA", "L") else img)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: expected 8-bit RGB, got {arr.dtype}; convert the image to 8 bits per channel")
    return np.ascontiguousarray(arr)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot decode TIFF ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) TIFFs
    return arr


def read_label(path: str | Path) -> np.ndarray:
    """Raw label values (H, W): palette indices for mode P, integers for L/I/I;16; RGB/RGBA kept as (H, W, 3)."""
    img = _open(Path(path))
    if img.mode == "RGBA":
        return np.asarray(img)[..., :3]
    if img.mode in ("1",):
        return np.asarray(img).astype(np.uint8)
    return np.asarray(img)


def colours_to_ids(rgb: np.ndarray, colours: Sequence[Sequence[int]], where: str, ignore_index: int = 255) -> np.ndarray:
    """Map an RGB label image to class ids by exact colour; an unknown colour is an error, not background."""
    flat = rgb.reshape(-1, 3).astype(np.int64)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    table = {(int(r) << 16) | (int(g) << 8) | int(b): i for i, (r, g, b) in enumerate(colours)}
    keys = np.array(sorted(table), dtype=np.int64)
    values = np.array([table[k] for k in keys], dtype=np.uint8)
    pos = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
    known = keys[pos] == codes
    if not known.all():
        c = int(codes[~known][0])
        raise DataError(f"{where}: colour {(c >> 16, (c >> 8) & 255, c & 255)} is not in the dataset's class colours")
    return values[pos].reshape(rgb.shape[:2])


def remap(values: np.ndarray, mapping: dict[int, int], where: str) -> np.ndarray:
    """Map raw codes to class ids through an explicit table; a code missing from the table is an error."""
    lut_size = max(int(values.max(initial=0)), max(mapping)) + 1
    lut = np.full(lut_size, -1, dtype=np.int32)
    for src, dst in mapping.items():
        lut[src] = dst
    out = lut[values]
    if (out < 0).any():
        bad = np.unique(values[out < 0])[:5].tolist()
        raise DataError(f"{where}: label codes {bad} have no class in the dataset config")
    return out.astype(np.uint8)


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """A MATLAB .mat file (v5 via scipy; v7.3/HDF5 via h5py) as a dict of arrays."""
    path = Path(path)
    try:
        from scipy.io import loadmat

        return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 files are HDF5
        import h5py

        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys()}
    except Exception as exc:
        raise DataError(f"{path}: cannot read .mat ({type(exc).__name__}: {exc})") from None
