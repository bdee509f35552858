"""Miniature copies of the gland/tissue releases, written in their original layouts and encodings.

Each `make_<dataset>(root)` writes a few small images the way the release ships them (BMP instance
maps, palette PNGs, 1-bit PNGs, 16-bit PNGs, HDF5, TIFF, CRLF TSV, CSV, anti-aliased greyscale labels,
doubled unzip folders, `__MACOSX` litter) and returns what a correct loader must produce per sample
key: image, class-id mask (default class mode), instance map, official split tag and group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.fixtures_nuclei import Expected

H, W = 36, 44


def expect(
    image: np.ndarray,
    mask: np.ndarray,
    instances: np.ndarray | None = None,
    split: str | None = None,
    group: str | None = None,
) -> Expected:
    return Expected(split=split, group=group, image=image, mask=mask, instances=instances)


def rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def blobs(seed: int, n: int, h: int = H, w: int = W) -> np.ndarray:
    """An instance map of `n` separated rectangles (ids 1..n; 0 = background) in a column layout."""
    inst = np.zeros((h, w), np.int32)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x0 = 2 + i * (w - 2) // max(n, 1)
        y0 = int(rng.integers(1, h // 2))
        inst[y0 : y0 + int(rng.integers(4, h // 2)), x0 : x0 + 3] = i + 1
    return inst


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def save_palette(path: Path, indices: np.ndarray, palette: list[tuple[int, int, int]]) -> Path:
    img = Image.fromarray(indices.astype(np.uint8), mode="P")
    img.putpalette([c for colour in palette for c in colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def litter(root: Path, name: str) -> None:
    """What macOS zips leave behind: must be ignored, never read as an image."""
    junk = root / "__MACOSX" / f"._{name}"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"\x00\x05\x16\x07 not an image")


# ---- glands --------------------------------------------------------------------------------------
def make_glas(root: Path) -> dict[str, Expected]:
    """Warwick-QU: flat BMPs, `_anno.bmp` instance maps, Grade.csv with patient ids."""
    base = root / "Warwick_QU_Dataset_(Released_2016_07_08)"
    names = [f"train_{i}" for i in range(1, 7)] + ["testA_1", "testA_2", "testB_1"]
    patients = {n: str(10 + min(i, 6)) for i, n in enumerate(names)}  # the test images share one patient
    rows = ["name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"]
    out = {}
    for i, name in enumerate(names):
        image, inst = rgb(i), blobs(i, 1 + i % 3)
        save(base / f"{name}.bmp", image)
        save(base / f"{name}_anno.bmp", inst.astype(np.uint8))
        rows.append(f"{name},{patients[name]}, benign, adenomatous")
        out[name] = expect(
            image, (inst > 0).astype(np.uint8), inst, "train" if name.startswith("train") else "test", patients[name]
        )
    (base / "Grade.csv").write_text("\n".join(rows) + "\n")
    litter(root, "train_1.bmp")
    return out


def make_crag(root: Path) -> dict[str, Expected]:
    """CRAG v2: `<part>/Images`, `<part>/Annotation` 16-bit instance PNGs, `Overlay/` to ignore."""
    out = {}
    for i, name in enumerate([f"train_{k}" for k in range(1, 7)] + ["test_1", "test_2"]):
        part = name.split("_")[0]
        image, inst = rgb(100 + i), blobs(100 + i, 2)
        save(root / "CRAG" / part / "Images" / f"{name}.png", image)
        save(root / "CRAG" / part / "Annotation" / f"{name}.png", inst.astype(np.uint16) * 300)
        save(root / "CRAG" / part / "Overlay" / f"{name}.png", image)
        out[name] = expect(image, (inst > 0).astype(np.uint8), inst * 300, part)
    return out


def make_rings(root: Path) -> dict[str, Expected]:
    """RINGS: 1-bit gland/tumour PNGs in folders with spaces; one benign image lacks a tumour mask,
    one TRAIN image lacks its gland mask (left out and reported)."""
    base = root / "RINGS_algorithm_dataset"
    out = {}
    specs = [("TRAIN", f"P{p}_D7_4_17_{p}") for p in range(1, 7)] + [("TEST", "P7_D1_1_1_1"), ("TEST", "P8_D2_2_2_2")]
    for i, (part, name) in enumerate(specs):
        image, inst = rgb(200 + i), blobs(200 + i, 3)
        glands, tumour = inst > 0, inst == 3
        save(base / part / "IMAGES" / f"{name}.png", image)
        save(base / part / "MANUAL GLANDS" / f"{name}.png", glands)
        mask = glands.astype(np.uint8)
        if i != 1:  # P2: benign, no tumour file
            save(base / part / "MANUAL TUMOR" / f"{name}.png", tumour)
            mask[tumour] = 2
        out[name] = expect(image, mask, inst, part.lower(), name.split("_")[0])
    save(base / "TRAIN" / "IMAGES" / "P9_no_mask.png", rgb(299))
    return out


# ---- tissue --------------------------------------------------------------------------------------
BCSS_CODES = [
    "outside_roi",
    "tumor",
    "stroma",
    "lymphocytic_infiltrate",
    "necrosis_or_debris",
    "glandular_secretions",
    "blood",
    "exclude",
    "metaplasia_NOS",
    "fat",
    "plasma_cells",
    "other_immune_infiltrate",
    "mucoid_material",
    "normal_acinus_or_duct",
    "lymphatics",
    "undetermined",
    "nerve",
    "skin_adnexa",
    "blood_vessel",
    "angioinvasion",
    "dcis",
    "other",
]


def bcss_tsv(path: Path, codes: list[str] = BCSS_CODES) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("label\tGT_code\r\n" + "".join(f"{n}\t{i}\r\n" for i, n in enumerate(codes))).encode())


def make_bcss(root: Path) -> dict[str, Expected]:
    """BCSS (Drive copy): `rgbs_colorNormalized/` + `masks/` code PNGs; meta/gtruth_codes.tsv (CRLF)."""
    base = root / "0_Public-data-Amgad2019_0.25MPP"
    bcss_tsv(root / "meta" / "gtruth_codes.tsv")
    out = {}
    slides = ["A1-A0SK", "A2-A0CM", "AR-A1AR", "BH-A18V", "C8-A12T", "D8-A1JF", "OL-A66I", "E2-A14N"]
    for i, slide in enumerate(slides):
        name = f"TCGA-{slide}-DX1_xmin{100 * i}_ymin{50 * i}_MPP-0.2500"
        image = rgb(300 + i)
        codes = np.random.default_rng(300 + i).integers(0, 22, size=(H, W)).astype(np.uint8)
        save(base / "rgbs_colorNormalized" / f"{name}.png", image)
        save(base / "masks" / f"{name}.png", codes)
        mask = np.where(codes == 0, 255, codes).astype(np.uint8)
        out[name] = expect(image, mask, None, "test" if slide[:2] in ("OL", "E2") else "train", f"TCGA-{slide}-DX1")
    return out


def make_cosas24(root: Path) -> dict[str, Expected]:
    """COSAS24 training set: task/domain/{image,mask}; masks 0/1 (task1) and 3-channel 0/255 (task2)."""
    base = root / "COSAS24-TrainingSet"
    out = {}
    for i, (task, domain) in enumerate(
        [("task1", "colorectum")] * 3 + [("task1", "stomach")] + [("task2", "kfbio-400")] * 3
    ):
        name = f"{i:02d}ab{i:02d}cd{i:02d}ef"
        image, fg = rgb(400 + i), blobs(400 + i, 2) > 0
        save(base / task / domain / "image" / f"{name}.png", image)
        if task == "task1":
            save(base / task / domain / "mask" / f"{name}.png", fg.astype(np.uint8))
        else:
            save(base / task / domain / "mask" / f"{name}.png", np.repeat(fg[..., None] * np.uint8(255), 3, axis=2))
        out[f"{task}_{domain}_{name}"] = expect(image, fg.astype(np.uint8))
    return out


EBHI_CATEGORIES = ["Adenocarcinoma", "High-grade IN", "Low-grade IN", "Normal", "Polyp", "Serrated adenoma"]


def make_ebhi(root: Path) -> dict[str, Expected]:
    """EBHI-SEG: category folders with spaces; greyscale labels with anti-aliased grey edges; one
    Low-grade IN image without a label (left out and reported)."""
    base = root / "EBHI-SEG"
    out = {}
    for c, category in enumerate(EBHI_CATEGORIES):
        for k in range(1 + (c < 2)):
            name = f"GT{2001000 + 10 * c + k}-1-400-00{k + 1}"
            image, fg = rgb(500 + 10 * c + k), blobs(500 + 10 * c + k, 2) > 0
            label = np.where(fg, 255, 0).astype(np.uint8)
            edge = np.zeros_like(fg)
            edge[:, :-1] = fg[:, :-1] != fg[:, 1:]
            label[edge & ~fg] = 90  # grey edge outside the region -> background
            label[edge & fg] = 200  # grey edge inside -> foreground
            save(base / category / "image" / f"{name}.png", image)
            save(base / category / "label" / f"{name}.png", label)
            out[f"{category}/{name}"] = expect(image, (fg * (c + 1)).astype(np.uint8), None, None, name.split("-")[0])
    save(base / "Low-grade IN" / "image" / "GT2012149-2-400-001.png", rgb(599))
    litter(root, "GT2001000-1-400-001.png")
    return out


WSSS_PALETTE = [(0, 64, 128), (64, 128, 0), (243, 152, 0), (255, 255, 255)]  # TE, TAS, NOR, background


def make_wsss4luad(root: Path) -> dict[str, Expected]:
    """WSSS4LUAD: doubled `2.validation/2.validation/` folders, palette masks, background-mask;
    `1.training` (image-level labels only) must not be read. One mask uses a reordered palette: the
    class follows the colour, not the palette index."""
    out = {}
    for part, folder, n in (("validation", "2.validation", 3), ("testing", "3.testing", 5)):
        for k in range(n):
            i = len(out)
            base = root / folder / folder
            image = rgb(600 + i)
            idx = np.random.default_rng(600 + i).integers(0, 4, size=(H, W)).astype(np.uint8)
            palette = WSSS_PALETTE
            if i == 2:
                palette = WSSS_PALETTE[::-1]
            save(base / "img" / f"{k:02d}.png", image)
            save_palette(base / "mask" / f"{k:02d}.png", idx, palette)
            colours = np.asarray(palette)[idx]
            cls = {(0, 64, 128): 1, (64, 128, 0): 2, (243, 152, 0): 3, (255, 255, 255): 255}
            mask = np.vectorize(lambda r, g, b: cls[(r, g, b)], otypes=[np.uint8])(*np.moveaxis(colours, 2, 0))
            save_palette(
                base / "background-mask" / f"{k:02d}.png", (mask == 255).astype(np.uint8), [(0, 0, 0), (255, 255, 255)]
            )
            out[f"{part}_{k:02d}"] = expect(image, mask, None, "val" if part == "validation" else "test")
    save(root / "1.training" / "436219-7159-48057-[1, 0, 0].png", rgb(699))
    litter(root, "00.png")
    return out


def make_janowczyk(root: Path) -> dict[str, Expected]:
    """Janowczyk nuclei: flat `<patient>_500_f<n>_original.tif` (deflate TIFF) + `_mask.png` (0/255)."""
    import tifffile

    base = root / "nuclei"
    base.mkdir(parents=True)
    out = {}
    for i in range(8):
        patient = str(12700 + i % 6)
        stem = f"{patient}_500_f{i:05d}"
        image, fg = rgb(700 + i), blobs(700 + i, 3) > 0
        tifffile.imwrite(base / f"{stem}_original.tif", image, compression="zlib" if i % 2 else None)
        save(base / f"{stem}_mask.png", fg.astype(np.uint8) * 255)
        out[stem] = expect(image, fg.astype(np.uint8), None, None, patient)
    return out


def make_cocahis(root: Path) -> dict[str, Expected]:
    """CoCaHis.hdf5: HE/raw, HE/sn1, GT/GT_majority_vote, GT/GT1; per-image attributes on HE."""
    import h5py

    n = 9
    images = np.stack([rgb(800 + i) for i in range(n)])
    gts = np.stack([blobs(800 + i, 2) > 0 for i in range(n)]).astype(np.uint8)
    splits = ["train"] * 6 + ["test"] * 3
    patients = ["1", "2", "3", "4", "5", "6", "7", "7", "8"]
    (root / "cocahis").mkdir(parents=True)
    with h5py.File(root / "cocahis" / "CoCaHis.hdf5", "w") as f:
        f.create_dataset("HE/raw", data=images)
        f.create_dataset("HE/sn1", data=images[..., ::-1])
        f.create_dataset("GT/GT_majority_vote", data=gts)
        f.create_dataset("GT/GT1", data=1 - gts)
        f["HE"].attrs["train_test_split"] = np.array(splits, dtype="S")
        f["HE"].attrs["patient_num"] = np.array(patients, dtype="S")
        f["HE"].attrs["image_num"] = np.arange(n)
    return {f"sample_{i:04d}": expect(images[i], gts[i], None, splits[i], patients[i]) for i in range(n)}


# ---- generic types -------------------------------------------------------------------------------
def make_folder(root: Path, splits: bool = False) -> dict[str, Expected]:
    """images/ + masks/ with the same relative names (optionally train/val/test subfolders)."""
    out = {}
    for i in range(8):
        sub = ("train/" if i < 5 else "val/" if i < 6 else "test/") if splits else ""
        key = f"{sub}case_{i}"
        image, mask = rgb(900 + i), (blobs(900 + i, 2) > 0).astype(np.uint8)
        save(root / "images" / f"{key}.png", image)
        save(root / "masks" / f"{key}.png", mask)
        out[key] = expect(image, mask, None, sub.rstrip("/") or None)
    return out


def make_json_list(root: Path) -> tuple[Path, dict[str, Expected]]:
    """The paper's dataset JSON: relative paths (and one absolute), 3 classes, palette mask values = ids."""
    import json

    out, data = {}, {"train": [], "val": [], "test": []}
    for i in range(7):
        split = "train" if i < 4 else "val" if i < 6 else "test"
        image, mask = rgb(950 + i), (blobs(950 + i, 2) % 3).astype(np.uint8)
        mask[0, 0] = 255
        img_path = save(root / "Data" / "images" / f"img_{i}.png", image)
        save_palette(root / "Data" / "masks" / f"img_{i}.png", mask, [(i, i, i) for i in range(256)])
        image_path = str(img_path) if i == 0 else f"Data/images/img_{i}.png"
        data[split].append({"image_path": image_path, "mask_path": f"Data/masks/img_{i}.png"})
        out[f"img_{i}"] = expect(image, mask, None, split)
    path = root / "dataset.json"
    path.write_text(json.dumps({"num_classes": 3, "data": data}))
    return path, out


MAKERS = {
    "glas": make_glas,
    "crag": make_crag,
    "rings": make_rings,
    "bcss": make_bcss,
    "cosas24": make_cosas24,
    "ebhi": make_ebhi,
    "wsss4luad": make_wsss4luad,
    "janowczyk": make_janowczyk,
    "cocahis": make_cocahis,
    "folder": make_folder,
}


def make(name: str, root: Path) -> tuple[Path, dict[str, Expected]]:
    """(dataset.root to pass, expected samples) for any of the gland/tissue/generic configs."""
    if name == "json_list":
        return make_json_list(root)
    return root, MAKERS[name](root)
