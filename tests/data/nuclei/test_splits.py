"""The nuclei configs choose the right split protocol: official where the release has one, grouped by
patient (slide, source image) where it has not."""

from __future__ import annotations

from densebench.data.splits import make_splits
from tests.data.fixtures_nuclei import build, dataset_cfg, make_conic, make_consep, make_lizard, make_pannuke, make_tnbc


def _groups(parts):
    return {name: {s.group for s in part} for name, part in parts.items()}


def test_consep_official_split_keeps_the_release_test_set(tmp_path):
    make_consep(tmp_path)
    parts = make_splits(build("consep", tmp_path).samples(), dataset_cfg("consep", tmp_path, val_fraction=0.34), seed=0)
    assert sorted(s.key for s in parts["test"]) == ["test_1", "test_2"]
    assert all(s.key.startswith("train_") for s in parts["train"] + parts["val"])


def test_folds_become_train_val_test_for_pannuke_and_lizard(tmp_path):
    make_pannuke(tmp_path / "p")
    make_lizard(tmp_path / "l")
    for name, root in (("pannuke", tmp_path / "p"), ("lizard", tmp_path / "l")):
        parts = make_splits(build(name, root).samples(), dataset_cfg(name, root), seed=0)
        assert all(len(parts[k]) == 2 for k in ("train", "val", "test")), name


def test_tnbc_grouped_split_never_puts_one_patient_in_two_splits(tmp_path):
    make_tnbc(tmp_path)
    cfg = dataset_cfg("tnbc", tmp_path, fractions=[0.34, 0.34, 0.32])
    groups = _groups(make_splits(build("tnbc", tmp_path).samples(), cfg, seed=3))
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])


def test_conic_grouped_split_keeps_patches_of_one_image_together(tmp_path):
    make_conic(tmp_path)
    cfg = dataset_cfg("conic2022", tmp_path, fractions=[0.5, 0.25, 0.25])
    groups = _groups(make_splits(build("conic2022", tmp_path).samples(), cfg, seed=1))
    assert sum(len(g) for g in groups.values()) == len(set().union(*groups.values())) == 4
