"""Report figures (matplotlib, Agg): every figure is written as PNG and SVG next to each other.

- strategy box plots per dataset (the paper's Figure 3),
- metric vs backbone parameter count with Spearman's rank correlation (Figure 4),
- LoRA/DoRA rank ablation when runs differ in `adapter.rank` (Figure 5),
- metric vs input size when runs differ in input size,
- critical-difference diagrams of the Friedman/Nemenyi tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from densebench.report.names import Catalog  # noqa: E402

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "svg.fonttype": "none", "figure.dpi": 100})


@dataclass
class Plot:
    name: str  # file stem under plots/
    title: str
    section: str
    path: Path  # the PNG; the SVG has the same stem
    note: str = ""


def save_figure(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
    """PNG and SVG; `tight` crops to the drawn content (an extra layout pass: skipped for laid-out grids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bbox = "tight" if tight else None
    fig.savefig(path.with_suffix(".png"), dpi=110, bbox_inches=bbox)
    fig.savefig(path.with_suffix(".svg"), bbox_inches=bbox)
    plt.close(fig)
    return path.with_suffix(".png")


def _grid(n: int, title: str, ncols: int = 6, size: tuple[float, float] = (2.6, 2.6)) -> tuple[plt.Figure, list[plt.Axes]]:
    """n panels under a title, laid out with fixed margins in inches (cheaper than tight layout for many panels)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width, height = size[0] * ncols, size[1] * nrows + 0.5
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.15 / width, top=1 - 0.75 / height, bottom=0.8 / height,
                        hspace=0.75, wspace=0.35)
    fig.suptitle(title)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def strategy_boxplots(cells: pd.DataFrame, datasets: list[str], strategies: list[str], catalog: Catalog,
                      metric: str, path: Path) -> Path | None:
    """Per dataset, the spread over models of each strategy's metric."""
    if cells.empty or len(strategies) == 0:
        return None
    fig, axes = _grid(len(datasets), f"{metric} by strategy (spread over models)")
    names = [catalog.display("strategy", s) for s in strategies]
    for ax, dataset in zip(axes, datasets):
        sub = cells[cells["dataset"] == dataset]
        data = [sub.loc[sub["strategy"] == s, "value"].dropna().to_numpy() for s in strategies]
        ax.boxplot(data, showmeans=True, meanprops={"marker": "^", "markersize": 4})
        ax.set_xticks(range(1, len(names) + 1), names, rotation=40, ha="right")
        ax.set_title(catalog.display("dataset", dataset))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(metric)
    return save_figure(fig, path, tight=False)


def _common_mean(frame: pd.DataFrame, blocks: list[str]) -> pd.Series:
    """Each entry's mean over the blocks that every entry has, so the means are comparable."""
    table = frame.pivot_table(index=blocks, columns="entry", values="value", aggfunc="mean").dropna()
    return table.mean() if len(table) else pd.Series(dtype=float)


def _correlate(x: pd.Series, series: dict[str, pd.Series]) -> dict[str, Any]:
    """Spearman's ρ between a per-entry quantity `x` and each series of per-entry means (≥ 3 entries)."""
    result: dict[str, Any] = {"by_strategy": {}, "points": {}}
    for name, means in series.items():
        means = means[means.index.isin(x.dropna().index)]
        if len(means) < 3:
            continue
        rho, p = stats.spearmanr(x[means.index].to_numpy(), means.to_numpy())
        entry = {"rho": float(rho), "p_value": float(p), "n_models": int(len(means))}
        if name == "all":
            result["overall"] = entry
        else:
            result["by_strategy"][name] = entry
        result["points"][name] = {e: [float(x[e]), float(v)] for e, v in means.items()}
    return result


def scaling(cells: pd.DataFrame, strategies: list[str], flops: dict[str, float] | None = None) -> dict[str, Any]:
    """Spearman's ρ between backbone parameters and each model's mean metric, per strategy and overall.

    Means are over the datasets (and strategies) that every model with a parameter count has, so each
    model is averaged over the same cells. Models without a count are listed in `skipped_no_params`.
    With `flops` (forward FLOPs per model), the same means are also correlated with FLOPs (`flops`).
    """
    base = cells[cells["variant"] == ""].dropna(subset=["value"])
    params = base.groupby("entry")["params"].first()
    base = base[base["entry"].isin(params.dropna().index)]
    series = {s: _common_mean(base[base["strategy"] == s], ["dataset"]) for s in strategies}
    series["all"] = _common_mean(base, ["dataset", "strategy"])
    result = {"skipped_no_params": sorted(params[params.isna()].index), **_correlate(params, series)}
    if flops:
        result["flops"] = _correlate(pd.Series(flops, dtype=float), series)
    return result


def _scaling_axes(ax: plt.Axes, result: dict[str, Any], labels: dict[str, str], catalog: Catalog) -> None:
    for name, points in result["points"].items():
        x, y = zip(*points.values())
        if name == "all":
            r = result["overall"]
            ax.scatter(x, y, marker="x", color="black", s=22, label=f"all strategies (ρ={r['rho']:.2f}, p={r['p_value']:.2g})")
            for entry, (px, py) in points.items():
                ax.annotate(labels.get(entry, entry), (px, py), fontsize=6, alpha=0.7, xytext=(3, 2), textcoords="offset points")
        else:
            r = result["by_strategy"][name]
            ax.scatter(x, y, s=18, label=f"{catalog.display('strategy', name)} (ρ={r['rho']:.2f}, p={r['p_value']:.2g})")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def scaling_plot(result: dict[str, Any], labels: dict[str, str], catalog: Catalog, metric: str, path: Path,
                 flops_size: int | None = None) -> Path | None:
    """Metric vs backbone parameters (log x) from `scaling()`, and vs forward FLOPs when counted;
    None when fewer than 3 models have a count."""
    if "all" not in result["points"] and not result["by_strategy"]:
        return None
    with_flops = bool((result.get("flops") or {}).get("points"))
    fig, axes = plt.subplots(1, 2 if with_flops else 1, figsize=(13 if with_flops else 6.5, 4.2), squeeze=False)
    _scaling_axes(axes[0, 0], result, labels, catalog)
    axes[0, 0].set_xlabel("backbone parameters")
    axes[0, 0].set_ylabel(f"mean {metric} (cells every model has)")
    axes[0, 0].set_title(f"{metric} vs backbone size (Spearman rank correlation)")
    if with_flops:
        _scaling_axes(axes[0, 1], result["flops"], labels, catalog)
        axes[0, 1].set_xlabel(f"backbone forward FLOPs, one {flops_size}×{flops_size} image")
        axes[0, 1].set_title(f"{metric} vs backbone compute")
    return save_figure(fig, path)


def _sweep_plot(cells: pd.DataFrame, x: str, others: list[str], catalog: Catalog, metric: str, xlabel: str,
                path: Path, log2: bool, references: bool) -> Path | None:
    """Metric vs `x` for each (dataset, model, strategy, *others) group whose runs take ≥2 values of `x`.

    With `references`, strategies of the same (dataset, model) that lack `x` (e.g. full fine-tuning
    next to LoRA ranks) are drawn as dashed horizontal lines.
    """
    keys = ["dataset", "model", "strategy", *others]
    have = cells.dropna(subset=[x, "value"])
    groups = [(k, g) for k, g in have.groupby(keys, dropna=False, sort=True) if g[x].nunique() >= 2]
    if not groups:
        return None
    datasets = sorted({k[0] for k, _ in groups})
    fig, axes = _grid(len(datasets), f"{metric} vs {xlabel}", ncols=3, size=(4.0, 3.0))
    for ax, dataset in zip(axes, datasets):
        for key, g in groups:
            if key[0] != dataset:
                continue
            g = g.sort_values(x)
            err = np.where(g["n"] > 1, g["std"], np.nan)
            label = f"{catalog.display('model', key[1])} · {catalog.display('strategy', key[2])}"
            ax.errorbar(g[x], g["value"], yerr=None if np.isnan(err).all() else err, marker="o", ms=3, label=label)
            if references:
                ref = cells[(cells["dataset"] == dataset) & (cells["model"] == key[1]) & cells[x].isna()]
                for r in ref.itertuples():
                    ax.axhline(r.value, ls="--", lw=0.8, color="grey")
                    ax.annotate(catalog.display("strategy", r.strategy), (g[x].min(), r.value), fontsize=6, color="grey")
        if log2:
            ax.set_xscale("log", base=2)
        ticks = sorted(have.loc[have["dataset"] == dataset, x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_title(catalog.display("dataset", dataset))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return save_figure(fig, path, tight=False)


def rank_ablation(cells: pd.DataFrame, catalog: Catalog, metric: str, path: Path) -> Path | None:
    return _sweep_plot(cells, "adapter_rank", ["input_size"], catalog, metric, "adapter rank", path, True, True)


def input_size_plot(cells: pd.DataFrame, catalog: Catalog, metric: str, path: Path) -> Path | None:
    return _sweep_plot(cells, "input_size", ["adapter_rank"], catalog, metric, "input size (px)", path, False, False)


def cd_diagram(ranks: dict[str, float], cd: float, cliques: list[list[str]], title: str, path: Path) -> Path:
    """Critical-difference diagram: average ranks on an axis (1 = best, left), bars join groups within the CD."""
    names = sorted(ranks, key=lambda name: ranks[name])
    k = len(names)
    half = math.ceil(k / 2)
    height = 1.4 + 0.22 * half + 0.12 * len(cliques)
    fig, ax = plt.subplots(figsize=(7.5, height))
    ax.set_xlim(0.3, k + 0.7)
    ax.set_ylim(-(half + 1.5 + 0.35 * len(cliques)) * 0.22, 0.75)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=1)
    for t in range(1, k + 1):
        ax.vlines(t, 0, 0.07, color="black", lw=0.8)
        ax.text(t, 0.12, str(t), ha="center", va="bottom", fontsize=7)
    ax.hlines(0.5, 1, 1 + cd, color="black", lw=1.5)
    ax.text(1 + cd / 2, 0.55, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=7)
    bar_y = -0.12
    for i, clique in enumerate(cliques):
        lo, hi = ranks[clique[0]], ranks[clique[-1]]
        y = bar_y - 0.09 * i
        ax.hlines(y, lo - 0.03, hi + 0.03, color="black", lw=2.5)
    text_top = bar_y - 0.09 * len(cliques) - 0.12
    for i, name in enumerate(names):
        r = ranks[name]
        left = i < half
        row = i if left else k - 1 - i
        y = text_top - 0.22 * row
        x_text = 0.35 if left else k + 0.65
        ax.plot([r, r, x_text], [0, y, y], color="black", lw=0.7)
        ax.text(x_text + (-0.02 if left else 0.02), y, f"{name} ({r:.2f})", ha="right" if left else "left",
                va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
