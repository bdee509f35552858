"""Assemble the report: every table, statistic and figure from loaded results, plus report.json's document."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pandas as pd

import densebench
from densebench.errors import DenseBenchError
from densebench.report import analysis, plots, published_rank
from densebench.report.analysis import jsonable
from densebench.report.load import PUBLISHED, RUNS, Problem, Results
from densebench.names import Catalog
from densebench.report.stats import Arm, friedman, paired_bootstrap
from densebench.report.tables import (
    Table,
    fmt,
    fmt_cell,
    fmt_count,
    grid_table,
    matrix_table,
    ranks_table,
    records_table,
    sota_table,
    strategy_means_table,
)

# The per-class score that corresponds to each summary metric.
PER_CLASS_MEASURE = {
    "mIoU": "IoU",
    "Frequency_Weighted_IoU": "IoU",
    "Mean_Dice": "Dice",
    "Mean_F1": "F1",
    "Mean_Precision": "Precision",
    "Mean_Recall": "Recall",
    "Mean_Accuracy": "Recall",
    "Pixel_Accuracy": "Recall",
}
SOURCE_TITLE = {PUBLISHED: "published", RUNS: "runs"}


@dataclass
class Options:
    metric: str = "Mean_Dice"
    per_class: list[str] | None = None  # datasets; None = every dataset of the runs
    paired: list[tuple[str, str]] = field(default_factory=list)
    n_resamples: int = 1000
    bootstrap_seed: int = 0
    alpha: float = 0.05
    plots: bool = True
    flops_size: int | None = None  # count backbone FLOPs for the scaling plot at this image side; None = off
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    metric: str
    tables: list[Table]
    plots: list[plots.Plot]
    notes: list[str]
    document: dict[str, Any]
    results: Results


def _grid_json(cells: pd.DataFrame) -> dict[str, Any]:
    """{strategy: {dataset: {entry: {value, ci_lower, ci_upper, std, n_seeds, best}}}}."""
    out: dict[str, Any] = {}
    best = cells["value"] == cells.groupby(["strategy", "dataset"])["value"].transform("max")
    for r, is_best in zip(cells.itertuples(), best):
        out.setdefault(r.strategy, {}).setdefault(r.dataset, {})[r.entry] = {
            "value": jsonable(r.value),
            "ci_lower": jsonable(r.ci_lower),
            "ci_upper": jsonable(r.ci_upper),
            "std": jsonable(r.std),
            "n_seeds": int(r.n),
            "best": bool(is_best),
        }
    return out


def _problem_cells(problems: list[Problem]) -> dict[tuple[str, str, str], str]:
    return {(p.dataset, p.model, p.strategy): f"{p.status}: {p.error}" for p in problems}


def _value_note(source: str) -> str:
    """What the numbers of a table are: runs show the point estimate they printed, the paper its bootstrap means."""
    if source == PUBLISHED:
        return (
            "Values are the paper's published bootstrap means [95% bootstrap CI], as on the PFM-DenseBench "
            "website (not point estimates)."
        )
    return (
        "Value = the run's point estimate on the test set (what `densebench run` printed) [95% bootstrap CI]; "
        "several seeds: mean ± std (n) of the point estimates."
    )


class _View:
    """One leaderboard: a source's cells under one protocol, with the orders and labels its tables share.

    `key` names it in file names and report.json (`runs`, `runs_p2`, ...); `title` in headings.
    """

    def __init__(
        self,
        source: str,
        cells: pd.DataFrame,
        catalog: Catalog,
        problems: dict[tuple[str, str, str], str],
        key: str = "",
        protocol: str = "",
    ) -> None:
        self.source, self.cells, self.problems = source, cells, problems
        self.key = key or source
        self.protocol = protocol
        self.title = SOURCE_TITLE[source] + (f", protocol {protocol or 'defaults'}" if key and key != source else "")
        self.datasets = analysis.dataset_order(cells, catalog)
        self.strategies = analysis.strategy_order(cells, catalog)
        self.ranks = analysis.model_ranks(cells)
        self.entries = list(self.ranks["entry"]) + sorted(set(cells["entry"]) - set(self.ranks["entry"]))
        self.labels = dict(zip(cells["entry"], cells["label"]))
        self.strategy_labels = {s: catalog.display("strategy", s) for s in self.strategies}


class _Builder:
    def __init__(self, results: Results, catalog: Catalog, options: Options, out: Path) -> None:
        self.results, self.catalog, self.options, self.out = results, catalog, options, out
        self.tables: list[Table] = []
        self.plots: list[plots.Plot] = []
        self.notes: list[str] = []
        self.metric = options.metric
        self.doc: dict[str, Any] = {
            "metric": self.metric,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "densebench_version": densebench.__version__,
            "inputs": options.inputs,
            "sources": results.sources(),
        }
        metrics = set(results.values["metric"])
        if metrics and self.metric not in metrics:
            raise DenseBenchError(
                f"--metric {self.metric} is not in the results; choose one of: {', '.join(sorted(metrics))}"
            )
        self.all_cells = analysis.aggregate(results.values, catalog)
        self.cells = self.all_cells[self.all_cells["metric"] == self.metric]

    def plot(self, name: str, title: str, section: str, draw: Callable[[Path], Path], note: str = "") -> None:
        """Draw a figure into plots/<name>.{png,svg} (unless plots are off) and list it; a figure that
        cannot be drawn (plots.NotDrawn) becomes a note saying why."""
        if not self.options.plots:
            return
        try:
            path = draw(self.out / "plots" / name)
        except plots.NotDrawn as why:
            self.notes.append(f"Figure '{title}' not drawn: {why}")
            return
        self.plots.append(plots.Plot(name, title, section, path, note))

    def _d(self, kind: str, name: str) -> str:
        return self.catalog.display(kind, name)

    # --- per source -------------------------------------------------------------------------------------------
    def views(self, source: str) -> list[_View]:
        """One view per protocol of the source's leaderboard cells (most runs first); ablation-axis cells
        are left out of every leaderboard (they go to the ablation plots), with a note."""
        cells = self.cells[self.cells["source"] == source]
        axes = cells[cells["axes"] != ""]
        if len(axes):
            runs = int(axes["n"].sum())
            self.notes.append(
                f"{runs} run(s) ({SOURCE_TITLE[source]}) vary an ablation axis ("
                + "; ".join(sorted(set(axes["axes"])))
                + "): they are in the ablation figures, "
                "not in the leaderboards."
            )
        cells = cells[cells["axes"] == ""]
        counts = cells.groupby("protocol")["n"].sum().sort_values(ascending=False, kind="stable")
        protocols = sorted(counts.index, key=lambda p: (-counts[p], p != "", p))
        problems = _problem_cells(self.results.problems) if source == RUNS else {}
        if len(protocols) > 1:
            self.notes.append(
                f"The {SOURCE_TITLE[source]} were made under {len(protocols)} protocols; runs of "
                "different protocols are never ranked together, so each has its own leaderboard: "
                + "; ".join(f"{p or 'defaults'} ({int(counts[p])} runs)" for p in protocols)
                + "."
            )
        return [
            _View(
                source,
                cells[cells["protocol"] == p],
                self.catalog,
                problems,
                source if i == 0 else f"{source}_p{i + 1}",
                p,
            )
            for i, p in enumerate(protocols)
        ] or [_View(source, cells, self.catalog, problems)]

    def source(self, source: str) -> None:
        for v in self.views(source):
            self.view(v)

    def view(self, v: _View) -> None:
        source = v.key
        sota = analysis.dataset_sota(v.cells)
        own = self.all_cells[
            (self.all_cells["source"] == v.source)
            & (self.all_cells["protocol"] == v.protocol)
            & (self.all_cells["axes"] == "")
        ]
        summary = analysis.strategy_summary(own, v.cells, sota)
        self.leaderboard(v, sota, summary)
        self.main_tables(v)
        statistics = self.statistics(v, v.cells, v.labels, v.strategy_labels)
        scaling = self.source_plots(v)
        self.doc.setdefault("dataset_sota", {})[source] = {
            r.dataset: {
                "model": r.model,
                "variant": r.variant,
                "strategy": r.strategy,
                "value": jsonable(r.value),
                "ci_lower": jsonable(r.ci_lower),
                "ci_upper": jsonable(r.ci_upper),
                "n_seeds": r.n,
                "tied_with": r.tied_with,
            }
            for r in sota.itertuples()
        }
        self.doc.setdefault("model_ranks", {})[source] = [
            {
                "model": r.entry,
                "base_model": r.model,
                "variant": r.variant,
                "display_name": r.label,
                "avg_rank": jsonable(r.avg_rank),
                "n_cells": int(r.n_cells),
                "by_category": {c: jsonable(v.ranks.loc[r.Index, c]) for c in v.ranks.attrs.get("categories", [])},
            }
            for r in v.ranks.itertuples()
        ]
        self.doc.setdefault("strategy_summary", {})[source] = summary
        self.doc.setdefault("main_tables", {})[source] = _grid_json(v.cells)
        self.doc.setdefault("statistics", {})[source] = statistics
        self.doc.setdefault("scaling", {})[source] = scaling
        self.doc.setdefault("missing_cells", {})[source] = analysis.missing_cells(v.cells, set(v.problems))
        self.doc.setdefault("categories", {}).update({d: self.catalog.category(d) for d in v.datasets})
        self.doc.setdefault("protocols", {})[source] = v.protocol
        self.doc.setdefault("counts", {})[source] = {
            "results": int(v.cells["n"].sum())
            if v.source == RUNS
            else int(self.results.values.loc[self.results.values["source"] == v.source, "run"].nunique()),
            "cells": int(len(v.cells)),
            "datasets": len(v.datasets),
            "models": int(v.cells["model"].nunique()),
            "strategies": len(v.strategies),
        }

    def leaderboard(self, v: _View, sota: pd.DataFrame, summary: dict[str, Any]) -> None:
        section = f"Leaderboard ({v.title})"
        self.tables.append(
            ranks_table(
                f"model_ranks_{v.key}",
                f"Average rank over (dataset, strategy) cells ({v.title})",
                section,
                v.ranks,
                note=f"Within each cell models are ranked by {self.metric} (1 = best, ties share the average rank); "
                "category columns average the ranks of that category's cells. " + _value_note(v.source),
            )
        )
        self.tables.append(
            sota_table(
                f"dataset_sota_{v.key}",
                f"Best cell per dataset ({v.title})",
                section,
                sota,
                analysis.best_per_strategy(v.cells),
                v.strategies,
                v.datasets,
                self.catalog,
            )
        )
        self.tables.append(
            strategy_means_table(
                f"strategy_means_{v.key}",
                f"Mean per strategy over models and datasets ({v.title})",
                section,
                summary,
                v.strategies,
                list(dict.fromkeys(self.results.values["metric"])),
                self.catalog,
            )
        )
        self.tables.append(
            matrix_table(
                f"model_strategy_means_{v.key}",
                f"Mean {self.metric} per model and strategy over datasets ({v.title})",
                section,
                summary["model_means"],
                v.entries,
                v.strategies,
                v.labels,
                v.strategy_labels,
                "Model",
            )
        )
        if summary["wins"]:
            won = "Datasets won (best cell)"
            wins = {**summary["wins"], "Total": summary["wins_total"], won: summary["sota_strategy_counts"]}
            self.tables.append(
                matrix_table(
                    f"strategy_wins_{v.key}",
                    f"Which strategy wins how often, per model ({v.title})",
                    section,
                    wins,
                    [*[e for e in v.entries if e in summary["wins"]], "Total", won],
                    v.strategies,
                    v.labels,
                    v.strategy_labels,
                    "Model",
                    digits=None,
                    note="A win: the best strategy of one (dataset, model) pair "
                    "among those run (tied strategies each win); the last row counts datasets whose best cell uses it.",
                )
            )
            self.tables[-1].footer = 2

    def main_tables(self, v: _View) -> None:
        """Per strategy datasets × models, then the same per dataset category (when there are several)."""
        categories = sorted({self.catalog.category(d) for d in v.datasets}, key=analysis.category_sort_key)
        groups = [("", f"Main tables ({v.title})", v.datasets)]
        if len(categories) > 1:
            groups += [
                (c, f"Per category ({v.title})", [d for d in v.datasets if self.catalog.category(d) == c])
                for c in categories
            ]
        for category, section, datasets in groups:
            for strategy in v.strategies:
                failed = {(d, m): e for (d, m, s), e in v.problems.items() if s == strategy}
                name = f"main_{v.key}_{strategy}" if not category else f"category_{v.key}_{category.lower()}_{strategy}"
                prefix = f"{category} datasets, " if category else ""
                self.tables.append(
                    grid_table(
                        name,
                        f"{prefix}{self._d('strategy', strategy)}: {self.metric} ({v.title})",
                        section,
                        v.cells[v.cells["strategy"] == strategy],
                        datasets,
                        v.entries,
                        self.catalog,
                        failed,
                        note="" if category else "Bold: best model of the dataset. " + _value_note(v.source),
                    )
                )

    def source_plots(self, v: _View) -> dict[str, Any]:
        """Strategy box plots and the scaling analysis (returned for report.json)."""
        section = f"Plots ({v.title})"
        self.plot(
            f"strategy_boxplots_{v.key}",
            f"{self.metric} by strategy per dataset ({v.title})",
            section,
            lambda path: plots.strategy_boxplots(v.cells, v.datasets, v.strategies, self.catalog, self.metric, path),
        )
        scaling = plots.scaling(v.cells, v.strategies, self.flops(v))
        note = ""
        if scaling["skipped_no_params"]:
            where = (
                "add published_params to configs/model/<name>.yaml"
                if v.source == PUBLISHED
                else "their metrics.json has no model.params.backbone_total"
            )
            note = f"Left out of the scaling analysis (no parameter count; {where}): " + ", ".join(
                scaling["skipped_no_params"]
            )
            self.notes.append(f"{v.title}: {note}")
        self.plot(
            f"scaling_{v.key}",
            f"{self.metric} vs backbone parameters ({v.title})",
            section,
            lambda path: plots.scaling_plot(
                scaling, v.labels, self.catalog, self.metric, path, self.options.flops_size
            ),
            note,
        )
        return scaling

    def flops(self, v: _View) -> dict[str, float] | None:
        """Forward FLOPs per model at `flops_size` (meta device, from the runs' or the catalog's model configs)."""
        if not self.options.flops_size:
            return None
        from densebench.bench.flops import flops_by_model

        models = sorted(set(v.cells.loc[v.cells["variant"] == "", "model"]))
        run_cfgs = {d["run"]["model"]: (d.get("config") or {}).get("model") for d in self.results.details.values()}
        cfgs = {m: run_cfgs.get(m) if v.source == RUNS else self.catalog.configs["model"].get(m) for m in models}
        counted, failed = flops_by_model(cfgs, int(self.options.flops_size))
        self.doc.setdefault("flops", {})[v.source] = {
            "input_size": int(self.options.flops_size),
            "flops": counted,
            "not_counted": failed,
        }
        if counted and failed:
            self.notes.append(f"{v.title}: backbone FLOPs not counted for " + ", ".join(sorted(failed)))
        return counted or None

    def statistics(
        self, v: _View, cells: pd.DataFrame, labels: dict[str, str], strategy_labels: dict[str, str]
    ) -> dict[str, Any]:
        source, title = v.key, v.title
        alpha = self.options.alpha
        tests = {"models": friedman(cells, ["dataset", "strategy"], "entry", alpha)}
        for strategy in strategy_labels:
            tests[f"models | {strategy}"] = friedman(cells[cells["strategy"] == strategy], ["dataset"], "entry", alpha)
        tests["strategies"] = friedman(cells, ["dataset", "entry"], "strategy", alpha)
        rows = []
        for name, test in tests.items():
            rows.append(
                {
                    "test": name,
                    "blocks": test["blocks"],
                    "k": test["k"],
                    "n_blocks": test["n_blocks"],
                    "incomplete": test["n_blocks_incomplete"],
                    "chi2": test.get("statistic", math.nan),
                    "p_value": test.get("p_value", math.nan),
                    "cd": test.get("critical_difference", math.nan),
                    "result": test.get("reason") or ("significant" if test["p_value"] < alpha else "not significant"),
                }
            )
            if test["status"] != "done":
                self.notes.append(
                    f"Friedman test '{self._test_name(name, strategy_labels)}' ({title}) not run: {test['reason']}."
                )
                continue
            names = labels if test["treatment"] == "entry" else strategy_labels
            ranks = {names.get(k, k): r for k, r in test["average_ranks"].items()}
            cliques = [[names.get(k, k) for k in c] for c in test["cliques"]]
            what = "models" if test["treatment"] == "entry" else "strategies"
            blocks = " × ".join(test["blocks"].split(" × "))
            heading = (
                f"{self._test_name(name, strategy_labels)}: {test['k']} {what} ranked over N = {test['n_blocks']} "
                f"blocks ({blocks} cells)\nNemenyi CD (α={alpha}); Friedman p = {test['p_value']:.2g}"
            )
            self.plot(
                "cd_" + source + "_" + name.replace(" | ", "_"),
                f"Critical difference: {name} ({title})",
                f"Statistics ({title})",
                functools.partial(plots.cd_diagram, ranks, test["critical_difference"], cliques, heading),
            )
        self.tables.append(
            records_table(
                f"friedman_{source}",
                f"Friedman tests with Nemenyi critical difference ({title})",
                f"Statistics ({title})",
                rows,
                {
                    "test": "Test",
                    "blocks": "Blocks",
                    "k": "k",
                    "n_blocks": "N",
                    "incomplete": "Incomplete blocks",
                    "chi2": "χ²",
                    "p_value": "p",
                    "cd": "CD",
                    "result": "Result",
                },
                note="Treatments in under half of the blocks, then blocks missing a treatment, are left out. Two "
                "treatments differ (Nemenyi) when their average ranks differ by more than CD; the diagrams join "
                "groups that do not.",
            )
        )
        for name, test in tests.items():
            if test["left_out"]:
                names = labels if test["treatment"] == "entry" else strategy_labels
                self.notes.append(
                    f"Friedman test '{self._test_name(name, strategy_labels)}' ({title}) left out "
                    "(in under half of the blocks): " + ", ".join(names.get(t, t) for t in test["left_out"])
                )
        return tests

    def _test_name(self, name: str, strategy_labels: dict[str, str]) -> str:
        """`models | lora` → `models, LoRA only` (display names)."""
        head, _, strategy = name.partition(" | ")
        return f"{head}, {strategy_labels.get(strategy, strategy)} only" if strategy else head

    # --- across sources ---------------------------------------------------------------------------------------
    def comparison(self) -> None:
        comp = analysis.compare_with_published(self.cells)
        if comp.empty:
            return
        rows = [
            {
                "dataset": self._d("dataset", r.dataset),
                "model": r.label,
                "strategy": self._d("strategy", r.strategy),
                "ours": fmt_cell(r.value, r.ci_lower, r.ci_upper, r.std, r.n),
                "published": fmt_cell(r.value_published, r.ci_lower_published, r.ci_upper_published),
                "delta": r.delta,
                "overlap": "yes" if r.cis_overlap is True else "no" if r.cis_overlap is False else "—",
            }
            for r in comp.itertuples()
        ]
        data = comp[
            [
                "dataset",
                "model",
                "variant",
                "strategy",
                "value",
                "ci_lower",
                "ci_upper",
                "n",
                "value_published",
                "ci_lower_published",
                "ci_upper_published",
                "delta",
                "cis_overlap",
            ]
        ]
        self.tables.append(
            records_table(
                "published_comparison",
                f"Runs vs published: {self.metric}",
                "Runs vs published",
                rows,
                {
                    "dataset": "Dataset",
                    "model": "Model",
                    "strategy": "Strategy",
                    "ours": "Ours",
                    "published": "Published",
                    "delta": "Δ (ours − published)",
                    "overlap": "CIs overlap",
                },
                data=data,
                label_columns=3,
                note="Ours: each run's point estimate [95% bootstrap CI]. Published: the paper's bootstrap means "
                "[95% CI], which can differ from a point estimate by a few thousandths; Δ compares the two as given.",
            )
        )
        self.doc["published_comparison"] = [{k: jsonable(v) for k, v in row.items()} for row in data.to_dict("records")]

    def per_class(self) -> None:
        pc = self.results.per_class
        if pc.empty:
            return
        measure = PER_CLASS_MEASURE.get(self.metric, "Dice")
        datasets = self.options.per_class or sorted(pc["dataset"].unique())
        unknown = sorted(set(datasets) - set(pc["dataset"]))
        if unknown:
            raise DenseBenchError(
                f"--per-class {', '.join(unknown)}: no run with per-class metrics; runs have "
                f"{', '.join(sorted(pc['dataset'].unique()))}"
            )
        doc = {}
        for dataset in datasets:
            sub = pc[(pc["dataset"] == dataset) & (pc["measure"] == measure)]
            agg = sub.groupby(
                ["model", "variant", "strategy", "protocol", "axes", "class", "class_index"], as_index=False
            )["value"].mean()
            agg["column"] = [
                " · ".join(
                    [self._d("model", m) + (f" [{v}]" if v else ""), self._d("strategy", s), *[x for x in (p, a) if x]]
                )
                for m, v, s, p, a in zip(agg["model"], agg["variant"], agg["strategy"], agg["protocol"], agg["axes"])
            ]
            classes = agg.sort_values("class_index")["class"].drop_duplicates().tolist()
            columns = sorted(agg["column"].unique())
            matrix: dict[str, dict[str, float]] = {}
            for name, column, value in zip(agg["class"], agg["column"], agg["value"]):
                matrix.setdefault(name, {})[column] = value
            by_run = {c: {k: matrix[k][c] for k in classes if c in matrix.get(k, {})} for c in columns}
            # a row per model · strategy and a column per class: many runs make a long table, never a wide one
            self.tables.append(
                matrix_table(
                    f"per_class_{dataset}",
                    f"{self._d('dataset', dataset)}: per-class {measure}",
                    "Per class",
                    by_run,
                    columns,
                    classes,
                    {},
                    {},
                    "Model · strategy",
                    best="column",
                    note="Mean over seeds; bold: best per class.",
                )
            )
            doc[dataset] = {"measure": measure, "values": matrix}
        self.doc["per_class"] = doc

    def instance(self) -> None:
        inst = self.results.instance
        if inst.empty:
            return
        cells = analysis.aggregate(inst, self.catalog)
        metrics = list(dict.fromkeys(inst["metric"]))
        rows: list[dict[str, Any]] = []
        doc: dict[str, Any] = {}
        for (dataset, entry, strategy, protocol, axes), g in cells.groupby(
            ["dataset", "entry", "strategy", "protocol", "axes"], sort=True
        ):
            by_metric = {r.metric: r for r in g.itertuples()}
            first = g.iloc[0]
            rows.append(
                {
                    "dataset": self._d("dataset", dataset),
                    "model": " · ".join(x for x in (first["label"], protocol, axes) if x),
                    "strategy": self._d("strategy", strategy),
                    **{
                        m: fmt_cell(r.value, r.ci_lower, r.ci_upper, r.std, r.n) if (r := by_metric.get(m)) else "—"
                        for m in metrics
                    },
                }
            )
            doc.setdefault(dataset, {}).setdefault(strategy, {})[
                " · ".join(x for x in (entry, protocol, axes) if x)
            ] = {
                m: {
                    "value": jsonable(r.value),
                    "ci_lower": jsonable(r.ci_lower),
                    "ci_upper": jsonable(r.ci_upper),
                    "n_seeds": int(r.n),
                }
                for m, r in by_metric.items()
            }
        self.tables.append(
            records_table(
                "instance_metrics",
                "Instance metrics (runs that computed them)",
                "Instance metrics",
                rows,
                {"dataset": "Dataset", "model": "Model", "strategy": "Strategy", **{m: m for m in metrics}},
                data=cells,
                label_columns=3,
            )
        )
        self.doc["instance"] = doc

    def paired(self) -> None:
        results = []
        for spec_a, spec_b in self.options.paired:
            a, b = self._arm(spec_a), self._arm(spec_b)
            if a.dataset != b.dataset:
                raise DenseBenchError(
                    f"--paired {spec_a} {spec_b}: the runs are on different datasets "
                    f"({a.dataset}, {b.dataset}); compare two runs on one dataset"
                )
            result = paired_bootstrap(a, b, self.metric, self.options.n_resamples, self.options.bootstrap_seed)
            results.append(result)
            self.notes.append(f"Paired bootstrap on {result['n_images']} images: {result['verdict']}")
        if not results:
            return
        rows = [
            {
                "a": r["a"],
                "b": r["b"],
                "n": r["n_images"],
                "a_val": f"{fmt(r['a_point'])} [{fmt(r['a_ci'][0], 3)}, {fmt(r['a_ci'][1], 3)}]",
                "b_val": f"{fmt(r['b_point'])} [{fmt(r['b_ci'][0], 3)}, {fmt(r['b_ci'][1], 3)}]",
                "diff": f"{r['difference_mean']:+.4f} [{r['difference_ci'][0]:+.4f}, {r['difference_ci'][1]:+.4f}]",
                "p": r["p_value"],
                "verdict": r["verdict"],
            }
            for r in results
        ]
        self.tables.append(
            records_table(
                "paired_bootstrap",
                f"Paired bootstrap ({self.metric}; same image resamples for both arms)",
                "Statistics",
                rows,
                {
                    "a": "A",
                    "b": "B",
                    "n": "Images",
                    "a_val": "A [95% CI]",
                    "b_val": "B [95% CI]",
                    "diff": "A − B [95% CI]",
                    "p": "p",
                    "verdict": "Verdict",
                },
                data=pd.DataFrame(results),
                label_columns=2,
            )
        )
        self.doc.setdefault("statistics", {})["paired_bootstrap"] = results

    def _arm(self, spec: str) -> Arm:
        """A run directory, or DATASET/MODEL/STRATEGY[/seedN] among the loaded runs."""
        path = Path(spec)
        if (path / "metrics.json").is_file() or (path / "confusion_per_image.npz").is_file():
            doc = self.results.details.get(str(path.resolve()))
            if doc is None and (path / "metrics.json").is_file():
                doc = json.loads((path / "metrics.json").read_text())
            run = (doc or {}).get("run", {})
            label = (
                f"{self._d('model', run['model'])} · {self._d('strategy', run['adapter'])} · seed {run.get('seed')}"
                if run
                else str(path)
            )
            return Arm(label, path, str(run.get("dataset", "")))
        parts = spec.strip("/").split("/")
        if len(parts) not in (3, 4):
            raise DenseBenchError(f"--paired {spec}: give a run directory or DATASET/MODEL/STRATEGY[/seedN]")
        runs = self.results.values[self.results.values["source"] == RUNS].drop_duplicates("run")
        match = runs[(runs["dataset"] == parts[0]) & (runs["model"] == parts[1]) & (runs["strategy"] == parts[2])]
        if len(parts) == 4:
            match = match[match["seed"].map(lambda s: f"seed{int(s)}") == parts[3]]
        if match.empty:
            raise DenseBenchError(f"--paired {spec}: no finished run matches; runs are under the RUNS_DIR arguments")
        if len(match) > 1:
            options = ", ".join(
                f"seed{int(r.seed)}{f' [{r.variant}]' if r.variant else ''}" for r in match.itertuples()
            )
            raise DenseBenchError(
                f"--paired {spec}: {len(match)} runs match ({options}); add /seedN or pass a run directory"
            )
        r = match.iloc[0]
        label = f"{self._d('model', r['model'])} · {self._d('strategy', r['strategy'])}"
        return Arm(label, Path(r["run"]), str(r["dataset"]))

    def runs_and_problems(self) -> None:
        values = self.results.values
        own = values[(values["source"] == RUNS) & (values["metric"] == self.metric)]
        rows = [
            {
                "dataset": self._d("dataset", r.dataset),
                "model": self._d("model", r.model),
                "strategy": self._d("strategy", r.strategy),
                "seed": int(r.seed),
                "variant": " ".join(x for x in (r.variant, r.protocol, r.axes) if x),
                "value": fmt_cell(r.value, r.ci_lower, r.ci_upper),
                "input": r.input_size,
                "params": r.params,
                "run": r.run,
            }
            for r in own.itertuples()
        ]
        if rows:
            table = records_table(
                "runs",
                f"Finished runs ({self.metric})",
                "Runs",
                rows,
                {
                    "dataset": "Dataset",
                    "model": "Model",
                    "strategy": "Strategy",
                    "seed": "Seed",
                    "variant": "Settings",
                    "value": self.metric,
                    "input": "Input size",
                    "params": "Backbone params",
                    "run": "Run directory",
                },
                data=own.drop(columns=["metric"]).reset_index(drop=True),
                label_columns=3,
            )
            table.frame["Input size"] = [fmt(v, 0) for v in own["input_size"]]
            table.frame["Backbone params"] = [fmt_count(v) for v in own["params"]]
            table.extra["run_ids"] = list(own["run"])
            self.tables.append(table)
        problems = self.results.problems
        if problems:
            self.tables.append(
                records_table(
                    "problems",
                    "Runs without results",
                    "Runs",
                    [vars(p) for p in problems],
                    {
                        "status": "Status",
                        "dataset": "Dataset",
                        "model": "Model",
                        "strategy": "Strategy",
                        "seed": "Seed",
                        "error": "Error",
                        "run_dir": "Run directory",
                    },
                )
            )
            self.notes.append(
                f"{len(problems)} run(s) without results: "
                + ", ".join(f"{sum(p.status == s for p in problems)} {s}" for s in sorted({p.status for p in problems}))
            )
        self.doc["problems"] = [vars(p) for p in problems]

    def ablations(self) -> None:
        """Metric vs adapter rank and vs input size; a line joins only runs that differ in the plotted axis."""
        runs = self.cells[self.cells["source"] == RUNS]
        if runs.empty:
            return
        self.plot(
            "rank_ablation",
            f"{self.metric} vs adapter rank (runs)",
            "Plots (runs)",
            lambda path: plots.rank_ablation(runs, self.catalog, self.metric, path),
        )
        self.plot(
            "input_size",
            f"{self.metric} vs input size (runs)",
            "Plots (runs)",
            lambda path: plots.input_size_plot(runs, self.catalog, self.metric, path),
        )

    def build(self) -> Report:
        if self.results.shared:
            self.notes.append(
                "Settings every run shares (left out of the labels): "
                + "; ".join(f"{kind}: {text}" for kind, text in sorted(self.results.shared.items()))
                + "."
            )
        self.doc["shared_settings"] = self.results.shared
        for source in self.results.sources():
            self.source(source)
        self.comparison()
        published_rank.add_to_report(self)
        self.per_class()
        self.instance()
        self.paired()
        self.ablations()
        self.runs_and_problems()
        missing = {s: len(v) for s, v in self.doc.get("missing_cells", {}).items() if v}
        for source, n in missing.items():
            self.notes.append(f"{n} cell(s) of the {source} grid (datasets × models × strategies) have no result.")
        self.doc["notes"] = self.notes
        self.doc["plots"] = [f"plots/{p.name}.png" for p in self.plots]
        self.doc["tables"] = [t.name for t in self.tables]
        return Report(self.metric, self.tables, self.plots, self.notes, self.doc, self.results)


def build_report(results: Results, catalog: Catalog, options: Options, out: Path) -> Report:
    if results.values.empty and not results.problems:
        raise DenseBenchError("no results found: pass run directories that hold metrics.json files, or --published DIR")
    return _Builder(results, catalog, options, out).build()
