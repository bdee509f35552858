"""Report figures (matplotlib, Agg): every figure is written as PNG and SVG next to each other.

- strategy box plots per dataset (the paper's Figure 3),
- metric vs backbone parameter count with Spearman's rank correlation (Figure 4),
- LoRA/DoRA rank ablation when runs differ in `adapter.rank` (Figure 5),
- metric vs input size when runs differ in input size,
- critical-difference diagrams of the Friedman/Nemenyi tests.

Figures are made to print: strategies keep one order and one colour everywhere (`Catalog.strategy_order`,
`strategy_color`, from the adapter configs), parameter axes read in M/B and FLOPs in G, every marker has
a legend entry, and `layout_problems` finds overlapping or cut-off text (the figure tests use it).
A figure that cannot be drawn raises `NotDrawn` with the reason, which the report prints.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D
from matplotlib.patches import ConnectionPatch, Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
from scipy import stats  # noqa: E402

from densebench.names import Catalog  # noqa: E402
from densebench.report.tables import fmt_count

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "svg.fonttype": "none", "figure.dpi": 100})


class NotDrawn(Exception):
    """A figure that cannot be made from these results; the message says why (the report prints it)."""


@dataclass
class Plot:
    name: str  # file stem under plots/
    title: str
    section: str
    path: Path  # the PNG; the SVG has the same stem
    note: str = ""


def _drawn_tick_labels(fig: plt.Figure) -> tuple[list[Text], set[int]]:
    """Tick labels matplotlib draws (ticks inside the view), and the ids of all tick-label texts."""
    drawn: list[Text] = []
    every: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                labels = (tick.label1, tick.label2)
                every.update(id(t) for t in labels)
                loc = tick.get_loc()
                if (
                    loc is not None
                    and lo - span <= loc <= hi + span
                    and ax.get_visible()
                    and axis.get_visible()
                    and ax.axison
                ):
                    drawn += [t for t in labels if t.get_visible() and t.get_text().strip()]
    return drawn, every


def layout_problems(fig: plt.Figure, tight: bool = True, tolerance: float = 1.0) -> list[str]:
    """Text that overlaps other text, lies outside what is saved (the canvas, or the crop of a tight
    save) or outside its clip box: one line per problem. Uses matplotlib's rendered text extents
    (axis-aligned boxes; figures here rotate text by 0 or 90 degrees only)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ticks, tick_ids = _drawn_tick_labels(fig)
    texts = [
        t
        for t in fig.findobj(Text)
        if id(t) not in tick_ids
        and t.get_visible()
        and t.get_text().strip()
        and (t.axes is None or t.axes.get_visible())
    ]
    texts = list({id(t): t for t in [*texts, *ticks]}.values())
    canvas = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans) if tight else fig.bbox
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    problems = []
    for t, box in boxes:
        if (
            box.x0 < canvas.x0 - tolerance
            or box.y0 < canvas.y0 - tolerance
            or box.x1 > canvas.x1 + tolerance
            or box.y1 > canvas.y1 + tolerance
        ):
            problems.append(f"outside the canvas: {t.get_text()!r}")
        clip = t.get_clip_box() if t.get_clip_on() else None
        if clip is not None and (
            box.x0 < clip.x0 - tolerance
            or box.x1 > clip.x1 + tolerance
            or box.y0 < clip.y0 - tolerance
            or box.y1 > clip.y1 + tolerance
        ):
            problems.append(f"clipped: {t.get_text()!r}")
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if dx > tolerance and dy > tolerance:
                problems.append(f"overlap: {a.get_text()!r} and {b.get_text()!r}")
    return problems


def save_figure(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
    """PNG and SVG; `tight` crops to the drawn content (an extra layout pass: skipped for laid-out grids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bbox = "tight" if tight else None
    fig.savefig(path.with_suffix(".png"), dpi=110, bbox_inches=bbox)
    fig.savefig(path.with_suffix(".svg"), bbox_inches=bbox)
    plt.close(fig)
    return path.with_suffix(".png")


def _wrap(text: str, width: int) -> str:
    """Text folded to lines of about `width` characters (long names never run into a neighbour)."""
    return "\n".join(textwrap.wrap(text, width=max(8, width), break_long_words=True, break_on_hyphens=False)) or text


def _grid(
    n: int, title: str, ncols: int = 6, size: tuple[float, float] = (2.6, 2.6)
) -> tuple[plt.Figure, list[plt.Axes]]:
    """n panels under a title, laid out by matplotlib's constrained layout (titles and labels never collide)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(size[0] * ncols, 5.0), size[1] * nrows + 0.9), squeeze=False, layout="constrained"
    )
    fig.suptitle(_wrap(title, int(max(size[0] * ncols, 5.0) * 11)))
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend_below(fig: plt.Figure, handles: list[Any], labels: list[str], width_in: float) -> None:
    """A figure legend under the panels, as many columns as fit the figure's width."""
    longest = max((len(label) for label in labels), default=10)
    ncol = max(1, min(len(labels), int(width_in * 11 / (longest + 6))))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)


def strategy_boxplots(
    cells: pd.DataFrame, datasets: list[str], strategies: list[str], catalog: Catalog, metric: str, path: Path
) -> Path:
    """Per dataset, the spread over models of each strategy's metric: one colour per strategy, in the
    report's strategy order, explained by one legend (with the mean and median markers)."""
    if cells.empty or len(strategies) == 0:
        raise NotDrawn("no results of this metric")
    strategies = catalog.strategy_order(strategies)
    fig, axes = _grid(len(datasets), f"{metric} by strategy (spread over models)")
    colours = [catalog.strategy_color(s) for s in strategies]
    for ax, dataset in zip(axes, datasets):
        sub = cells[cells["dataset"] == dataset]
        data = [sub.loc[sub["strategy"] == s, "value"].dropna().to_numpy() for s in strategies]
        parts = ax.boxplot(
            data,
            showmeans=True,
            patch_artist=True,
            widths=0.6,
            meanprops={"marker": "^", "markersize": 4, "markerfacecolor": "white", "markeredgecolor": "black"},
            medianprops={"color": "black"},
            flierprops={"marker": "o", "markersize": 3},
        )
        for box, colour in zip(parts["boxes"], colours):
            box.set_facecolor(colour)
        ax.set_xticks([])
        ax.set_title(_wrap(catalog.display("dataset", dataset), 30), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(metric)
    handles: list[Any] = [Patch(facecolor=c, edgecolor="black") for c in colours]
    labels = [catalog.display("strategy", s) for s in strategies]
    handles += [
        Line2D([], [], color="black"),
        Line2D([], [], marker="^", ls="", markerfacecolor="white", color="black"),
        Line2D([], [], marker="o", ls="", markerfacecolor="none", color="black", markersize=3),
    ]
    labels += ["median", "mean", "outlier"]
    _legend_below(fig, handles, labels, fig.get_figwidth())
    return save_figure(fig, path)


def _common_mean(frame: pd.DataFrame, blocks: list[str]) -> pd.Series:
    """Each entry's mean over the blocks that every entry has, so the means are comparable."""
    table = frame.pivot_table(index=blocks, columns="entry", values="value", aggfunc="mean").dropna()
    return table.mean() if len(table) else pd.Series(dtype=float)


def _correlate(x: pd.Series, series: dict[str, pd.Series]) -> dict[str, Any]:
    """Spearman's ρ between a per-entry quantity `x` and each series of per-entry means (≥ 3 entries);
    series with fewer are named in `not_correlated` with the reason."""
    result: dict[str, Any] = {"by_strategy": {}, "points": {}, "not_correlated": {}}
    for name, means in series.items():
        means = means[means.index.isin(x.dropna().index)]
        if len(means) < 3:
            result["not_correlated"][name] = f"{len(means)} model(s) with a count and results in common cells; needs 3"
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
    base = cells.dropna(subset=["value"])  # every model entry (a variant such as random init has its own count)
    params = base.groupby("entry")["params"].first()
    base = base[base["entry"].isin(params.dropna().index)]
    series = {s: _common_mean(base[base["strategy"] == s], ["dataset"]) for s in strategies}
    series["all"] = _common_mean(base, ["dataset", "strategy"])
    result = {"skipped_no_params": sorted(params[params.isna()].index), **_correlate(params, series)}
    if flops:
        result["flops"] = _correlate(pd.Series(flops, dtype=float), series)
    return result


def _unit_axis(ax: plt.Axes, unit: str) -> None:
    """A log x axis whose ticks read 86M, 300M, 1B (parameters) or 12G (FLOPs)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.xaxis.set_minor_locator(NullLocator())
    if unit == "G":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e9:.3g}G"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_count(v)))


def _scaling_axes(
    fig: plt.Figure,
    ax: plt.Axes,
    names: plt.Axes,
    result: dict[str, Any],
    labels: dict[str, str],
    catalog: Catalog,
    unit: str,
) -> None:
    """Points per strategy (its colour) and over all strategies (black ×); model names in a column to
    the right, ordered by value and joined to their points by thin lines (so names never overlap)."""
    ordered = [*catalog.strategy_order(n for n in result["points"] if n != "all"), "all"]
    for name in (n for n in ordered if n in result["points"]):
        points = result["points"][name]
        x, y = zip(*points.values())
        if name == "all":
            r = result["overall"]
            ax.scatter(
                x,
                y,
                marker="x",
                color="black",
                s=26,
                zorder=3,
                label=f"all strategies (ρ={r['rho']:.2f}, p={r['p_value']:.2g})",
            )
        else:
            r = result["by_strategy"][name]
            ax.scatter(
                x,
                y,
                s=16,
                color=catalog.strategy_color(name),
                alpha=0.85,
                label=f"{catalog.display('strategy', name)} (ρ={r['rho']:.2f}, p={r['p_value']:.2g})",
            )
    _unit_axis(ax, unit)
    xs = [v[0] for pts in result["points"].values() for v in pts.values()]
    if xs:
        ax.set_xlim(min(xs) / 1.4, max(xs) * 1.4)
    ax.grid(alpha=0.3)
    named: dict[str, list[float]] = result["points"].get("all") or next(iter(result["points"].values()), {})
    order = sorted(named, key=lambda e: named[e][1])
    names.set_axis_off()
    names.set_ylim(0, 1)
    names.set_xlim(0, 1)
    for i, entry in enumerate(order):
        y_text = (i + 0.5) / len(order)
        names.text(0.12, y_text, labels.get(entry, entry), va="center", ha="left", fontsize=7)
        fig.add_artist(
            ConnectionPatch(
                xyA=(named[entry][0], named[entry][1]),
                coordsA=ax.transData,
                xyB=(0.1, y_text),
                coordsB=names.transAxes,
                color="grey",
                lw=0.5,
                alpha=0.7,
            )
        )


def scaling_plot(
    result: dict[str, Any],
    labels: dict[str, str],
    catalog: Catalog,
    metric: str,
    path: Path,
    flops_size: int | None = None,
) -> Path:
    """Metric vs backbone parameters (log x, M/B) from `scaling()`, and vs forward FLOPs (G) when counted."""
    if "all" not in result["points"] and not result["by_strategy"]:
        reason = result.get("not_correlated", {}).get("all") or "no model has a parameter count"
        raise NotDrawn(f"no Spearman correlation could be computed ({reason})")
    with_flops = bool((result.get("flops") or {}).get("points"))
    n_models = max(len(p) for p in result["points"].values())
    height = max(4.2, 0.17 * n_models + 1.6)
    panels = 2 if with_flops else 1
    fig, axes = plt.subplots(
        1,
        2 * panels,
        figsize=(9.0 * panels, height),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [3, 1.25] * panels},
    )
    ax, names = axes[0, 0], axes[0, 1]
    _scaling_axes(fig, ax, names, result, labels, catalog, "params")
    ax.set_xlabel("backbone parameters")
    ax.set_ylabel(f"mean {metric} (cells every model has)")
    ax.set_title(f"{metric} vs backbone size (Spearman rank correlation)")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    if with_flops:
        ax2 = axes[0, 2]
        _scaling_axes(fig, ax2, axes[0, 3], result["flops"], labels, catalog, "G")
        ax2.set_xlabel(f"backbone forward FLOPs, one {flops_size}×{flops_size} image")
        ax2.set_title(f"{metric} vs backbone compute")
        ax2.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return save_figure(fig, path)


SWEEP_GROUP = ["dataset", "model", "variant", "strategy", "protocol"]


def _sweep_plot(
    cells: pd.DataFrame,
    x: str,
    others: list[str],
    catalog: Catalog,
    metric: str,
    xlabel: str,
    path: Path,
    log2: bool,
    references: bool,
) -> Path:
    """Metric vs `x`: a line joins only runs that differ in `x` alone (same dataset with its settings,
    model entry, strategy, protocol and other axes); other runs become separate, labelled series.

    With `references`, the same model's strategies without `x` under the same protocol (e.g. full
    fine-tuning next to LoRA ranks) are drawn as dashed horizontal lines in their strategy's colour,
    named in the legend.
    """
    keys = [*SWEEP_GROUP, *others]
    have = cells.dropna(subset=[x, "value"])
    groups = [(k, g) for k, g in have.groupby(keys, dropna=False, sort=True) if g[x].nunique() >= 2]
    if not groups:
        raise NotDrawn(f"no runs differ in {xlabel} alone (same dataset, model, strategy, protocol and other settings)")
    datasets = sorted({k[0] for k, _ in groups})
    varying = {o for o in others if have[o].nunique(dropna=False) > 1}  # other axes worth naming in labels
    fig, axes = _grid(len(datasets), f"{metric} vs {xlabel}", ncols=3, size=(4.0, 3.0))
    legend: dict[str, Any] = {}
    markers = "osD^vP*Xph"  # a series keeps its strategy's colour; its marker tells models and protocols apart
    series_markers: dict[tuple[Any, ...], str] = {}

    def series_label(key: tuple[Any, ...]) -> str:
        model = catalog.display("model", key[1]) + (f" [{key[2]}]" if key[2] else "")
        extra = [key[4]] if key[4] else []  # the protocol, where it is not the shared one
        extra += [
            f"{o}={v:g}" for o, v in zip(others, key[5:]) if o in varying and isinstance(v, float) and not math.isnan(v)
        ]
        return " · ".join([model, catalog.display("strategy", key[3]), *extra])

    for ax, dataset in zip(axes, datasets):
        for key, g in groups:
            if key[0] != dataset:
                continue
            g = g.sort_values(x)
            label = series_label(key)
            colour = catalog.strategy_color(key[3])
            marker = series_markers.setdefault(key[1:], markers[len(series_markers) % len(markers)])
            legend.setdefault(label, Line2D([], [], marker=marker, ms=4, color=colour))
            err = np.where(g["n"] > 1, g["std"], np.nan)
            ax.errorbar(
                g[x],
                g["value"],
                yerr=None if np.isnan(err).all() else err,
                marker=marker,
                ms=4,
                color=colour,
                capsize=2,
            )
            if references:
                ref = cells[
                    (cells["dataset"] == dataset)
                    & (cells["model"] == key[1])
                    & (cells["variant"] == key[2])
                    & (cells["protocol"] == key[4])
                    & (cells["axes"] == "")
                    & cells[x].isna()
                ]
                for r in ref.itertuples():
                    colour = catalog.strategy_color(r.strategy)
                    model = catalog.display("model", r.model) + (f" [{r.variant}]" if r.variant else "")
                    name = f"{model} · {catalog.display('strategy', r.strategy)} (no {xlabel})"
                    ax.axhline(r.value, ls="--", lw=1.0, color=colour)
                    legend.setdefault(name, Line2D([], [], ls="--", lw=1.0, color=colour))
        if log2:
            ax.set_xscale("log", base=2)
        ticks = sorted(have.loc[have["dataset"] == dataset, x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_title(_wrap(catalog.display("dataset", dataset), 40), fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    _legend_below(fig, list(legend.values()), list(legend), fig.get_figwidth())
    return save_figure(fig, path)


def rank_ablation(cells: pd.DataFrame, catalog: Catalog, metric: str, path: Path) -> Path:
    return _sweep_plot(cells, "adapter_rank", ["input_size"], catalog, metric, "adapter rank", path, True, True)


def input_size_plot(cells: pd.DataFrame, catalog: Catalog, metric: str, path: Path) -> Path:
    return _sweep_plot(cells, "input_size", ["adapter_rank"], catalog, metric, "input size (px)", path, False, False)


def cd_diagram(
    ranks: dict[str, float],
    cd: float,
    cliques: list[list[str]],
    title: str,
    path: Path,
    highlight: set[str] | None = None,
) -> Path:
    """Critical-difference diagram: average ranks on an axis (1 = best, left), bars join groups within the CD.

    The title states what was ranked over how many blocks (N); a note under the axis says what the bars mean.
    `highlight`: names drawn in red and bold (e.g. own runs among published results).
    """
    names = sorted(ranks, key=lambda name: ranks[name])
    k = len(names)
    half = math.ceil(k / 2)
    height = 1.9 + 0.22 * half + 0.12 * len(cliques)
    fig, ax = plt.subplots(figsize=(7.5, height))
    ax.set_xlim(0.3, k + 0.7)
    ax.set_ylim(-(half + 2.5 + 0.35 * len(cliques)) * 0.22, 0.75)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=1)
    step = max(1, math.ceil(k / 20))
    for t in range(1, k + 1):
        ax.vlines(t, 0, 0.07, color="black", lw=0.8)
        if (t - 1) % step == 0 or t == k:
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
        mark = name in (highlight or ())
        ax.plot([r, r, x_text], [0, y, y], color="tab:red" if mark else "black", lw=1.2 if mark else 0.7)
        ax.text(
            x_text + (-0.02 if left else 0.02),
            y,
            f"{name} ({r:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=7,
            color="tab:red" if mark else "black",
            fontweight="bold" if mark else "normal",
        )
    ax.text(
        (k + 1) / 2,
        text_top - 0.22 * half - 0.1,
        "average rank (1 = best); a bar joins entries whose ranks differ by less than CD (not significantly different)",
        ha="center",
        va="top",
        fontsize=6.5,
        color="#444444",
    )
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
