"""What a report row is about: typed, default-free, order-free settings split into model entry, dataset,
protocol and ablation axes (report/identity.py), and one leaderboard per protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from densebench.config import config_dir
from densebench.report.analysis import aggregate
from densebench.report.build import Options, build_report
from densebench.report.load import load_runs
from densebench.names import Catalog

MODELS = ("uni", "virchow2", "gigapath", "hoptimus0")  # real configs: defaults are composed from them
DICE = {"uni": 0.80, "virchow2": 0.78, "gigapath": 0.75, "hoptimus0": 0.70}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(config_dir())


def _mixed_sweep(root: Path, write_run: Callable[..., Path], epochs: dict[str, int] | None = None) -> None:
    """4 backbones × 2 datasets × 2 strategies, `model.pretrained` spelt `false` (single runs) or `False`
    (as Hydra stores a sweep's), overrides in either order, `adapter.rank=16` (LoRA's default) on some."""
    for i, model in enumerate(MODELS):
        for d, dataset in enumerate(("glas", "crag")):
            for s, adapter in enumerate(("frozen", "lora")):
                spelling = "false" if (i + d + s) % 2 else "False"
                overrides = [f"model.pretrained={spelling}", "dataset.min_side=96"]
                if adapter == "lora" and i % 2:
                    overrides.append("adapter.rank=16")
                if (i + d) % 2:
                    overrides.reverse()
                settings = {"model.pretrained": False, "dataset.min_side": 96}
                if epochs:
                    overrides.append(f"train.epochs={epochs[model]}")
                    settings["train.epochs"] = epochs[model]
                write_run(
                    root,
                    dataset,
                    model,
                    adapter,
                    0,
                    DICE[model] - 0.01 * d - 0.02 * s + 0.001 * i,
                    overrides=overrides,
                    settings=settings,
                    rank=16 if adapter == "lora" else None,
                )


def test_mixed_spellings_give_one_leaderboard_row_per_backbone_and_a_friedman_test(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    _mixed_sweep(tmp_path / "outputs", write_run)
    report = build_report(load_runs([tmp_path / "outputs"], catalog), catalog, Options(plots=False), tmp_path / "r")
    ranks = report.document["model_ranks"]["runs"]
    assert sorted(r["model"] for r in ranks) == sorted(MODELS)
    assert report.document["statistics"]["runs"]["models"]["status"] == "done"
    assert report.document["statistics"]["runs"]["models"]["n_blocks"] == 4


def test_a_setting_equal_to_its_default_does_not_count(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    root = tmp_path / "outputs"
    write_run(
        root, "glas", "uni", "lora", 0, 0.8, rank=16, overrides=["adapter.rank=16"], settings={"adapter.rank": 16}
    )
    write_run(root, "glas", "uni", "lora", 1, 0.7, rank=16)
    values = load_runs([root], catalog).values
    assert set(values["axes"]) == {""} and set(values["variant"]) == {""}
    assert aggregate(values, catalog).query("metric == 'Mean_Dice'")["n"].tolist() == [2]


def test_settings_are_split_into_model_dataset_protocol_and_axes(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    root = tmp_path / "outputs"
    write_run(root, "glas", "uni", "lora", 0, 0.8, rank=16)
    write_run(root, "glas", "uni", "lora", 0, 0.7, rank=4, overrides=["adapter.rank=4"], settings={"adapter.rank": 4})
    write_run(
        root, "glas", "uni", "lora", 0, 0.6, overrides=["model.pretrained=false"], settings={"model.pretrained": False}
    )
    write_run(root, "glas", "uni", "lora", 0, 0.5, overrides=["train.epochs=3"], settings={"train.epochs": 3})
    write_run(root, "glas", "uni", "lora", 0, 0.4, overrides=["dataset.min_side=96"], settings={"dataset.min_side": 96})
    rows = load_runs([root], catalog).values.query("metric == 'Mean_Dice'").set_index("value")
    assert rows.loc[0.7, "axes"] == "adapter.rank=4" and rows.loc[0.7, "variant"] == ""
    assert rows.loc[0.6, "variant"] == "model.pretrained=false"
    assert rows.loc[0.5, "protocol"] == "train.epochs=3" and rows.loc[0.5, "variant"] == ""
    assert rows.loc[0.4, "dataset"] == "glas [dataset.min_side=96]"
    assert rows.loc[0.8, ["variant", "protocol", "axes", "dataset"]].tolist() == ["", "", "", "glas"]


def test_each_protocol_gets_its_own_leaderboard_and_a_note(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    _mixed_sweep(tmp_path / "outputs", write_run, epochs={"uni": 3, "virchow2": 3, "gigapath": 3, "hoptimus0": 2})
    report = build_report(load_runs([tmp_path / "outputs"], catalog), catalog, Options(plots=False), tmp_path / "r")
    ranks = report.document["model_ranks"]
    assert sorted(r["model"] for r in ranks["runs"]) == ["gigapath", "uni", "virchow2"]
    assert [r["model"] for r in ranks["runs_p2"]] == ["hoptimus0"]
    assert report.document["protocols"] == {"runs": "train.epochs=3", "runs_p2": "train.epochs=2"}
    assert any("never ranked together" in n and "train.epochs=2 (4 runs)" in n for n in report.notes)


def test_a_statistic_that_cannot_be_made_says_why(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    root = tmp_path / "outputs"
    write_run(root, "glas", "uni", "frozen", 0, 0.8)
    write_run(root, "glas", "virchow2", "frozen", 0, 0.7)
    report = build_report(load_runs([root], catalog), catalog, Options(), tmp_path / "r")
    assert any(n.startswith("Friedman test 'models' (runs) not run: needs ≥3 treatments") for n in report.notes)
    assert any(n.startswith("Figure 'Mean_Dice vs backbone parameters (runs)' not drawn") for n in report.notes)
    assert any(n.startswith("Figure 'Mean_Dice vs adapter rank (runs)' not drawn") for n in report.notes)


def test_without_configs_overrides_are_compared_as_typed_values(tmp_path: Path, write_run: Callable[..., Path]) -> None:
    root = tmp_path / "outputs"
    for i, model in enumerate(("a", "b", "c")):  # no config describes these models: overrides are parsed
        for d, dataset in enumerate(("glas", "crag")):
            spelling = ("false", "False")[(i + d) % 2]
            write_run(root, dataset, model, "frozen", 0, 0.8 - 0.1 * i, overrides=[f"model.pretrained={spelling}"])
    catalog = Catalog()
    report = build_report(load_runs([root], catalog), catalog, Options(plots=False), tmp_path / "r")
    assert [r["model"] for r in report.document["model_ranks"]["runs"]] == ["a", "b", "c"]


def test_a_group_choice_equal_to_the_default_does_not_count(
    tmp_path: Path, write_run: Callable[..., Path], catalog: Catalog
) -> None:
    root = tmp_path / "outputs"
    write_run(root, "glas", "uni", "frozen", 0, 0.8, overrides=["train=paper"])
    write_run(root, "glas", "virchow2", "frozen", 0, 0.7)
    values = load_runs([root], catalog).values
    assert set(values["protocol"]) == {""}
