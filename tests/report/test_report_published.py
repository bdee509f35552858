"""The report of the published PFM-DenseBench results reproduces the paper website's figures.

Expected values are computed here independently from the same JSONs, and checked against the figures
quoted in ../shared/reference/models-and-protocol.md §10 (the website's stats.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from densebench.config import config_dir
from densebench.report.build import Options, Report, build_report
from densebench.report.load import Results, load_published
from densebench.names import PAPER_CATEGORIES, Catalog

PUBLISHED = Path(__file__).resolve().parents[2] / ".." / "shared" / "published" / "pfm-densebench"
STRATEGIES = ("frozen", "lora", "dora", "cnn", "transformer")


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    """(strategy, dataset, model) → Mean_Dice bootstrap mean, read straight from the JSONs by published keys."""
    if not PUBLISHED.is_dir():
        pytest.skip(f"../shared/published/pfm-densebench not present: {PUBLISHED}")
    rows = [
        (s, d, m, metrics["Mean_Dice"]["mean"], metrics)
        for s in STRATEGIES
        for d, models in json.loads((PUBLISHED / f"{s}.json").read_text()).items()
        for m, metrics in models.items()
    ]
    return pd.DataFrame(rows, columns=["strategy", "dataset", "model", "dice", "metrics"])


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(config_dir())


@pytest.fixture(scope="module")
def report(published: pd.DataFrame, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Report:
    results = Results.empty().with_values(load_published(PUBLISHED, catalog))
    return build_report(results, catalog, Options(plots=False), tmp_path_factory.mktemp("published"))


def _key(catalog: Catalog, kind: str, name: str) -> str:
    return catalog.published_key(kind, name)


def test_all_1530_published_runs_are_read(report: Report) -> None:
    assert report.document["counts"]["published"] == {
        "results": 1530,
        "cells": 1530,
        "datasets": 18,
        "models": 17,
        "strategies": 5,
    }
    assert report.document["missing_cells"]["published"] == []


def test_average_ranks_match_an_independent_computation_and_the_website(
    report: Report, published: pd.DataFrame, catalog: Catalog
) -> None:
    ranks = published.assign(rank=published.groupby(["strategy", "dataset"])["dice"].rank(ascending=False))
    expected = ranks.groupby("model")["rank"].mean().sort_values()
    got = [
        (_key(catalog, "model", r["model"]), r["avg_rank"], r["n_cells"])
        for r in report.document["model_ranks"]["published"]
    ]
    assert [m for m, _, _ in got] == list(expected.index)
    assert [r for _, r, _ in got] == pytest.approx(expected.tolist())
    assert {n for _, _, n in got} == {90}
    # §10: hoptimus_0 4.078 first, hoptimus_1 4.356 second, uni_v2 5.033 third ... musk 16.211 last
    assert [(m, round(r, 3)) for m, r, _ in got[:3]] == [
        ("hoptimus_0", 4.078),
        ("hoptimus_1", 4.356),
        ("uni_v2", 5.033),
    ]
    assert (got[-1][0], round(got[-1][1], 3)) == ("musk", 16.211)


def test_category_ranks_match_the_website_leaderboard(report: Report, catalog: Catalog) -> None:
    by_model = {
        _key(catalog, "model", r["model"]): r["by_category"] for r in report.document["model_ranks"]["published"]
    }
    # §10 table: Nuclear / Gland / Tissue columns
    assert {c: round(v, 2) for c, v in by_model["hoptimus_0"].items()} == {
        "Nuclear": 3.04,
        "Gland": 4.73,
        "Tissue": 5.30,
    }
    assert {c: round(v, 2) for c, v in by_model["lunit_vits8"].items()} == {
        "Nuclear": 4.91,
        "Gland": 14.60,
        "Tissue": 8.47,
    }
    assert {c: round(v, 2) for c, v in by_model["musk"].items()} == {"Nuclear": 16.31, "Gland": 16.80, "Tissue": 15.77}
    categories = report.document["categories"]
    counts = pd.Series([categories[d] for d in categories]).value_counts().to_dict()
    assert counts == {c: len(keys) for c, keys in PAPER_CATEGORIES.items()}


def test_strategy_means_match_an_independent_computation_and_the_paper(
    report: Report, published: pd.DataFrame, catalog: Catalog
) -> None:
    means = report.document["strategy_summary"]["published"]["means"]
    by_key = {_key(catalog, "strategy", s): v for s, v in means.items()}
    expected = published.groupby("strategy")["dice"].mean()
    for strategy in STRATEGIES:
        assert by_key[strategy]["Mean_Dice"] == pytest.approx(expected[strategy])
        assert by_key[strategy]["n_cells"] == 306
    paper = {
        "frozen": (0.6590, 0.5674, 0.8628, 0.7247),
        "lora": (0.6692, 0.5794, 0.8683, 0.7372),
        "dora": (0.6733, 0.5838, 0.8705, 0.7395),
        "cnn": (0.7010, 0.6133, 0.8860, 0.7604),
        "transformer": (0.6573, 0.5668, 0.8629, 0.7265),
    }
    for strategy, values in paper.items():
        got = [by_key[strategy][m] for m in ("Mean_Dice", "mIoU", "Pixel_Accuracy", "Mean_F1")]
        assert got == pytest.approx(values, abs=5e-5)


def test_best_cell_of_every_dataset_matches_an_independent_computation(
    report: Report, published: pd.DataFrame, catalog: Catalog
) -> None:
    sota = {_key(catalog, "dataset", d): v for d, v in report.document["dataset_sota"]["published"].items()}
    for dataset, group in published.groupby("dataset"):
        best = group.loc[group["dice"].idxmax()]
        got = sota[dataset]
        assert (_key(catalog, "model", got["model"]), _key(catalog, "strategy", got["strategy"])) == (
            best["model"],
            best["strategy"],
        )
        assert got["value"] == pytest.approx(best["dice"])
        assert got["ci_lower"] == pytest.approx(best["metrics"]["Mean_Dice"]["ci_lower"])
    # §10: BCSS hoptimus_1 dora 0.3684 [0.3175, 0.4323]
    bcss = sota["BCSS"]
    assert (round(bcss["value"], 4), round(bcss["ci_lower"], 4), round(bcss["ci_upper"], 4)) == (0.3684, 0.3175, 0.4323)


def test_strategy_win_counts_match_the_paper(report: Report, catalog: Catalog) -> None:
    summary = report.document["strategy_summary"]["published"]
    wins = {_key(catalog, "strategy", s): n for s, n in summary["wins_total"].items()}
    assert wins == {"cnn": 180, "dora": 63, "lora": 44, "frozen": 12, "transformer": 7}
    sota_counts = {_key(catalog, "strategy", s): n for s, n in summary["sota_strategy_counts"].items()}
    assert sota_counts == {"cnn": 9, "dora": 5, "lora": 4}


def test_per_model_strategy_means_match_the_paper(report: Report, catalog: Catalog) -> None:
    model_means = {
        _key(catalog, "model", m): {_key(catalog, "strategy", s): v for s, v in row.items()}
        for m, row in report.document["strategy_summary"]["published"]["model_means"].items()
    }
    assert model_means["uni_v2"]["dora"] == pytest.approx(0.7073, abs=5e-5)
    assert model_means["uni_v2"]["cnn"] == pytest.approx(0.7056, abs=5e-5)
    assert model_means["musk"]["frozen"] == pytest.approx(0.5666, abs=5e-5)


def test_friedman_over_published_models_is_significant_with_17_models(report: Report) -> None:
    test = report.document["statistics"]["published"]["models"]
    assert (test["k"], test["n_blocks"], test["status"]) == (17, 90, "done")
    assert test["p_value"] < 1e-10
