"""Reading run directories: partial sweeps, failed runs and seeds, from fixture metrics.json files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from densebench.errors import DenseBenchError
from densebench.report.analysis import aggregate
from densebench.report.build import Options, build_report
from densebench.report.load import load_runs
from densebench.names import Catalog


def _report(root: Path, tmp_path: Path, **options):
    catalog = Catalog()
    results = load_runs([root], catalog)
    return build_report(results, catalog, Options(plots=False, **options), tmp_path / "report")


def _cell(cells, dataset, model, strategy):
    row = cells[(cells["dataset"] == dataset) & (cells["model"] == model) & (cells["strategy"] == strategy)]
    assert len(row) == 1
    return row.iloc[0]


def test_seeds_of_one_configuration_become_mean_std_and_count(sweep: Path) -> None:
    catalog = Catalog()
    cells = aggregate(load_runs([sweep], catalog).values, catalog)
    cell = _cell(cells[cells["metric"] == "Mean_Dice"], "glas", "b", "lora")
    assert cell["n"] == 3 and cell["seeds"] == [0, 1, 2]
    assert cell["value"] == pytest.approx(0.72)
    assert cell["std"] == pytest.approx(0.02)
    # the CI of several seeds is the envelope of theirs (fixture CIs are value ± 0.02)
    assert (cell["ci_lower"], cell["ci_upper"]) == pytest.approx((0.68, 0.76))


def test_single_seed_cell_keeps_its_bootstrap_ci_and_has_no_std(sweep: Path) -> None:
    catalog = Catalog()
    cells = aggregate(load_runs([sweep], catalog).values, catalog)
    cell = _cell(cells[cells["metric"] == "Mean_Dice"], "glas", "a", "lora")
    assert cell["n"] == 1 and math.isnan(cell["std"])
    assert (cell["value"], cell["ci_lower"], cell["ci_upper"]) == pytest.approx((0.85, 0.83, 0.87))


def test_failed_run_is_listed_with_its_error_and_marked_in_the_table(sweep: Path, tmp_path: Path) -> None:
    report = _report(sweep, tmp_path)
    [problem] = report.results.problems
    assert (problem.status, problem.dataset, problem.model, problem.strategy) == ("failed", "crag", "c", "lora")
    assert problem.error == "RuntimeError: CUDA out of memory"
    table = next(t for t in report.tables if t.name == "main_runs_lora")
    crag = table.frame[table.frame["Dataset"] == "crag"].iloc[0]
    assert crag["c"] == "failed"
    assert "CUDA out of memory" in table.hints.loc[crag.name, "c"]


def test_missing_cell_is_shown_missing_and_listed(sweep: Path, tmp_path: Path) -> None:
    report = _report(sweep, tmp_path)
    table = next(t for t in report.tables if t.name == "main_runs_frozen")
    assert table.frame.set_index("Dataset").loc["crag", "c"] == "—"
    assert report.document["missing_cells"]["runs"] == [{"dataset": "crag", "model": "c", "strategy": "frozen"}]


def test_main_table_marks_every_tied_best_and_shows_seed_spread(sweep: Path, tmp_path: Path) -> None:
    report = _report(sweep, tmp_path)
    frozen = next(t for t in report.tables if t.name == "main_runs_frozen")
    row = frozen.frame.index[frozen.frame["Dataset"] == "glas"][0]
    assert frozen.best.loc[row, ["a", "b", "c"]].tolist() == [True, True, False]
    lora = next(t for t in report.tables if t.name == "main_runs_lora")
    assert lora.frame.set_index("Dataset").loc["glas", "b"] == "0.7200 ± 0.0200 (n=3)"
    assert lora.frame.set_index("Dataset").loc["glas", "a"] == "0.8500 [0.830, 0.870]"


def test_unfinished_and_unreadable_runs_are_problems_not_crashes(sweep: Path, tmp_path: Path) -> None:
    unfinished = sweep / "glas" / "d" / "frozen" / "seed0"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 0\nmodel:\n  name: d\n")
    broken = sweep / "crag" / "d" / "frozen" / "seed0"
    broken.mkdir(parents=True)
    (broken / "metrics.json").write_text("{not json")
    report = _report(sweep, tmp_path)
    status = {(p.dataset, p.model): p.status for p in report.results.problems}
    assert status[("glas", "d")] == "unfinished"
    assert status[("crag", "d")] == "unreadable"


def test_runs_that_differ_in_an_ablation_axis_stay_one_model_entry(tmp_path: Path, write_run) -> None:
    root = tmp_path / "outputs"
    for rank, dice in ((4, 0.6), (16, 0.7)):
        write_run(root, "glas", "a", "lora", 0, dice, overrides=[f"adapter.rank={rank}", "train.epochs=2"], rank=rank)
    catalog = Catalog()
    cells = aggregate(load_runs([root], catalog).values, catalog)
    dice = cells[cells["metric"] == "Mean_Dice"].set_index("axes")
    # train.epochs=2 is shared by every run, so only the rank tells them apart, as an axis, not a model entry
    assert set(dice["entry"]) == {"a"} and set(dice["protocol"]) == {""}
    assert dice["value"].to_dict() == pytest.approx({"adapter.rank=4": 0.6, "adapter.rank=16": 0.7})


def test_a_run_with_an_undefined_metric_is_shown_undefined_not_missing(tmp_path: Path, write_run) -> None:
    root = tmp_path / "outputs"
    write_run(root, "glas", "a", "frozen", 0, 0.8)
    run_dir = write_run(root, "glas", "b", "frozen", 0, 0.7)
    doc = json.loads((run_dir / "metrics.json").read_text())
    doc["test"]["metrics"]["Mean_Dice"] = None
    doc["test"]["bootstrap"]["metrics"]["Mean_Dice"] = {"mean": None, "std": None, "ci_lower": None, "ci_upper": None}
    (run_dir / "metrics.json").write_text(json.dumps(doc))
    report = _report(root, tmp_path)
    table = next(t for t in report.tables if t.name == "main_runs_frozen")
    assert table.frame.set_index("Dataset").loc["glas", "b"] == "undefined"
    assert report.document["missing_cells"]["runs"] == []
    assert [r["model"] for r in report.document["model_ranks"]["runs"]] == ["a"]


def test_unknown_metric_names_the_available_ones(sweep: Path, tmp_path: Path) -> None:
    with pytest.raises(DenseBenchError, match="--metric Dice_Typo.*Mean_Dice"):
        _report(sweep, tmp_path, metric="Dice_Typo")


def test_instance_metrics_are_tabulated_where_runs_have_them(tmp_path: Path, write_run) -> None:
    root = tmp_path / "outputs"
    instance = {
        "metrics": {"PQ": 0.55, "AJI": 0.5},
        "bootstrap": {"metrics": {"PQ": {"mean": 0.54, "ci_lower": 0.5, "ci_upper": 0.58}}},
    }
    write_run(root, "glas", "a", "frozen", 0, 0.8, instance=instance)
    write_run(root, "glas", "b", "frozen", 0, 0.7)
    report = _report(root, tmp_path)
    table = next(t for t in report.tables if t.name == "instance_metrics")
    assert table.frame[["Model", "PQ", "AJI"]].values.tolist() == [["a", "0.5500 [0.500, 0.580]", "0.5000"]]
    assert report.document["instance"]["glas"]["frozen"]["a"]["PQ"]["value"] == pytest.approx(0.55)


def test_per_class_table_uses_the_metric_s_per_class_score(tmp_path: Path, write_run) -> None:
    root = tmp_path / "outputs"
    write_run(root, "glas", "a", "frozen", 0, 0.8, class_dice=[0.9, 0.7])
    write_run(root, "glas", "b", "frozen", 0, 0.7, class_dice=[0.95, 0.45])
    table = next(t for t in _report(root, tmp_path).tables if t.name == "per_class_glas")
    # a row per model · strategy, a column per class (long, never wide); bold = best per class
    assert table.frame.columns.tolist() == ["Model · strategy", "background", "gland"]
    assert table.frame["Model · strategy"].tolist() == ["a · frozen", "b · frozen"]
    assert table.sort.iloc[:, 1:].values.ravel().tolist() == pytest.approx([0.9, 0.7, 0.95, 0.45])
    assert table.best.iloc[:, 1:].values.tolist() == [[False, True], [True, False]]


def test_a_runs_directory_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DenseBenchError, match="runs directory .*nope not found"):
        load_runs([tmp_path / "nope"], Catalog())


def test_metrics_json_of_another_schema_version_is_reported(tmp_path: Path, write_run) -> None:
    run_dir = write_run(tmp_path, "glas", "a", "frozen", 0, 0.8)
    doc = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**doc, "schema_version": 2}))
    [problem] = load_runs([tmp_path], Catalog()).problems
    assert problem.status == "unreadable" and "schema_version 2" in problem.error
