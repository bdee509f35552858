"""A new model's runs ranked against the published PFM-DenseBench table (report/published_rank.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import shared_path

# own Mean_Dice per dataset (config name -> published key); chosen to fall between published models
OWN = {"glas": ("GlaS", 0.85), "crag": ("CRAG", 0.80), "bcss": ("BCSS", 0.30)}


def report(tmp_path, write_run, *extra, scores=OWN, model="my_model"):
    from densebench.report.cli import main

    published = shared_path("published", "pfm-densebench")
    for dataset, (_, dice) in scores.items():
        write_run(tmp_path / "runs", dataset, model, "frozen", 0, dice, display_name="My model")
    main([str(tmp_path / "runs"), "--published", str(published), "--out", str(tmp_path / "report"), *extra])
    return published, json.loads((tmp_path / "report" / "report.json").read_text())


def test_ranks_gaps_and_average_match_an_independent_count_over_the_published_json(tmp_path, write_run):
    published, doc = report(tmp_path, write_run, "--format", "json", "--no-plots")
    table = json.loads((published / "frozen.json").read_text())
    cells = {c["dataset"]: c for c in doc["published_rank"]["cells"]}
    ranks = []
    for dataset, (key, own) in OWN.items():
        scores = [metrics["Mean_Dice"]["mean"] for metrics in table[key].values()]
        rank = 1 + sum(s > own for s in scores) + 0.5 * sum(s == own for s in scores)
        assert cells[dataset]["rank"] == rank and cells[dataset]["n_published"] == len(scores) == 17
        assert cells[dataset]["gap"] == pytest.approx(own - max(scores))
        ranks.append(rank)
    assert 1 < min(ranks) and max(ranks) <= 18  # the fixture's scores are neither all-best nor all-worst
    (average,) = doc["published_rank"]["average"]
    assert average["avg_rank"] == pytest.approx(sum(ranks) / 3) and average["n_datasets"] == 3
    assert average["n_published_datasets"] == 18


def test_partial_coverage_is_stated_and_own_results_are_marked_in_tables_and_cd_diagram(tmp_path, write_run):
    _, doc = report(tmp_path, write_run, "--format", "json,md")
    assert any("ranked on 3 of the 18 published datasets only" in n for n in doc["notes"])
    md = (tmp_path / "report" / "report.md").read_text()
    assert "My model (own runs)" in md and "Published values come from the paper's protocol" in md
    (plot,) = [p for p in doc["plots"] if "cd_published_rank_my_model_frozen" in p]
    assert (tmp_path / "report" / plot).is_file()
    (test,) = doc["published_rank"]["critical_difference"].values()
    assert test["k"] == 18 and test["n_blocks"] == 3 and "my_model" in test["average_ranks"]


def test_a_rerun_of_a_published_model_is_not_ranked_as_a_new_model(tmp_path, write_run):
    _, doc = report(tmp_path, write_run, "--format", "json", "--no-plots", model="uni")
    assert "published_rank" not in doc


def test_a_dataset_config_meets_the_published_column_of_its_published_key(tmp_path, write_run):
    from densebench.report.cli import main

    published = shared_path("published", "pfm-densebench")
    run = write_run(tmp_path / "runs", "my_glas_copy", "my_model", "frozen", 0, 0.85)
    doc = json.loads((run / "metrics.json").read_text())
    doc["config"]["dataset"]["published_key"] = "GlaS"  # as a user's dataset config would record it
    (run / "metrics.json").write_text(json.dumps(doc))
    main(
        [
            str(tmp_path / "runs"),
            "--published",
            str(published),
            "--out",
            str(tmp_path / "report"),
            "--format",
            "json",
            "--no-plots",
        ]
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (cell,) = report["published_rank"]["cells"]
    assert cell["dataset"] == "my_glas_copy" and cell["block"] == "GlaS" and cell["n_published"] == 17
