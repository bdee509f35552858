"""Dataset files: a damaged, mismatched or missing file ends the run with one line naming it (the
first is found while listing or at its first decode); unusual but valid inputs train."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reliability.cases import Case, line
from tests.reliability.conftest import (
    MODEL,
    assert_one_line_error,
    cli,
    folder_run,
    make_folder,
    save,
)

T0 = "train/t0.png"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _break(sub: str, how: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda root: how(root / sub / T0)


MUTATIONS: dict[str, Callable[[Path], None]] = {
    "zero-byte-image": _break("images", lambda p: p.write_bytes(b"")),
    "truncated-image": _break("images", _truncate),
    "garbage-image": _break("images", lambda p: p.write_bytes(b"\x89PNG not really" * 50)),
    "zero-byte-mask": _break("masks", lambda p: p.write_bytes(b"")),
    "truncated-mask": _break("masks", _truncate),
    "mask-size-mismatch": _break("masks", lambda p: save(p, np.zeros((40, 48), np.uint8))),
    "label-outside-classes": _break("masks", lambda p: save(p, np.full((48, 48), 7, np.uint8))),
    "16-bit-image": _break("images", lambda p: Image.fromarray(np.full((48, 48), 300, np.uint16)).save(p)),
    "16-bit-mask-values": _break("masks", lambda p: Image.fromarray(np.full((48, 48), 300, np.uint16)).save(p)),
    "rgb-mask-with-colours": _break(
        "masks",
        lambda p: save(
            p, np.dstack([np.zeros((48, 48), np.uint8), np.ones((48, 48), np.uint8), np.zeros((48, 48), np.uint8)])
        ),
    ),
    "image-without-mask": _break("masks", lambda p: p.unlink()),
    "two-images-one-key": lambda root: save(root / "images" / "train" / "t0.jpg", np.zeros((48, 48, 3), np.uint8)),
    "empty-split": lambda root: [p.unlink() for p in (root / "images" / "test").iterdir()],
}


def _case(id_: str, given: str, *needles: str) -> Case:
    return Case(id_, "dataset files", given, line(*needles), needles)


CASES = [
    _case("zero-byte-image", "a zero-byte training image", "t0.png", "cannot decode"),
    _case("truncated-image", "a truncated PNG image", "t0.png", "truncated"),
    _case("garbage-image", "an image file of random bytes", "t0.png", "cannot decode"),
    _case("zero-byte-mask", "a zero-byte mask", "t0.png", "cannot decode"),
    _case("truncated-mask", "a truncated mask", "t0.png", "truncated"),
    _case("mask-size-mismatch", "a mask 48x40 for a 48x48 image", "t0.png", "differs from its image"),
    _case("label-outside-classes", "mask value 7 with 2 classes", "t0.png", "outside classes 0..1", "dataset.classes"),
    _case("16-bit-image", "a 16-bit image", "t0.png", "8 bits per channel"),
    _case("16-bit-mask-values", "a 16-bit mask holding 300", "t0.png", "300"),
    _case("rgb-mask-with-colours", "an RGB mask whose channels differ", "t0.png", "single-channel"),
    _case("image-without-mask", "an image without its mask", "t0.png", "restore the mask or remove the image"),
    Case(
        "mask-without-image",
        "dataset files",
        "a mask without its image",
        "skipped, not fatal: the run's data facts (metrics.json `data.excluded`, the log) name the mask",
    ),
    _case("two-images-one-key", "t0.png and t0.jpg for one mask", "t0", "both have key"),
    _case("empty-split", "a split folder left empty", "test split is empty"),
    Case(
        "valid-oddities",
        "dataset files",
        "RGBA and greyscale images, a palette mask, odd file names "
        "(spaces, brackets, unicode, a leading dash) and an image smaller than one window",
        "accepted: each decodes to RGB uint8 and class ids",
    ),
    _case("root-missing", "`dataset.root` that does not exist", "dataset.root=", "is not a directory"),
    _case("root-not-set", "`dataset=folder` without `dataset.root`", "dataset.root=PATH"),
    _case("root-is-a-file", "`dataset.root` naming a file", "dataset.root=", "is not a directory"),
    _case("root-empty", "an empty `dataset.root`", "no"),
    _case("json-list-truncated", "`dataset=json_list` with a truncated JSON file", "dataset.json"),
    _case("json-list-missing-mask", "a JSON list entry whose mask is missing", "nope.png"),
    _case("hdf5-garbage", "`dataset=cocahis` with a broken HDF5 file", "CoCaHis.hdf5"),
    _case("npy-truncated", "`dataset=pannuke` with a truncated images.npy", "images.npy"),
]
BY_ID = {c.id: c for c in CASES}


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("clean") / "d")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_damaged_or_mismatched_file_is_one_line_naming_it(name, clean_folder, tmp_path, capsys):
    root = _copy(clean_folder, tmp_path / "d")
    MUTATIONS[name](root)
    code, _, err = cli(capsys, "run", *folder_run(root, tmp_path / "out"))
    assert_one_line_error(code, err, *BY_ID[name].needles)
    assert not list((tmp_path / "out").rglob("metrics.json"))


@pytest.mark.parametrize("name", ["root-missing", "root-not-set", "root-is-a-file", "root-empty"])
def test_a_missing_or_empty_root_is_one_line(name, tmp_path, capsys):
    overrides = folder_run(tmp_path / "absent", tmp_path / "out")
    if name == "root-not-set":
        overrides = [o for o in overrides if not o.startswith("dataset.root=")]
    elif name == "root-is-a-file":
        (tmp_path / "file.txt").write_text("x")
        overrides = [
            o if not o.startswith("dataset.root=") else f"dataset.root={tmp_path / 'file.txt'}" for o in overrides
        ]
    elif name == "root-empty":
        (tmp_path / "empty").mkdir()
        overrides = [
            o if not o.startswith("dataset.root=") else f"dataset.root={tmp_path / 'empty'}" for o in overrides
        ]
    code, _, err = cli(capsys, "run", *overrides)
    assert_one_line_error(code, err, *BY_ID[name].needles)


def _json_list(root: Path, clean: Path) -> Path:
    entries = {
        s: [
            {"image_path": str(p), "mask_path": str(clean / "masks" / s / p.name)}
            for p in sorted((clean / "images" / s).glob("*.png"))
        ]
        for s in ("train", "val", "test")
    }
    path = root / "dataset.json"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"num_classes": 2, "data": entries}))
    return path


def _run_json_list(path, tmp_path, capsys):
    return cli(
        capsys,
        "run",
        *MODEL,
        "dataset=json_list",
        f"dataset.root={path}",
        "dataset.min_side=48",
        f"output_dir={tmp_path / 'out'}",
    )


def test_a_truncated_json_list_is_one_line_naming_it(clean_folder, tmp_path, capsys):
    path = _json_list(tmp_path / "j", clean_folder)
    _truncate(path)
    code, _, err = _run_json_list(path, tmp_path, capsys)
    assert_one_line_error(code, err, *BY_ID["json-list-truncated"].needles)


def test_a_json_list_entry_without_its_mask_is_one_line_naming_it(clean_folder, tmp_path, capsys):
    path = _json_list(tmp_path / "j", clean_folder)
    data = json.loads(path.read_text())
    data["data"]["train"][0]["mask_path"] = str(tmp_path / "nope.png")
    path.write_text(json.dumps(data))
    code, _, err = _run_json_list(path, tmp_path, capsys)
    assert_one_line_error(code, err, *BY_ID["json-list-missing-mask"].needles)


def test_a_broken_hdf5_release_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "CoCaHis.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    code, _, err = cli(
        capsys, "run", *MODEL, "dataset=cocahis", f"dataset.root={tmp_path / 'r'}", f"output_dir={tmp_path / 'out'}"
    )
    assert_one_line_error(code, err, *BY_ID["hdf5-garbage"].needles)


def test_a_truncated_npy_release_is_one_line_naming_it(tmp_path, capsys):
    for fold in (1, 2, 3):
        d = tmp_path / "r" / f"Fold {fold}"
        d.mkdir(parents=True)
        np.save(d / "images.npy", np.zeros((2, 32, 32, 3), np.float64))
        np.save(d / "masks.npy", np.zeros((2, 32, 32, 6), np.float64))
        np.save(d / "types.npy", np.array(["Breast", "Colon"]))
    _truncate(tmp_path / "r" / "Fold 1" / "images.npy")
    code, _, err = cli(
        capsys, "run", *MODEL, "dataset=pannuke", f"dataset.root={tmp_path / 'r'}", f"output_dir={tmp_path / 'out'}"
    )
    assert_one_line_error(code, err, *BY_ID["npy-truncated"].needles)


def test_a_mask_without_its_image_is_left_out_and_named(clean_folder, tmp_path, caplog):
    from densebench.config import compose
    from densebench.engine.setup import load_splits

    root = _copy(clean_folder, tmp_path / "d")
    (root / "images" / T0).unlink()
    facts = load_splits(compose(folder_run(root, tmp_path / "out"))).facts()
    assert facts["excluded"] == [{"file": "masks/train/t0.png", "reason": "masks/ file without an image"}]
    assert facts["sizes"]["train"] == 5 and "masks/train/t0.png" in caplog.text


ODD_NAMES = ["a b (1).png", "ünï-cödé.png", "-dash.png", "dots.in.name.png"]


def test_rgba_grey_palette_odd_names_and_small_images_decode_to_rgb_and_class_ids(clean_folder, tmp_path):
    """Valid inputs that differ from the usual: RGBA and greyscale images, a palette mask, odd file
    names and an image smaller than one window are read as RGB uint8 and class ids (not an error)."""
    from densebench.config import compose
    from densebench.engine.setup import load_splits

    root = _copy(clean_folder, tmp_path / "d")
    rng = np.random.default_rng(1)
    images = {
        ODD_NAMES[0]: np.dstack([rng.integers(0, 255, (48, 48, 3)), np.full((48, 48), 128)]).astype(np.uint8),  # RGBA
        ODD_NAMES[1]: rng.integers(0, 255, (48, 48)).astype(np.uint8),  # greyscale
        ODD_NAMES[2]: rng.integers(0, 255, (48, 48, 3)).astype(np.uint8),
        ODD_NAMES[3]: rng.integers(0, 255, (20, 24, 3)).astype(np.uint8),  # smaller than the 48 px window
    }
    for name, image in images.items():
        save(root / "images" / "train" / name, image)
        mask = Image.fromarray((rng.random(image.shape[:2]) > 0.5).astype(np.uint8), mode="L").convert("P")
        mask.save(root / "masks" / "train" / name)  # a palette PNG: indices are class ids
    data = load_splits(compose(folder_run(root, tmp_path / "out")))
    by_name = {Path(s.paths[0]).name: s for s in data.splits["train"]}
    for name, image in images.items():
        record = data.source.load(by_name[name])
        assert record.image.dtype == np.uint8 and record.image.shape == (*image.shape[:2], 3)
        assert set(np.unique(record.mask)) <= {0, 1}
    assert np.array_equal(data.source.load(by_name[ODD_NAMES[1]]).image[..., 2], images[ODD_NAMES[1]])
