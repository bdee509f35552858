"""Joining config names, published keys and display names through configs/ (read as plain YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest

from densebench.names import Catalog, parse_count


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "model").mkdir()
    (tmp_path / "dataset").mkdir()
    (tmp_path / "adapter").mkdir()
    (tmp_path / "model" / "uni.yaml").write_text(
        "name: uni\ndisplay_name: UNI\npublished_key: uni_v1\npublished_params: 303350784\n"
    )
    (tmp_path / "dataset" / "glas.yaml").write_text(
        "# @package _global_\ndataset:\n  name: glas\n  display_name: GlaS\n  published_key: GlaS\n  level: gland\n"
    )
    (tmp_path / "dataset" / "mynuclei.yaml").write_text(
        "# @package _global_\ndataset:\n  name: mynuclei\n  level: nuclei\n"
    )
    (tmp_path / "adapter" / "cnn.yaml").write_text("name: cnn\ndisplay_name: CNN Adapter\n")
    return Catalog.load(tmp_path)


def test_published_keys_map_to_config_names_and_back(catalog: Catalog) -> None:
    assert catalog.from_published("model", "uni_v1") == "uni"
    assert catalog.from_published("dataset", "GlaS") == "glas"
    assert catalog.published_key("model", "uni") == "uni_v1"


def test_names_without_a_config_stay_as_they_are(catalog: Catalog) -> None:
    assert catalog.from_published("model", "musk") == "musk"
    assert catalog.display("model", "musk") == "musk"
    assert catalog.published_key("strategy", "lora") == "lora"


def test_display_names_come_from_configs_then_from_runs(catalog: Catalog) -> None:
    assert catalog.display("strategy", "cnn") == "CNN Adapter"
    catalog.learn("model", "mine", "My ViT", "my_vit_v1")
    assert catalog.display("model", "mine") == "My ViT"
    assert catalog.from_published("model", "my_vit_v1") == "mine"


def test_categories_follow_the_paper_website_then_the_config_level(catalog: Catalog) -> None:
    assert catalog.category("glas") == "Gland"
    assert catalog.category("Janowczyk") == "Tissue"  # the website's grouping, although its data is nuclei
    assert catalog.category("mynuclei") == "Nuclear"
    assert catalog.category("synthetic_thing") == "Other"


@pytest.mark.parametrize(
    "value, expected",
    [
        (303350784, 303350784.0),
        ("303M", 303e6),
        ("1.1B", 1.1e9),
        ({"value": 86e6, "source": "paper"}, 86e6),
        (None, None),
        ("many", None),
    ],
)
def test_parameter_counts_are_read_from_numbers_suffixes_or_mappings(value, expected) -> None:
    assert parse_count(value) == expected


def test_published_params_come_from_the_model_config(catalog: Catalog) -> None:
    assert catalog.published_params("uni") == 303350784.0
    assert catalog.published_params("musk") is None
