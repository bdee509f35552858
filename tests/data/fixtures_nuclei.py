"""Miniature copies of the nine nuclei releases, written in their original layouts and encodings.

Each `make_<release>(root)` writes a few small tiles exactly as the release stores them (folder
names, file names, RGBA PNG, LZW/PackBits TIFF, MATLAB .mat, .npy stacks with channels, Aperio XML,
ASCII masks, CSV split tables, plus `__MACOSX` litter and overlay renderings that must be ignored)
and returns what a correct reader must produce: {sample key: Expected} in the config's default
class mode. Truth is drawn first (rectangles of known class) and then encoded, so expectations do
not depend on the code under test.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import tifffile
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


@dataclass
class Expected:
    split: str | None
    group: str | None
    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None


@dataclass
class Truth:
    """A drawn tile: RGB image, instance map (ids 1..N), class code of each instance (index id-1)."""

    image: np.ndarray
    instances: np.ndarray
    types: np.ndarray
    boxes: list[tuple[int, int, int, int]]  # (row0, col0, row1, col1), inclusive

    def type_map(self) -> np.ndarray:
        lut = np.concatenate([[0], self.types])
        return lut[self.instances]


def draw(seed: int, h: int = 72, w: int = 80, n: int = 5, n_types: int = 1) -> Truth:
    """Non-overlapping rectangles on a pink background; darker purple inside nuclei."""
    rng = np.random.default_rng(seed)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = (230, 160, 200)
    image += rng.integers(0, 20, size=image.shape, dtype=np.uint8)
    instances = np.zeros((h, w), np.int32)
    boxes = []
    cols = max(1, n)
    for i in range(n):
        c0 = 2 + i * ((w - 4) // cols)
        r0 = int(rng.integers(2, h - 14))
        r1, c1 = r0 + int(rng.integers(4, 11)), c0 + int(rng.integers(3, max(4, (w - 4) // cols - 2)))
        instances[r0 : r1 + 1, c0 : c1 + 1] = i + 1
        image[r0 : r1 + 1, c0 : c1 + 1] = (90, 50, 140)
        boxes.append((r0, c0, r1, c1))
    types = rng.integers(1, n_types + 1, size=n)
    return Truth(image, instances, types, boxes)


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def _rgba(rgb: np.ndarray) -> np.ndarray:
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


def _mat(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, arrays)


def _litter(root: Path, rel: str) -> None:
    """A macOS resource fork left by zipping; readers must skip it."""
    p = root / "__MACOSX" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"\x00\x05\x16\x07junk")


def _binary(t: Truth, split: str | None, group: str | None = None, instances: bool = True) -> Expected:
    return Expected(split, group, t.image, (t.instances > 0).astype(np.uint8), t.instances if instances else None)


# --- HoVer-Net .mat family ---------------------------------------------------------------------


def make_consep(root: Path) -> dict[str, Expected]:
    out = {}
    for offset, split, names in ((0, "train", ["train_1", "train_2", "train_3"]), (10, "test", ["test_1", "test_2"])):
        for j, name in enumerate(names):
            t = draw(offset + j, n=5, n_types=7)
            base = root / "CoNSeP" / split.capitalize()
            _png(base / "Images" / f"{name}.png", _rgba(t.image))  # CoNSeP PNGs carry an alpha channel
            _mat(
                base / "Labels" / f"{name}.mat",
                inst_map=t.instances.astype(np.float64),
                type_map=t.type_map().astype(np.float64),
                inst_type=t.types.reshape(-1, 1).astype(np.float64),
                inst_centroid=np.zeros((len(t.types), 2)),
            )
            _png(base / "Overlay" / f"{name}.png", t.image)
            out[name] = Expected(split, None, t.image, t.type_map().astype(np.uint8), t.instances)
    (root / "CoNSeP" / "README.txt").write_text("CoNSeP\n")
    _litter(root, "CoNSeP/Train/Images/._train_1.png")
    return out


def make_cpm17(root: Path) -> dict[str, Expected]:
    out = {}
    for split in ("train", "test"):
        for j in range(2):
            t = draw(100 + j + (split == "test") * 10)
            base = root / "cpm17" / split
            _png(base / "Images" / f"image_{j:02d}.png", t.image)
            _mat(base / "Labels" / f"image_{j:02d}.mat", inst_map=t.instances)
            _png(base / "Overlay" / f"image_{j:02d}.png", t.image)
            out[f"{split}_image_{j:02d}"] = _binary(t, split)
    return out


def make_kumar_hovernet(root: Path) -> dict[str, Expected]:
    out = {}
    names = {
        "train": ["TCGA-A7-A13E-01Z-00-DX1", "TCGA-B0-5711-01Z-00-DX1"],
        "test_same": ["TCGA-B0-5710-01Z-00-DX1"],
        "test_diff": ["TCGA-DK-A2I6-01A-01-TS1"],
    }
    for folder, stems in names.items():
        for j, stem in enumerate(stems):
            t = draw(200 + j + len(folder))
            base = root / "kumar" / folder
            (base / "Images").mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(base / "Images" / f"{stem}.tif", t.image, photometric="rgb")
            _mat(base / "Labels" / f"{stem}.mat", inst_map=t.instances)
            out[stem] = _binary(t, "train" if folder == "train" else "test", stem[:12])
    return out


def _hovernet_flat(folder: Path, names: list[str], seed: int) -> dict[str, Expected]:
    """A HoVer-Net copy without splits: Images/<name>.png + Labels/<name>.mat (inst_map)."""
    out = {}
    for j, name in enumerate(names):
        t = draw(seed + j)
        _png(folder / "Images" / f"{name}.png", t.image)
        _mat(folder / "Labels" / f"{name}.mat", inst_map=t.instances)
        out[name] = _binary(t, None)
    return out


def make_cpm15_hovernet(root: Path) -> dict[str, Expected]:
    return _hovernet_flat(root / "cpm15", [f"image_{j:02d}" for j in range(3)], 300)


def make_tnbc_hovernet(root: Path) -> dict[str, Expected]:
    return _hovernet_flat(root / "tnbc", [f"{j:02d}_1" for j in range(1, 4)], 350)


def make_lizard(root: Path) -> dict[str, Expected]:
    out = {}
    rows = []
    names = ["consep_1", "crag_2", "dpath_3", "glas_4", "pannuke_5", "crag_6"]
    for j, name in enumerate(names):
        t = draw(400 + j, n=5, n_types=6)
        folder = "lizard_images1/Lizard_Images1" if j < 3 else "lizard_images2/Lizard_Images2"
        _png(root / folder / f"{name}.png", t.image)
        order = np.random.default_rng(j).permutation(len(t.types))  # id/class order need not follow the ids
        ids = (order + 1).reshape(-1, 1)
        _mat(
            root / "lizard_labels/Lizard_Labels/Labels" / f"{name}.mat",
            inst_map=t.instances.astype(np.float64),
            id=ids,
            **{"class": t.types[order].reshape(-1, 1)},
            bbox=np.zeros((len(ids), 4)),
            centroid=np.zeros((len(ids), 2)),
        )
        _png(root / "overlay" / f"{name}.png", t.image)
        fold = j % 3 + 1
        rows.append({"Filename": name, "Source": name.split("_")[0], "Split": fold})
        out[name] = Expected(
            {1: "train", 2: "val", 3: "test"}[fold], None, t.image, t.type_map().astype(np.uint8), t.instances
        )
    with open(root / "lizard_labels/Lizard_Labels/info.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["Filename", "Source", "Split"])
        writer.writeheader()
        writer.writerows(rows)
    return out


# --- MoNuSeg / Kumar original: TIFF + Aperio XML ---------------------------------------------------


def aperio_xml(boxes: list[tuple[float, float, float, float]]) -> str:
    """Aperio ImageScope XML with one Region per (x0, y0, x1, y1) rectangle outline."""
    regions = []
    for i, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        verts = "".join(f'<Vertex X="{x}" Y="{y}" Z="0" />' for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
        regions.append(f'<Region Id="{i}" Type="0" Zoom="1"><Attributes/><Vertices>{verts}</Vertices></Region>')
    return (
        '<?xml version="1.0"?><Annotations MicronsPerPixel="0.252000"><Annotation Id="1">'
        f"<Regions>{''.join(regions)}</Regions></Annotation></Annotations>"
    )


def _xml_truth(t: Truth) -> tuple[list, np.ndarray]:
    """Outlines at half-pixel bounds cover exactly the drawn boxes; one extra outline pokes outside the
    tile (clipped) and one overlaps an earlier nucleus (the later region wins)."""
    h, w = t.instances.shape
    boxes = [(c0 - 0.5, r0 - 0.5, c1 + 0.5, r1 + 0.5) for r0, c0, r1, c1 in t.boxes]
    inst = t.instances.copy()
    boxes.append((-2.9, -2.9, 2.5, 1.5))  # columns 0..2, rows 0..1
    inst[0:2, 0:3] = len(boxes)
    r0, c0, r1, c1 = t.boxes[0]
    boxes.append((c0 - 0.5, r0 - 0.5, c0 + 1.5, r0 + 1.5))  # 2x2 over nucleus 1
    inst[r0 : r0 + 2, c0 : c0 + 2] = len(boxes)
    assert h > 4 and w > 4
    return boxes, inst


def make_kumar_monuseg(root: Path) -> dict[str, Expected]:
    out = {}
    layout = {"MoNuSeg 2018 Training Data": ("train", "tiff_lzw"), "MoNuSegTestData": ("test", "packbits")}
    stems = {
        "train": ["TCGA-A7-A13E-01Z-00-DX1", "TCGA-B0-5711-01Z-00-DX1", "TCGA-HE-7128-01Z-00-DX1"],
        "test": ["TCGA-2Z-A9J9-01A-01-TS1"],
    }
    for folder, (split, compression) in layout.items():
        for j, stem in enumerate(stems[split]):
            t = draw(500 + j + 7 * (split == "test"))
            boxes, inst = _xml_truth(t)
            image_dir = root / folder / "Tissue Images" if split == "train" else root / folder
            xml_dir = root / folder / "Annotations" if split == "train" else root / folder
            image_dir.mkdir(parents=True, exist_ok=True)
            xml_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(t.image).save(image_dir / f"{stem}.tif", compression=compression)  # as released
            (xml_dir / f"{stem}.xml").write_text(aperio_xml(boxes))
            out[stem] = Expected(split, stem[:12], t.image, (inst > 0).astype(np.uint8), inst)
    _litter(root, "MoNuSeg 2018 Training Data/Tissue Images/._TCGA-A7-A13E-01Z-00-DX1.tif")
    return out


# --- CPM-15 original: RGBA PNG + ASCII masks ---------------------------------------------------------


def ascii_mask(instances: np.ndarray) -> str:
    h, w = instances.shape
    return f"{w} {h}\n" + "\n".join(str(v) for v in instances.ravel()) + "\n"


def make_cpm15_original(root: Path) -> dict[str, Expected]:
    out = {}
    base = root / "MICCAI_competition_dataset"
    for j in range(1, 4):
        t = draw(600 + j, h=60 + j, w=70)  # non-square: catches a transposed reshape
        _png(base / f"image{j:02d}.png", _rgba(t.image))
        (base / f"image{j:02d}_mask.txt").write_text(ascii_mask(t.instances))
        _png(base / f"image{j:02d}_poly.png", t.image)
        out[f"image{j:02d}"] = _binary(t, None)
    (base / "README_training.txt").write_text("readme\n")
    return out


# --- TNBC original: Slide_XX / GT_XX ------------------------------------------------------------------


def make_tnbc(root: Path) -> dict[str, Expected]:
    out = {}
    base = root / "TNBC_NucleiSegmentation"
    for slide in ("01", "02", "03"):
        for k in (1, 2):
            t = draw(700 + int(slide) * 3 + k)
            _png(base / f"Slide_{slide}" / f"{slide}_{k}.png", _rgba(t.image))
            _png(base / f"GT_{slide}" / f"{slide}_{k}.png", ((t.instances > 0) * 255).astype(np.uint8), "L")
            out[f"{slide}_{k}"] = _binary(t, None, slide, instances=False)
    _litter(root, "TNBC_NucleiSegmentation/Slide_01/._01_1.png")
    return out


# --- NuCLS: rgb/ + 3-channel code masks + fold lists -------------------------------------------------


NUCLS_SLIDES = ["TCGA-A1-A0SP-DX1", "TCGA-BH-A0BL-DX1", "TCGA-E2-A14N-DX1", "TCGA-OL-A6VO-DX1"]
NUCLS_FOLD1_TEST = {"TCGA-BH-A0BL-DX1", "TCGA-OL-A6VO-DX1"}


def nucls_mask(t: Truth, codes: np.ndarray) -> np.ndarray:
    """Channel 0 = code; channels 1 and 2 multiply to the nucleus id (id = 1 * id, or 2 * id/2 when even)."""
    h, w = t.instances.shape
    mask = np.zeros((h, w, 3), np.uint8)
    mask[..., 0] = codes
    a = np.where(t.instances % 2 == 0, 2, 1)
    b = t.instances // a
    nucleus = t.instances > 0
    mask[..., 1] = np.where(nucleus, a, 1)
    mask[..., 2] = np.where(nucleus, b, 2)  # FOV pixels carry a product of 2 but are not nuclei
    return mask


def make_nucls(root: Path) -> dict[str, Expected]:
    out = {}
    base = root / "NuCLS_dataset"
    for j, slide in enumerate(NUCLS_SLIDES):
        for k in range(2):
            t = draw(800 + 2 * j + k, n=5, n_types=12)
            t.types[0] = 99  # an unlabeled nucleus
            codes = t.type_map()
            codes[t.instances == 0] = 253
            codes[:, :3] = 0  # a strip outside the FOV
            name = f"{slide}_id-5ea40a{j}{k}ddda5f8398977eb{j}_left-{7053 + k}_top-53967_bottom-54231_right-7311"
            _png(base / "rgb" / f"{name}.png", t.image)
            _png(base / "mask" / f"{name}.png", nucls_mask(t, codes))
            _png(base / "visualization" / f"{name}.png", t.image)
            (base / "csv").mkdir(parents=True, exist_ok=True)
            (base / "csv" / f"{name}.csv").write_text("raw_classification,type\n")
            lut = np.full(256, -1)
            lut[[0, 253, 99]] = [255, 0, 255]
            lut[1:13] = np.arange(1, 13)
            inst = np.where(np.isin(codes, [0, 253]), 0, t.instances)
            split = "test" if slide in NUCLS_FOLD1_TEST else "train"
            out[name] = Expected(split, slide[:12], t.image, lut[codes].astype(np.uint8), inst)
    splits = base / "train_test_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for fold, test in ((1, NUCLS_FOLD1_TEST), (2, {NUCLS_SLIDES[0]})):
        for part in ("train", "test"):
            chosen = [s for s in NUCLS_SLIDES if (s in test) == (part == "test")]
            lines = [",slide_name,hospital,type,fold"] + [
                f"{i},{s},{s[5:7]},{part},{fold}" for i, s in enumerate(chosen)
            ]
            (splits / f"fold_{fold}_{part}.csv").write_text("\n".join(lines) + "\n")
    return out


# --- numpy stacks: PanNuke and CoNIC ------------------------------------------------------------------


PANNUKE_TISSUES = ["Breast", "Colon", "Kidney"]


def make_pannuke(root: Path, size: int = 64) -> dict[str, Expected]:
    """Per fold: float64 images (as released), masks with 5 instance channels + background flag, types."""
    out = {}
    for fold in (1, 2, 3):
        n = 2
        images = np.zeros((n, size, size, 3), np.float64)
        masks = np.zeros((n, size, size, 6), np.float64)
        for i in range(n):
            t = draw(900 + 10 * fold + i, h=size, w=size, n=4, n_types=5)
            images[i] = t.image
            ids = 10 * t.instances  # PanNuke ids are not consecutive
            for c in range(5):
                masks[i, ..., c] = np.where(t.type_map() == c + 1, ids, 0)
            masks[i, ..., 5] = (t.instances == 0).astype(np.float64)
            out[f"fold{fold}_{i:05d}"] = Expected(
                {1: "train", 2: "val", 3: "test"}[fold], None, t.image, t.type_map().astype(np.uint8), t.instances
            )
        img_dir = root / f"Fold {fold}" / "images" / f"fold{fold}"
        mask_dir = root / f"Fold {fold}" / "masks" / f"fold{fold}"
        img_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        np.save(img_dir / "images.npy", images)
        np.save(img_dir / "types.npy", np.array(PANNUKE_TISSUES[:n]))
        np.save(mask_dir / "masks.npy", masks)
        (mask_dir.parent / "by-nc-sa.md").write_text("licence\n")
    return out


def make_conic(root: Path, size: int = 64) -> dict[str, Expected]:
    out = {}
    names = ["consep_1-0000", "consep_1-0001", "crag_2-0000", "glas_3-0000", "glas_3-0001", "dpath_4-0000"]
    n = len(names)
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros((n, size, size, 2), np.uint16)
    for i, name in enumerate(names):
        t = draw(1000 + i, h=size, w=size, n=4, n_types=6)
        images[i], labels[i, ..., 0], labels[i, ..., 1] = t.image, t.instances, t.type_map()
        out[name] = Expected(None, name.split("-")[0], t.image, t.type_map().astype(np.uint8), t.instances)
    base = root / "CoNIC_data"
    base.mkdir(parents=True)
    np.save(base / "images.npy", images)
    np.save(base / "labels.npy", labels)
    (base / "patch_info.csv").write_text("patch_info\n" + "\n".join(names) + "\n")
    (base / "counts.csv").write_text(
        "neutrophil,epithelial,lymphocyte,plasma,eosinophil,connective\n" + "0,1,0,0,0,0\n" * n
    )
    return out


MAKERS = {
    "consep": make_consep,
    "cpm17": make_cpm17,
    "lizard": make_lizard,
    "kumar": make_kumar_monuseg,
    "cpm15": make_cpm15_original,
    "tnbc": make_tnbc,
    "nucls": make_nucls,
    "pannuke": make_pannuke,
    "conic2022": make_conic,
}


def dataset_cfg(name: str, root: Path | str | None = None, **overrides):
    """The shipped `configs/dataset/<name>.yaml` with `root` and dotted overrides applied."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "configs" / "dataset" / f"{name}.yaml")
    cfg.root = None if root is None else str(root)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def build(name: str, root: Path | str | None = None, **overrides):
    from densebench.data import build_source

    return build_source(dataset_cfg(name, root, **overrides))
