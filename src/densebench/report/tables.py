"""Report tables: what each shows (display strings, sort keys, best marks) and its tidy data for CSV.

A `Table` is format-neutral; `render.py` and `html.py` turn it into Markdown, LaTeX, CSV and HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from densebench.names import Catalog

MISSING = "—"


@dataclass
class Table:
    name: str  # file stem (CSV) and HTML anchor
    title: str
    section: str
    frame: pd.DataFrame  # display strings, label columns first
    sort: pd.DataFrame  # per cell: float for numbers (NaN sorts last), str otherwise
    best: pd.DataFrame  # per cell: bold?
    data: pd.DataFrame  # tidy numeric rows for CSV and JSON
    note: str = ""
    hints: pd.DataFrame | None = None  # per cell hover text (HTML), e.g. a failed run's error
    label_columns: int = 1
    footer: int = 0  # last rows that summarise the others (means, totals): they stay last when sorting
    extra: dict[str, Any] = field(default_factory=dict)


def fmt(value: float, digits: int = 4) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_count(value: float) -> str:
    """A parameter count in readable units: 86.6M, 1.13B (— when unknown)."""
    if value is None or math.isnan(value):
        return MISSING
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:g}"


def fmt_cell(value: float, lo: float = math.nan, hi: float = math.nan, std: float = math.nan, n: int = 1) -> str:
    """`0.6590 [0.612, 0.703]` for one run (bootstrap CI), `0.6590 ± 0.0100 (n=3)` for several seeds."""
    if value is None or math.isnan(value):
        return MISSING
    if n > 1:
        return f"{value:.4f} ± {std:.4f} (n={n})"
    if not (math.isnan(lo) or math.isnan(hi)):
        return f"{value:.4f} [{lo:.3f}, {hi:.3f}]"
    return f"{value:.4f}"


def make_table(
    name: str,
    title: str,
    section: str,
    frame: pd.DataFrame,
    *,
    sort: pd.DataFrame | None = None,
    best: pd.DataFrame | None = None,
    data: pd.DataFrame | None = None,
    note: str = "",
    hints: pd.DataFrame | None = None,
    label_columns: int = 1,
) -> Table:
    """A table whose unspecified parts default to: sort by the text, nothing bold, CSV = what is shown."""
    frame = frame.reset_index(drop=True)
    if sort is None:
        sort = frame.copy()
    if best is None:
        best = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    return Table(
        name,
        title,
        section,
        frame,
        sort.reset_index(drop=True),
        best.reset_index(drop=True),
        frame if data is None else data,
        note,
        hints,
        label_columns,
    )


def grid_table(
    name: str,
    title: str,
    section: str,
    cells: pd.DataFrame,
    datasets: list[str],
    entries: list[str],
    catalog: Catalog,
    failed: dict[tuple[str, str], str] | None = None,
    note: str = "",
) -> Table:
    """Datasets × entries with value and CI (or mean ± std over seeds); the best entry of each dataset is bold.

    A last row averages each column over the datasets every column has (so the means are comparable).
    `failed` maps (dataset, model) to the error of a run that produced nothing for that cell.
    """
    failed = failed or {}
    by_key = {(r.dataset, r.entry): r for r in cells.itertuples()}
    labels = {r.entry: r.label for r in cells.itertuples()}
    models = {r.entry: r.model for r in cells.itertuples()}
    columns = [labels.get(e, catalog.display("model", e)) for e in entries]
    shown, keys, bold, hint = [], [], [], []
    for dataset in datasets:
        row_cells = [by_key.get((dataset, e)) for e in entries]
        values = [c.value if c is not None else math.nan for c in row_cells]
        top = np.nanmax(values) if not all(math.isnan(v) for v in values) else math.nan
        texts, tips = [], []
        for entry, c in zip(entries, row_cells):
            error = failed.get((dataset, models.get(entry, entry)))
            if c is None:
                texts.append("failed" if error else MISSING)
                tips.append(error or "")
            elif math.isnan(c.value):
                texts.append("undefined")
                tips.append("the run finished but the metric is undefined (null in metrics.json)")
            else:
                texts.append(fmt_cell(c.value, c.ci_lower, c.ci_upper, c.std, c.n))
                tips.append(f"seeds {c.seeds}" if c.n > 1 else "")
        shown.append([catalog.display("dataset", dataset), *texts])
        keys.append([catalog.display("dataset", dataset), *values])
        bold.append([False, *[v == top for v in values]])
        hint.append(["", *tips])
    pivot = pd.DataFrame(keys, columns=["Dataset", *entries]).set_index("Dataset")
    common = pivot.dropna()
    if len(common) and len(entries):
        means = common.mean()
        label = "Mean" if len(common) == len(pivot) else f"Mean ({len(common)} common datasets)"
        shown.append([label, *[fmt(v) for v in means]])
        keys.append([label, *means.tolist()])
        bold.append([False, *(means == means.max()).tolist()])
        hint.append(["", *[""] * len(entries)])
    frame = pd.DataFrame(shown, columns=["Dataset", *columns])
    data = cells[cells["dataset"].isin(datasets)][
        ["dataset", "model", "variant", "strategy", "value", "std", "n", "ci_lower", "ci_upper"]
    ].copy()
    data["best"] = [bool(b) for b in data["value"] == data.groupby("dataset")["value"].transform("max")]
    table = make_table(
        name,
        title,
        section,
        frame,
        sort=pd.DataFrame(keys, columns=frame.columns),
        best=pd.DataFrame(bold, columns=frame.columns),
        data=data.reset_index(drop=True),
        note=note,
        hints=pd.DataFrame(hint, columns=frame.columns),
    )
    table.footer = len(shown) - len(datasets)
    return table


def ranks_table(name: str, title: str, section: str, ranks: pd.DataFrame, note: str = "") -> Table:
    categories = list(ranks.attrs.get("categories", []))
    shown, keys = [], []
    for pos, r in enumerate(ranks.itertuples(), start=1):
        cats = [ranks.loc[r.Index, c] for c in categories]
        shown.append(
            [str(pos), r.label, f"{r.avg_rank:.3f}", str(r.n_cells), fmt(r.mean_value), *[fmt(v, 2) for v in cats]]
        )
        keys.append([pos, r.label, r.avg_rank, r.n_cells, r.mean_value, *cats])
    columns = ["Pos", "Model", "Avg rank", "Cells", "Mean value", *categories]
    data = ranks[["entry", "model", "variant", "avg_rank", "n_cells", "mean_value", *categories]]
    return make_table(
        name,
        title,
        section,
        pd.DataFrame(shown, columns=columns),
        sort=pd.DataFrame(keys, columns=columns),
        data=data,
        note=note,
        label_columns=2,
    )


def sota_table(
    name: str,
    title: str,
    section: str,
    sota: pd.DataFrame,
    best: pd.DataFrame,
    strategies: list[str],
    datasets: list[str],
    catalog: Catalog,
) -> Table:
    """Per dataset the best cell overall, then the best entry of each strategy."""
    by_dataset = {r.dataset: r for r in sota.itertuples()}
    best_of = {(r.dataset, r.strategy): r for r in best.itertuples()}
    strategy_names = [catalog.display("strategy", s) for s in strategies]
    columns = [
        "Dataset",
        "Category",
        "Best model",
        "Strategy",
        "Value",
        "95% CI",
        *[f"Best {s}" for s in strategy_names],
    ]
    shown, keys = [], []
    for dataset in datasets:
        if dataset not in by_dataset:
            continue
        r = by_dataset[dataset]
        per = [best_of.get((dataset, s)) for s in strategies]
        shown.append(
            [
                catalog.display("dataset", dataset),
                catalog.category(dataset),
                r.label,
                catalog.display("strategy", r.strategy),
                fmt(r.value),
                f"[{fmt(r.ci_lower)}, {fmt(r.ci_upper)}]",
                *[f"{b.label} {fmt(b.value)}" if b is not None else MISSING for b in per],
            ]
        )
        keys.append([*shown[-1][:4], r.value, r.ci_lower, *[b.value if b is not None else math.nan for b in per]])
    return make_table(
        name, title, section, pd.DataFrame(shown, columns=columns), sort=pd.DataFrame(keys, columns=columns), data=sota
    )


def strategy_means_table(
    name: str,
    title: str,
    section: str,
    summary: dict[str, Any],
    strategies: list[str],
    metrics: list[str],
    catalog: Catalog,
) -> Table:
    """Strategies × metrics: mean over every (dataset, model) cell; the best strategy per metric is bold."""
    means = summary["means"]
    keys = [
        [
            catalog.display("strategy", s),
            *[means.get(s, {}).get(m) for m in metrics],
            means.get(s, {}).get("n_cells", 0),
        ]
        for s in strategies
    ]
    sort = pd.DataFrame(keys, columns=["Strategy", *metrics, "Cells"]).fillna(value=np.nan)
    best = pd.DataFrame(False, index=sort.index, columns=sort.columns)
    for m in metrics:
        col = pd.to_numeric(sort[m], errors="coerce")
        best[m] = col == col.max()
    frame = sort.copy()
    for m in metrics:
        frame[m] = [fmt(v) for v in pd.to_numeric(sort[m], errors="coerce")]
    frame["Cells"] = sort["Cells"].astype(int).astype(str)
    data = pd.DataFrame([{"strategy": s, **means.get(s, {})} for s in strategies])
    return make_table(name, title, section, frame, sort=sort, best=best, data=data)


def matrix_table(
    name: str,
    title: str,
    section: str,
    matrix: dict[str, dict[str, Any]],
    rows: list[str],
    columns: list[str],
    row_labels: dict[str, str],
    column_labels: dict[str, str],
    row_header: str,
    *,
    digits: int | None = 4,
    best: str | None = "row",
    note: str = "",
) -> Table:
    """rows × columns of numbers from {row: {column: value}}; bold = the row's (or column's) maximum.

    `digits=None` prints integers (counts, missing = 0).
    """
    values = pd.DataFrame(
        [[matrix.get(r, {}).get(c, math.nan) for c in columns] for r in rows], index=rows, columns=columns, dtype=float
    )
    marks = pd.DataFrame(False, index=values.index, columns=values.columns)
    if best == "row":
        marks = values.eq(values.max(axis=1), axis=0)
    elif best == "column":
        marks = values.eq(values.max(axis=0), axis=1)
    labels = [row_labels.get(r, r) for r in values.index]
    header = [row_header, *[column_labels.get(c, c) for c in columns]]

    def text(v: float) -> str:
        if digits is None:
            return "0" if math.isnan(v) else str(int(v))
        return fmt(v, digits)

    frame = pd.DataFrame(
        [[label, *[text(v) for v in row]] for label, row in zip(labels, values.to_numpy())], columns=header
    )
    sort = pd.DataFrame([[label, *row] for label, row in zip(labels, values.to_numpy())], columns=header)
    bold = pd.DataFrame([[False, *row] for row in marks.to_numpy()], columns=header)
    data = values.rename_axis(row_header.lower()).reset_index()
    return make_table(name, title, section, frame, sort=sort, best=bold, data=data, note=note)


def records_table(
    name: str,
    title: str,
    section: str,
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    *,
    data: pd.DataFrame | None = None,
    note: str = "",
    label_columns: int = 1,
) -> Table:
    """A list of records shown as they are: `columns` maps record keys to headers; floats get 4 digits."""
    keys = pd.DataFrame([[r.get(k) for k in columns] for r in rows], columns=list(columns.values()))
    frame = keys.copy()
    for col in frame.columns:
        frame[col] = [
            fmt(float(v)) if isinstance(v, (float, np.floating)) else (MISSING if v is None else str(v))
            for v in keys[col]
        ]
    sort = keys.map(
        lambda v: (
            math.nan
            if v is None
            else v
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            else str(v)
        )
    )
    return make_table(
        name,
        title,
        section,
        frame,
        sort=sort,
        data=pd.DataFrame(rows) if data is None else data,
        note=note,
        label_columns=label_columns,
    )
