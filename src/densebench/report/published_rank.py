"""Where a new model stands against the published PFM-DenseBench models.

A *new* model is one with runs that is not itself in the published table (a model the paper did not
benchmark, e.g. the user's own). For each (dataset, strategy) cell it ran on that also has published
results it gets: its score, its rank when inserted among the published models (1 = best; ties share
the average rank, as on the leaderboard) and the gap to the best published model. Its average rank
is taken over those datasets only, and the report says how many of the published datasets that is.
A critical-difference diagram per strategy inserts it among the published models over the same datasets.
Published numbers come from the paper's protocol, which differs from DenseBench's in documented ways;
tables and figures label the two apart.
"""

from __future__ import annotations

import functools

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from densebench.report.analysis import jsonable
from densebench.report.load import PUBLISHED, RUNS
from densebench.report.stats import friedman
from densebench.report.tables import fmt, records_table

if TYPE_CHECKING:
    from densebench.report.build import _Builder

SECTION = "New models vs published"
OWN = " (own runs)"
CAVEAT = (
    "Published values come from the paper's protocol (PFM-DenseBench); own runs follow DenseBench's, which "
    "differs in the documented ways (README, 'Protocol'). Ranks place each own result among the published "
    "models of the same dataset and strategy."
)


def inserted_rank(score: float, published: list[float]) -> float:
    """Rank of `score` inserted among `published` scores: 1 = best, ties share the average rank."""
    higher = sum(v > score for v in published)
    tied = sum(v == score for v in published)
    return 1 + higher + tied / 2


def with_blocks(cells: pd.DataFrame, dataset_key: Callable[[str], str]) -> pd.DataFrame:
    """Cells with `block`: the dataset's published key, so any dataset config claiming e.g. `GlaS` meets GlaS."""
    return cells.assign(block=cells["dataset"].map(dataset_key))


def rank_new_models(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (new entry, dataset, strategy) with published results: value, rank, best published, gap.

    `cells` carry `block` (see `with_blocks`): published and own cells meet on (block, strategy).
    """
    published = cells[(cells["source"] == PUBLISHED) & (cells["variant"] == "")].dropna(subset=["value"])
    own = cells[(cells["source"] == RUNS) & ~cells["model"].isin(set(published["model"]))].dropna(subset=["value"])
    rows = []
    by_cell = {key: group for key, group in published.groupby(["block", "strategy"])}
    for r in own.itertuples():
        group = by_cell.get((r.block, r.strategy))
        if group is None:
            continue
        best = group.loc[group["value"].idxmax()]
        rows.append(
            {
                "entry": r.entry,
                "label": r.label,
                "dataset": r.dataset,
                "block": r.block,
                "strategy": r.strategy,
                "value": r.value,
                "n_seeds": int(r.n),
                "rank": inserted_rank(r.value, list(group["value"])),
                "n_published": len(group),
                "best_model": best["model"],
                "best_label": best["label"],
                "best_value": best["value"],
                "gap": r.value - best["value"],
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "entry",
            "label",
            "dataset",
            "block",
            "strategy",
            "value",
            "n_seeds",
            "rank",
            "n_published",
            "best_model",
            "best_label",
            "best_value",
            "gap",
        ],
    )


def average_ranks(ranked: pd.DataFrame, cells: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (new entry, strategy): average rank over its datasets, and its coverage of the published ones."""
    published = cells[cells["source"] == PUBLISHED]
    out = []
    for (entry, strategy), group in ranked.groupby(["entry", "strategy"], sort=True):
        available = sorted(published.loc[published["strategy"] == strategy, "block"].unique())
        out.append(
            {
                "entry": entry,
                "label": group["label"].iloc[0],
                "strategy": strategy,
                "avg_rank": float(group["rank"].mean()),
                "n_datasets": len(group),
                "n_published_datasets": len(available),
                "datasets": sorted(group["dataset"]),
                "n_published_models": int(group["n_published"].max()),
                "mean_gap": float(group["gap"].mean()),
            }
        )
    return out


def add_to_report(b: _Builder) -> None:
    """Tables, CD diagrams, notes and report.json's `published_rank` for every new model with runs."""
    cells = with_blocks(b.cells, lambda d: b.catalog.published_key("dataset", d))
    ranked = rank_new_models(cells)
    if ranked.empty:
        return
    d = b._d
    rows = [
        {
            "model": f"{r.label}{OWN}",
            "strategy": d("strategy", r.strategy),
            "dataset": d("dataset", r.dataset),
            "own": r.value,
            "rank": f"{r.rank:g} of {r.n_published + 1}",
            "best": f"{r.best_label} {fmt(r.best_value)}",
            "gap": f"{r.gap:+.4f}",
        }
        for r in ranked.itertuples()
    ]
    b.tables.append(
        records_table(
            "published_rank_cells",
            f"New models among the published ones, per dataset ({b.metric})",
            SECTION,
            rows,
            {
                "model": "Model (own runs)",
                "strategy": "Strategy",
                "dataset": "Dataset",
                "own": f"Own {b.metric}",
                "rank": "Rank among published",
                "best": "Best published",
                "gap": "Gap to best published",
            },
            data=ranked,
            note=CAVEAT,
            label_columns=3,
        )
    )
    averages = average_ranks(ranked, cells)
    b.tables.append(
        records_table(
            "published_rank_average",
            "Average rank among the published models, over the datasets each was run on",
            SECTION,
            [
                {
                    "model": f"{a['label']}{OWN}",
                    "strategy": d("strategy", a["strategy"]),
                    "avg": a["avg_rank"],
                    "of": a["n_published_models"] + 1,
                    "coverage": f"{a['n_datasets']} of {a['n_published_datasets']}",
                    "gap": a["mean_gap"],
                }
                for a in averages
            ],
            {
                "model": "Model (own runs)",
                "strategy": "Strategy",
                "avg": "Average rank",
                "of": "Models ranked",
                "coverage": "Datasets (of published)",
                "gap": "Mean gap to best published",
            },
            data=pd.DataFrame(averages),
            label_columns=2,
        )
    )
    for a in averages:
        if a["n_datasets"] < a["n_published_datasets"]:
            b.notes.append(
                f"{a['label']} ({d('strategy', a['strategy'])}) is ranked on {a['n_datasets']} of the "
                f"{a['n_published_datasets']} published datasets only "
                f"({', '.join(d('dataset', x) for x in a['datasets'])})."
            )
    b.doc["published_rank"] = {
        "caveat": CAVEAT,
        "cells": jsonable(ranked.to_dict("records")),
        "average": jsonable(averages),
        "critical_difference": cd_diagrams(b, cells, ranked),
    }


def cd_diagrams(b: _Builder, cells: pd.DataFrame, ranked: pd.DataFrame) -> dict[str, Any]:
    """Per (new entry, strategy) on ≥2 datasets: Friedman + Nemenyi over the published models plus the entry."""
    from densebench.report import plots

    d = b._d
    out: dict[str, Any] = {}
    published = cells[(cells["source"] == PUBLISHED) & (cells["variant"] == "")]
    for (entry, strategy), group in ranked.groupby(["entry", "strategy"], sort=True):
        datasets = set(group["block"])
        own = cells[(cells["source"] == RUNS) & (cells["entry"] == entry) & (cells["strategy"] == strategy)]
        frame = pd.concat(
            [
                published[(published["strategy"] == strategy) & published["block"].isin(datasets)],
                own[own["block"].isin(datasets)],
            ]
        )
        test = friedman(frame, ["block"], "entry", b.options.alpha)
        key = f"{entry} | {strategy}"
        out[key] = test
        if test["status"] != "done":
            b.notes.append(f"No CD diagram for {group['label'].iloc[0]} ({d('strategy', strategy)}): {test['reason']}.")
            continue
        labels = dict(zip(frame["entry"], frame["label"]))
        own_label = f"{labels[entry]}{OWN}"
        names = {e: own_label if e == entry else f"{labels.get(e, e)}" for e in test["average_ranks"]}
        ranks = {names[e]: r for e, r in test["average_ranks"].items()}
        cliques = [[names[e] for e in c] for c in test["cliques"]]
        title = (
            f"{labels[entry]} among the published models: {d('strategy', strategy)}, {len(datasets)} dataset(s), "
            f"Friedman p={test['p_value']:.2g}"
        )
        slug = "".join(ch if ch.isalnum() else "_" for ch in f"{entry}_{strategy}")
        b.plot(
            f"cd_published_rank_{slug}",
            f"Critical difference with {labels[entry]} inserted ({d('strategy', strategy)})",
            SECTION,
            functools.partial(
                plots.cd_diagram, ranks, test["critical_difference"], cliques, title, highlight={own_label}
            ),
            note="Red, bold: own runs (DenseBench protocol); black: published (paper protocol).",
        )
    return out
