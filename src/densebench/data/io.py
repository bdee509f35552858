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
        if img.mode.startswith(("I", "F")):  # 16/32-bit: converting to RGB would clip every value above 255
            raise DataError(f"{path}: a {img.mode} image (more than 8 bits); convert the image to 8 bits per channel")
        arr = _pil_array(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: expected 8-bit RGB, got {arr.dtype}; convert the image to 8 bits per channel")
    return np.ascontiguousarray(arr)


def _pil_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "RGBA", "L") else img)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as exc:
        # tifffile needs the optional imagecodecs package for LZW (MoNuSeg training tiles); Pillow's
        # libtiff decodes LZW and PackBits, so it is the fallback before giving up.
        try:
            return _pil_array(_open(path))
        except DataError:
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


def colours_to_ids(
    rgb: np.ndarray, colours: Sequence[Sequence[int]], where: str, ignore_index: int = 255
) -> np.ndarray:
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


# --- Release layouts: split tags, pairing, numpy stacks (added for the nuclei releases) ---------


def split_tag(rel_path: str, rules: dict[str, str] | None) -> str | None:
    """The release's split for a file: the first rule (tag → regex on the relative path) that matches."""
    for tag, pattern in (rules or {}).items():
        if re.search(pattern, rel_path, re.IGNORECASE):
            return str(tag)
    return None


def name_group(name: str, pattern: str | None) -> str | None:
    """The patient/slide id in a file name: capture group 1 of `pattern` (None when no pattern is configured)."""
    if not pattern:
        return None
    m = re.search(pattern, name)
    if m is None:
        raise DataError(f"{name}: does not match the dataset's group pattern {pattern!r}; check the file name")
    return m.group(1)


def pair_by_key(images: dict, labels: dict, what: str, label_kind: str = "label") -> list[tuple]:
    """Match images with labels on a shared key; an image without a label (or the reverse) is an error."""
    missing = sorted(set(images) - set(labels), key=str)
    if missing:
        raise DataError(f"{what}: {len(missing)} image(s) have no {label_kind}, e.g. {images[missing[0]]}")
    orphans = sorted(set(labels) - set(images), key=str)
    if orphans:
        raise DataError(f"{what}: {len(orphans)} {label_kind}(s) have no image, e.g. {labels[orphans[0]]}")
    return [(k, images[k], labels[k]) for k in sorted(images, key=str)]


def single_channel(label: np.ndarray, where: str) -> np.ndarray:
    """A grey label stored as RGB with three identical channels, reduced to (H, W); real colour is an error."""
    if label.ndim == 2:
        return label
    if label.ndim == 3 and (label == label[..., :1]).all():
        return label[..., 0]
    raise DataError(f"{where}: expected a single-channel label, found differing colour channels {label.shape}")


def open_npy(path: str | Path) -> np.ndarray:
    """Memory-map a .npy (multi-GB stacks stay on disk); a truncated or pickled file is a clear error."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise DataError(
            f"{path}: cannot memory-map .npy ({type(exc).__name__}: {exc}); the file may be truncated"
        ) from None


# --- Release layouts read by named regex groups, colour labels, metadata tables (gland/tissue releases) ---


def find_matches(
    root: Path, pattern: str, suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[tuple[Path, dict[str, str]]]:
    """Like `find_files`, but also return the regex's named groups (key, split, patient ...) per file."""
    rx = re.compile(pattern, re.IGNORECASE)
    out = []
    for path in find_files(root, pattern, suffixes):
        match = rx.search(path.relative_to(root).as_posix())
        assert match is not None  # the paths were chosen by this pattern
        out.append((path, {k: v for k, v in match.groupdict().items() if v is not None}))
    return out


def read_colour_label(path: str | Path) -> np.ndarray:
    """A colour-coded label as RGB (H, W, 3): palette indices resolved through the file's own palette."""
    img = _open(Path(path))
    if img.mode not in ("RGB", "P", "RGBA", "L"):
        raise DataError(f"{path}: colour label of mode {img.mode} cannot be read as RGB colours")
    return np.asarray(img.convert("RGB"))


def read_class_ids(path: str | Path) -> np.ndarray:
    """A mask that stores class ids directly (0..K-1, 255 = ignore) as uint8 (H, W)."""
    raw = single_channel(read_label(path), str(path))
    if raw.max(initial=0) > 255:
        raise DataError(f"{path}: label values up to {int(raw.max())} do not fit class ids 0..254 (255 = ignore)")
    return raw.astype(np.uint8)


def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV/TSV metadata file (delimiter by suffix; CRLF tolerated; header names stripped)."""
    import csv

    path = Path(path)
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise DataError(f"{path}: empty table")
    header = [h.strip() for h in rows[0]]
    return [{h: v.strip() for h, v in zip(header, row)} for row in rows[1:] if any(v.strip() for v in row)]
