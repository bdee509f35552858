"""`densebench report` end to end on fixture runs: every output format, the plots, published side by side."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from densebench.config import config_dir
from densebench.errors import DenseBenchError
from densebench.report.cli import main
from densebench.names import Catalog

FORMATS = {"md": "report.md", "tex": "tables.tex", "html": "report.html", "json": "report.json", "csv": "csv"}


@pytest.fixture(scope="module")
def out(
    tmp_path_factory: pytest.TempPathFactory, make_sweep: Callable[[Path], Path], write_run: Callable[..., Path]
) -> Path:
    """One full report (all formats, plots) of a partial sweep plus a LoRA-rank and an input-size ablation,
    with published results for two of its cells and a paired bootstrap."""
    base = tmp_path_factory.mktemp("cli")
    runs = make_sweep(base / "outputs")
    for (dataset, model, adapter), dice in {
        ("rings", "a", "frozen"): 0.9,
        ("rings", "b", "frozen"): 0.8,
        ("rings", "c", "frozen"): 0.7,
        ("rings", "a", "lora"): 0.92,
        ("rings", "b", "lora"): 0.85,
        ("rings", "c", "lora"): 0.6,
        ("rings", "a", "full"): 0.91,
        ("rings", "b", "full"): 0.84,
        ("rings", "c", "full"): 0.75,
        ("glas", "a", "full"): 0.82,
        ("glas", "b", "full"): 0.78,
        ("glas", "c", "full"): 0.7,
    }.items():
        write_run(runs, dataset, model, adapter, 0, dice, params={"a": 3e8, "b": 8.6e7, "c": 1.1e9}[model])
    for rank, dice in ((4, 0.81), (8, 0.83)):
        write_run(runs, "glas", "a", "lora", 0, dice, overrides=[f"adapter.rank={rank}"], rank=rank, params=300_000_000)
    write_run(runs, "glas", "a", "frozen", 0, 0.84, overrides=["input_size=448"], input_size=448, params=300_000_000)
    rng = np.random.default_rng(0)
    cm = np.zeros((6, 2, 2), dtype=np.int64)
    cm[:, 0, 0], cm[:, 1, 1] = 90, 80
    cm[:, 0, 1], cm[:, 1, 0] = rng.integers(1, 10, 6), rng.integers(1, 10, 6)
    write_run(runs, "crag", "a", "full", 0, 0.8, cm=cm, params=300_000_000)
    write_run(runs, "crag", "b", "full", 0, 0.7, cm=cm + np.array([[0, 5], [5, 0]]), params=86_000_000)
    published = base / "published"
    published.mkdir()
    entry = {"mean": 0.79, "ci_lower": 0.76, "ci_upper": 0.82}
    (published / "frozen.json").write_text(
        json.dumps(
            {
                "glas": {
                    "a": {"Mean_Dice": entry},
                    "b": {"Mean_Dice": {"mean": 0.60, "ci_lower": 0.55, "ci_upper": 0.65}},
                }
            }
        )
    )
    report = base / "report"
    assert (
        main(
            [
                str(runs),
                "--published",
                str(published),
                "--out",
                str(report),
                "--paired",
                "crag/a/full",
                "crag/b/full",
                "--n-resamples",
                "200",
            ]
        )
        == 0
    )
    return report


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_cli_writes_each_format(out: Path, fmt: str) -> None:
    path = out / FORMATS[fmt]
    assert path.exists()
    if fmt == "csv":
        assert {
            "main_runs_frozen.csv",
            "model_ranks_runs.csv",
            "dataset_sota_runs.csv",
            "friedman_runs.csv",
            "published_comparison.csv",
            "paired_bootstrap.csv",
        } <= {p.name for p in path.iterdir()}
    else:
        assert path.stat().st_size > 1000


def test_only_the_requested_formats_are_written(sweep: Path, tmp_path: Path) -> None:
    assert main([str(sweep), "--out", str(tmp_path / "r"), "--format", "md,json", "--no-plots"]) == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.json", "report.md"]


@pytest.mark.parametrize(
    "stem",
    ["strategy_boxplots_runs", "scaling_runs", "rank_ablation", "input_size", "cd_runs_models", "cd_runs_strategies"],
)
def test_plots_exist_as_png_and_svg(out: Path, stem: str) -> None:
    png, svg = out / "plots" / f"{stem}.png", out / "plots" / f"{stem}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_report_json_has_the_machine_readable_keys(out: Path) -> None:
    doc = json.loads((out / "report.json").read_text())
    assert {"dataset_sota", "model_ranks", "strategy_summary", "main_tables", "statistics", "problems"} <= set(doc)
    assert doc["dataset_sota"]["runs"]["glas"] == {
        **doc["dataset_sota"]["runs"]["glas"],
        "model": "a",
        "strategy": "lora",
        "value": pytest.approx(0.85),
    }
    assert doc["main_tables"]["runs"]["lora"]["glas"]["b"]["n_seeds"] == 3
    assert doc["problems"][0]["error"] == "RuntimeError: CUDA out of memory"
    assert doc["statistics"]["runs"]["models"]["status"] == "done"


def test_published_and_runs_sit_side_by_side_with_delta_and_ci_overlap(out: Path) -> None:
    doc = json.loads((out / "report.json").read_text())
    assert doc["sources"] == ["published", "runs"]
    rows = {(r["model"], r["variant"]): r for r in doc["published_comparison"]}
    a = rows[("a", "")]
    assert a["delta"] == pytest.approx(0.80 - 0.79) and a["cis_overlap"] is True
    b = rows[("b", "")]
    assert b["delta"] == pytest.approx(0.20) and b["cis_overlap"] is False
    # the input-size ablation run (input_size=448) is not the published protocol: not compared
    assert all(r["value"] != pytest.approx(0.84) for r in doc["published_comparison"])


def test_paired_bootstrap_result_is_reported_plainly(out: Path) -> None:
    [result] = json.loads((out / "report.json").read_text())["statistics"]["paired_bootstrap"]
    assert result["significant"] and result["difference_ci"][0] > 0
    assert "a · Full fine-tuning is better than b · Full fine-tuning" in (out / "report.md").read_text()


def test_markdown_bolds_the_best_cell_and_lists_the_failed_run(out: Path) -> None:
    text = (out / "report.md").read_text()
    glas = re.escape(Catalog.load(config_dir()).display("dataset", "glas"))  # tables print display names
    assert re.search(rf"^\| {glas} \|(.*\|)? \*\*0\.8500 \[0\.830, 0\.870\]\*\* \|", text, re.M)
    assert "RuntimeError: CUDA out of memory" in text


def test_latex_tables_use_booktabs_and_escape_names(out: Path) -> None:
    text = (out / "tables.tex").read_text()
    assert text.count(r"\toprule") == text.count(r"\bottomrule") > 5
    assert r"\textbf{0.8500 [0.830, 0.870]}" in text
    body = [line for line in text.splitlines()[1:] if not line.startswith(r"\label")]
    assert not [line for line in body if re.search(r"(?<!\\)_", line)]  # every _ outside labels escaped
    assert r"Mean\_Dice" in text


def test_html_links_figures_written_beside_it(out: Path) -> None:
    html = (out / "report.html").read_text()
    linked = set(re.findall(r'src="(plots/[\w.-]+\.png)"', html))
    assert linked == {f"plots/{p.name}" for p in (out / "plots").glob("*.png")}
    assert all((out / link).is_file() for link in re.findall(r'(?:src|href)="((?:plots|gallery)/[^"]+)"', html))
    assert "data:image/png;base64," not in html and not re.search(r'(src|href)="(https?:|//)', html)
    assert 'class="sortable"' in html and 'class="filter"' in html
    assert "<summary>GlaS (Warwick-QU) · a · Frozen · seed 0 — " in html  # drill-downs titled with display names
    assert html.count('<details class="run"') == 29  # one drill-down per finished run
    assert html.count("<summary>Resolved config</summary>") == 29 and "<h4>Per class</h4>" in html


def test_self_contained_html_is_one_file(out: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    assert main([str(out.parent / "outputs"), "--out", str(one), "--format", "html", "--self-contained"]) == 0
    html = (one / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|[\w./-]+\.(png|jpe?g|svg|css|js)\b)""", html)
    assert html.count("data:image/png;base64,") == len(list((one / "plots").glob("*.png")))


def test_unknown_format_is_a_clear_error(sweep: Path, tmp_path: Path) -> None:
    with pytest.raises(DenseBenchError, match="--format pdf: choose among md,csv,tex,html,json"):
        main([str(sweep), "--out", str(tmp_path / "r"), "--format", "pdf"])


def test_paired_arm_with_several_seeds_asks_for_one(sweep: Path, tmp_path: Path) -> None:
    with pytest.raises(DenseBenchError, match=r"3 runs match \(seed0, seed1, seed2\); add /seedN"):
        main([str(sweep), "--out", str(tmp_path / "r"), "--no-plots", "--paired", "glas/b/lora", "glas/a/lora"])


def test_ablation_plots_appear_only_when_runs_differ_in_rank_or_input_size(sweep: Path, tmp_path: Path) -> None:
    assert main([str(sweep), "--out", str(tmp_path / "r"), "--format", "json"]) == 0
    stems = {p.stem for p in (tmp_path / "r" / "plots").iterdir()}
    assert "strategy_boxplots_runs" in stems
    assert not stems & {"rank_ablation", "input_size"}
