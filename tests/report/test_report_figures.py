"""Figures fit to print: every figure type, drawn with many models and long names, has no overlapping text
and no text outside the saved canvas (matplotlib's text extents, `plots.layout_problems`); a deliberately
crowded figure shows the check fails when it should."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from densebench.config import config_dir
from densebench.report import plots
from densebench.names import Catalog

STRATEGIES = ["full", "cnn", "frozen", "transformer", "lora", "dora"]  # not in report order on purpose
N_MODELS = 17
LONG = "An Extremely Long Foundation Model Display Name"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(config_dir())


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Every figure saved through plots.save_figure, with its layout problems (checked as it is saved)."""
    seen: list[tuple[str, list[str]]] = []
    original = plots.save_figure

    def save(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
        seen.append((path.name, plots.layout_problems(fig, tight)))
        return original(fig, path, tight)

    monkeypatch.setattr(plots, "save_figure", save)
    return seen


def _cells(rng: np.random.Generator) -> pd.DataFrame:
    """17 models with long names and close parameter counts × 6 datasets × 6 strategies."""
    rows = []
    for m in range(N_MODELS):
        for d in range(6):
            for s in STRATEGIES:
                rows.append(
                    {
                        "source": "runs",
                        "dataset": f"dataset_{d}",
                        "model": f"model_{m}",
                        "variant": "",
                        "protocol": "",
                        "axes": "",
                        "strategy": s,
                        "metric": "Mean_Dice",
                        "value": float(rng.uniform(0.5, 0.9)),
                        "std": np.nan,
                        "n": 1,
                        "ci_lower": np.nan,
                        "ci_upper": np.nan,
                        "input_size": 224.0,
                        "adapter_rank": np.nan,
                        "params": 3.0e8 + 1e6 * (m % 4) if m < 12 else 8.6e7 * (1 + m % 3),
                        "entry": f"model_{m}",
                        "label": f"{LONG} {m}",
                    }
                )
    return pd.DataFrame(rows)


def _learn_long_names(catalog: Catalog) -> None:
    for m in range(N_MODELS):
        catalog.learn("model", f"model_{m}", f"{LONG} {m}", None)
    for d in range(6):
        catalog.learn(
            "dataset", f"dataset_{d}", f"Dataset With A Long Display Name Number {d} [dataset.min_side=96]", None
        )


def test_the_layout_check_finds_overlapping_and_cut_off_text() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xticks(np.arange(12), [f"crowded label {i}" for i in range(12)])  # horizontal, far too many
    fig.text(0.98, 0.5, "a label running past the right edge")
    problems = plots.layout_problems(fig, tight=False)
    plt.close(fig)
    assert any(p.startswith("overlap: 'crowded label") for p in problems)
    assert any(p.startswith("outside the canvas: 'a label running past") for p in problems)


def test_every_figure_type_fits_with_many_models_and_long_names(
    tmp_path: Path, catalog: Catalog, checked: list[tuple[str, list[str]]]
) -> None:
    _learn_long_names(catalog)
    cells = _cells(np.random.default_rng(0))
    datasets = sorted(cells["dataset"].unique())
    plots.strategy_boxplots(cells, datasets, STRATEGIES, catalog, "Mean_Dice", tmp_path / "box")
    labels = dict(zip(cells["entry"], cells["label"]))
    flops = {f"model_{m}": 6e10 * (1 + m % 5) for m in range(N_MODELS)}
    result = plots.scaling(cells, STRATEGIES, flops)
    plots.scaling_plot(result, labels, catalog, "Mean_Dice", tmp_path / "scaling", flops_size=224)
    ablation = []
    for m in range(6):
        for rank in (4, 8, 16, 32, 64):
            ablation.append(
                {
                    **cells.iloc[0].to_dict(),
                    "model": f"model_{m}",
                    "strategy": "lora",
                    "adapter_rank": float(rank),
                    "value": 0.7 + 0.001 * rank,
                    "protocol": "train.epochs=3" if m % 2 else "",
                }
            )
        ablation.append({**cells.iloc[0].to_dict(), "model": f"model_{m}", "strategy": "full", "value": 0.8})
        for size in (224, 448, 672, 896, 1022):
            ablation.append(
                {
                    **cells.iloc[0].to_dict(),
                    "model": f"model_{m}",
                    "strategy": "frozen",
                    "input_size": float(size),
                    "value": 0.6 + size / 1e4,
                }
            )
    sweep = pd.DataFrame(ablation)
    plots.rank_ablation(sweep, catalog, "Mean_Dice", tmp_path / "rank")
    plots.input_size_plot(sweep, catalog, "Mean_Dice", tmp_path / "size")
    ranks = {f"{LONG} {m}": 1 + 16 * m / N_MODELS for m in range(N_MODELS)}
    names = sorted(ranks, key=ranks.get)
    plots.cd_diagram(
        ranks,
        2.5,
        [names[:5], names[3:9], names[8:]],
        "models: 17 models ranked over N = 36 blocks (dataset × strategy cells)\nNemenyi CD (α=0.05)",
        tmp_path / "cd",
    )
    assert [name for name, _ in checked] == ["box", "scaling", "rank", "size", "cd"]
    assert {name: problems for name, problems in checked if problems} == {}


def test_strategies_keep_one_order_and_one_colour(catalog: Catalog) -> None:
    assert catalog.strategy_order(STRATEGIES) == ["frozen", "lora", "dora", "cnn", "transformer", "full"]
    colours = [catalog.strategy_color(s) for s in catalog.strategy_order(STRATEGIES)]
    assert len(set(colours)) == len(colours)


def test_parameter_and_flops_ticks_read_in_units(tmp_path: Path, catalog: Catalog, checked: list[Any]) -> None:
    cells = _cells(np.random.default_rng(1))
    result = plots.scaling(cells, STRATEGIES, {f"model_{m}": 6e10 * (1 + m % 5) for m in range(N_MODELS)})
    fig, axes = plt.subplots(1, 4)
    plots._scaling_axes(fig, axes[0], axes[1], result, {}, catalog, "params")
    plots._scaling_axes(fig, axes[2], axes[3], result["flops"], {}, catalog, "G")
    fig.canvas.draw()
    params = [t.get_text() for t in axes[0].get_xticklabels() if t.get_text()]
    flop_ticks = [t.get_text() for t in axes[2].get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert params and all(t.endswith(("M", "B")) for t in params)
    assert flop_ticks and all(t.endswith("G") for t in flop_ticks)


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[plt.Figure]:
    figures: list[plt.Figure] = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, tight=True: figures.append(fig) or path)
    return figures


def test_a_line_joins_only_runs_that_differ_in_the_plotted_axis(
    monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    figures = _captured(monkeypatch)
    base = {
        "source": "runs",
        "dataset": "glas",
        "model": "uni",
        "variant": "",
        "strategy": "lora",
        "axes": "",
        "std": np.nan,
        "n": 1,
        "input_size": 224.0,
        "metric": "Mean_Dice",
    }
    rows = [
        {**base, "adapter_rank": 4.0, "value": 0.80, "protocol": "train.epochs=3"},
        {**base, "adapter_rank": 8.0, "value": 0.82, "protocol": "train.epochs=3"},
        {**base, "adapter_rank": 16.0, "value": 0.38, "protocol": "train.epochs=2"},  # the dip
        {**base, "adapter_rank": 8.0, "value": 0.36, "protocol": "train.epochs=2"},
        {**base, "adapter_rank": np.nan, "strategy": "full", "value": 0.85, "protocol": "train.epochs=3"},
    ]
    plots.rank_ablation(pd.DataFrame(rows), catalog, "Mean_Dice", Path("unused"))
    (fig,) = figures
    ax = fig.axes[0]
    series = sorted(
        tuple(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) > 1 and line.get_linestyle() == "-"
    )
    assert series == [(4.0, 8.0), (8.0, 16.0)]  # one line per protocol, never 4 → 8 → 16 across them
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "UNI · LoRA · train.epochs=3" in labels and "UNI · LoRA · train.epochs=2" in labels
    assert "UNI · Full fine-tuning (no adapter rank)" in labels  # the reference line is in the legend
    plt.close(fig)


def test_cd_diagrams_state_n_and_the_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_sweep) -> None:
    from densebench.report.build import Options, build_report
    from densebench.report.load import load_runs

    titles: list[str] = []
    monkeypatch.setattr(plots, "cd_diagram", lambda ranks, cd, cliques, title, path: titles.append(title) or path)
    catalog = Catalog()
    root = make_sweep(tmp_path / "outputs")
    build_report(load_runs([root], catalog), catalog, Options(), tmp_path / "r")
    assert any(t.startswith("models: 3 models ranked over N = 2 blocks (dataset × strategy cells)") for t in titles)
