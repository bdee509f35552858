"""Aggregates over result rows: seeds → cells, average ranks, best cells, strategy summaries, comparisons.

A *cell* is one (source, dataset, model, strategy, variant): the runs of its seeds averaged (mean ±
std, with the seed count). The *entry* of a cell is what gets ranked: the model, or the model with
its variant (e.g. `uni [adapter.rank=8]`) when runs of the same model differ in more than the seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from densebench.report.load import KEY_COLUMNS, PUBLISHED, RUNS
from densebench.names import Catalog, category_sort_key
from densebench.report.stats import rank_within

CELL_BLOCK = ["dataset", "strategy"]  # a ranking cell of the leaderboard


def aggregate(values: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Seeds of the same configuration merged: value = mean, std (ddof 1), n; CI = one seed's bootstrap
    CI, or for several seeds the envelope (lowest lower, highest upper bound) of theirs."""
    keys = [*KEY_COLUMNS, "metric"]
    # a run whose metric is undefined (null) keeps its cell, with value NaN: it ran, unlike a missing cell
    cells = values.groupby(keys, sort=False, dropna=False).agg(
        value=("value", "mean"),
        std=("value", "std"),
        n=("value", "count"),
        ci_lower=("ci_lower", "min"),
        ci_upper=("ci_upper", "max"),
        input_size=("input_size", "first"),
        adapter_rank=("adapter_rank", "first"),
        params=("params", "first"),
    )
    # seed lists only where seeds were merged (a Python-level aggregation over every cell is slow)
    merged = values[values.duplicated(keys, keep=False)]
    seeds = merged.groupby(keys, sort=False)["seed"].agg(lambda s: sorted(int(x) for x in s.dropna()))
    cells["seeds"] = seeds.reindex(cells.index)
    cells = cells.reset_index()
    cells["std"] = cells["std"].where(cells["n"] > 1)
    cells["entry"] = np.where(cells["variant"] == "", cells["model"], cells["model"] + " [" + cells["variant"] + "]")
    model_label = cells["model"].map(lambda m: catalog.display("model", m))
    cells["label"] = np.where(cells["variant"] == "", model_label, model_label + " [" + cells["variant"] + "]")
    cells["category"] = cells["dataset"].map(catalog.category)
    return cells


def dataset_order(cells: pd.DataFrame, catalog: Catalog) -> list[str]:
    """Datasets grouped by category (Nuclear, Gland, Tissue, others), then by display name."""
    datasets = cells["dataset"].unique()
    return sorted(
        datasets, key=lambda d: (category_sort_key(catalog.category(d)), catalog.display("dataset", d).lower())
    )


def strategy_order(cells: pd.DataFrame, catalog: Catalog) -> list[str]:
    return catalog.strategy_order(cells["strategy"].unique())


def model_ranks(cells: pd.DataFrame) -> pd.DataFrame:
    """Per entry: average rank over its (dataset, strategy) cells, cell count, and per-category averages.

    Ranks are taken within each cell among the entries present in it; best first.
    """
    frame = cells.dropna(subset=["value"]).copy()
    if frame.empty:
        return pd.DataFrame(columns=["entry", "model", "variant", "label", "avg_rank", "n_cells"])
    frame["rank"] = rank_within(frame, CELL_BLOCK)
    out = (
        frame.groupby(["entry", "model", "variant", "label"], sort=False)
        .agg(avg_rank=("rank", "mean"), n_cells=("rank", "size"), mean_value=("value", "mean"))
        .reset_index()
    )
    by_category = frame.pivot_table(index="entry", columns="category", values="rank", aggfunc="mean")
    out = out.join(by_category, on="entry")
    out = out.sort_values(["avg_rank", "entry"], kind="stable").reset_index(drop=True)
    out.attrs["categories"] = sorted(by_category.columns, key=category_sort_key)
    return out


def dataset_sota(cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset the best cell (highest value; ties keep every tied cell in `tied_with`)."""
    rows = []
    for dataset, group in cells.dropna(subset=["value"]).groupby("dataset", sort=False):
        top = group[group["value"] == group["value"].max()].sort_values(["strategy", "entry"])
        best = top.iloc[0]
        rows.append(
            {
                "dataset": dataset,
                "model": best["model"],
                "variant": best["variant"],
                "strategy": best["strategy"],
                "entry": best["entry"],
                "label": best["label"],
                "value": best["value"],
                "ci_lower": best["ci_lower"],
                "ci_upper": best["ci_upper"],
                "n": int(best["n"]),
                "tied_with": [f"{r.entry}/{r.strategy}" for r in top.iloc[1:].itertuples()],
            }
        )
    return pd.DataFrame(rows)


def best_per_strategy(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, strategy) the entry with the highest value."""
    valid = cells.dropna(subset=["value"])
    idx = valid.groupby(["dataset", "strategy"], sort=False)["value"].idxmax()
    return valid.loc[idx, ["dataset", "strategy", "entry", "label", "value", "ci_lower", "ci_upper"]]


def strategy_summary(all_cells: pd.DataFrame, cells: pd.DataFrame, sota: pd.DataFrame) -> dict[str, Any]:
    """Strategy means (every metric), per-model means by strategy, and which strategy wins how often.

    A win is the best strategy of one (dataset, entry) pair among the strategies it was run with (pairs
    with a single strategy are not counted); tied strategies each get the win.
    """
    means = all_cells.pivot_table(index="strategy", columns="metric", values="value", aggfunc="mean")
    n_cells = cells.groupby("strategy")["value"].count()
    model_means = cells.pivot_table(index="entry", columns="strategy", values="value", aggfunc="mean")
    valid = cells.dropna(subset=["value"])
    wins: dict[str, dict[str, int]] = {}
    for (_, entry), group in valid.groupby(["dataset", "entry"], sort=False):
        if group["strategy"].nunique() < 2:
            continue
        for strategy in group.loc[group["value"] == group["value"].max(), "strategy"]:
            wins.setdefault(entry, {}).setdefault(strategy, 0)
            wins[entry][strategy] += 1
    totals: dict[str, int] = {}
    for counts in wins.values():
        for strategy, count in counts.items():
            totals[strategy] = totals.get(strategy, 0) + count
    return {
        "means": {
            s: {**{m: jsonable(v) for m, v in row.items()}, "n_cells": int(n_cells.get(s, 0))}
            for s, row in means.iterrows()
        },
        "model_means": {e: {s: jsonable(v) for s, v in row.items()} for e, row in model_means.iterrows()},
        "wins": wins,
        "wins_total": dict(sorted(totals.items(), key=lambda kv: -kv[1])),
        "sota_strategy_counts": {str(k): int(v) for k, v in sota["strategy"].value_counts().items()}
        if len(sota)
        else {},
    }


def compare_with_published(cells: pd.DataFrame) -> pd.DataFrame:
    """Every cell present in both sources: ours, published, delta and whether the two CIs overlap."""
    ours = cells[(cells["source"] == RUNS) & (cells["axes"] == "")]  # ablation runs are not the paper's protocol
    theirs = cells[(cells["source"] == PUBLISHED) & (cells["variant"] == "")]
    cols = ["dataset", "model", "strategy"]
    joined = ours.merge(theirs[[*cols, "value", "ci_lower", "ci_upper"]], on=cols, suffixes=("", "_published"))
    if joined.empty:
        return joined
    joined["delta"] = joined["value"] - joined["value_published"]
    have_ci = joined[["ci_lower", "ci_upper", "ci_lower_published", "ci_upper_published"]].notna().all(axis=1)
    overlap = (joined["ci_lower"] <= joined["ci_upper_published"]) & (
        joined["ci_lower_published"] <= joined["ci_upper"]
    )
    joined["cis_overlap"] = overlap.where(have_ci)
    return joined


def missing_cells(cells: pd.DataFrame, failed: set[tuple[str, str, str]]) -> list[dict[str, str]]:
    """Cells of the grid (datasets × models × strategies seen in this source) with neither a result nor a failure."""
    present = set(zip(cells["dataset"], cells["model"], cells["strategy"]))
    out = []
    for dataset in sorted(cells["dataset"].unique()):
        for model in sorted(cells["model"].unique()):
            for strategy in sorted(cells["strategy"].unique()):
                key = (dataset, model, strategy)
                if key not in present and key not in failed:
                    out.append({"dataset": dataset, "model": model, "strategy": strategy})
    return out


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN → None, numpy scalars → Python, paths → str, containers recursively."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict("records"))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) or math.isinf(obj) else float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
