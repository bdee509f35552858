"""The nine nuclei dataset configs are complete and consistent with the published benchmark."""

from __future__ import annotations

import json

import pytest

from densebench.data import SOURCES
from tests.data.fixtures_nuclei import MAKERS, SHARED, dataset_cfg

NAMES = sorted(MAKERS)


# Classes, colours, ignore label and format of every dataset config: tests/data/test_contract.py.
@pytest.mark.parametrize("name", NAMES)
def test_every_class_mode_maps_the_release_codes_to_its_classes(name):
    for mode in dataset_cfg(name).class_modes:
        cfg = dataset_cfg(name, class_mode=mode)
        assert set(cfg.codes.values()) <= {*range(len(cfg.classes)), cfg.ignore_index}, mode


@pytest.mark.parametrize("name", NAMES)
def test_default_mode_has_background_as_class_zero(name):
    assert dataset_cfg(name).classes[0] == "background"


@pytest.mark.parametrize("name", NAMES)
def test_config_names_the_nuclear_category_and_registered_release_formats(name):
    cfg = dataset_cfg(name)
    assert (cfg.level, cfg.category) == ("nuclei", "Nuclear")
    for release in (cfg.get("releases") or {}).values():
        assert release.format in SOURCES


@pytest.mark.parametrize("name", NAMES)
def test_paper_input_size_is_the_largest_patch_multiple_under_the_shorter_side(name):
    cfg = dataset_cfg(name)
    for patch in (14, 16):
        assert cfg.paper_input_size[f"p{patch}"] == min(cfg.min_side, 999) // patch * patch  # the paper caps at 994/992


@pytest.mark.parametrize("name", NAMES)
def test_published_key_exists_in_the_published_results(name):
    published = SHARED / "published" / "pfm-densebench" / "frozen.json"
    if not published.is_file():
        pytest.skip(f"../shared/published not present: {published}")
    assert dataset_cfg(name).published_key in json.loads(published.read_text())
