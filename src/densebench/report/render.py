"""Text outputs of a report: report.md, csv/<table>.csv, tables.tex (booktabs) and report.json."""

from __future__ import annotations

import json
from pathlib import Path

from densebench.report.analysis import jsonable
from densebench.report.build import Report
from densebench.report.tables import Table


def write_json(report: Report, out: Path) -> Path:
    path = out / "report.json"
    path.write_text(json.dumps(jsonable(report.document), indent=1, allow_nan=False) + "\n")
    return path


def write_csv(report: Report, out: Path) -> list[Path]:
    folder = out / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in report.tables:
        path = folder / f"{table.name}.csv"
        table.data.to_csv(path, index=False)
        paths.append(path)
    return paths


def _sections(report: Report) -> list[str]:
    return list(dict.fromkeys([*(t.section for t in report.tables), *(p.section for p in report.plots)]))


# --- Markdown ---------------------------------------------------------------------------------------------------
def _md_cell(text: str, bold: bool) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if bold and text and text != "—" else text


def markdown_table(table: Table) -> str:
    ncols = len(table.frame.columns)
    lines = [
        "| " + " | ".join(_md_cell(c, False) for c in table.frame.columns) + " |",
        "|" + "|".join(":--" if i < table.label_columns else "--:" for i in range(ncols)) + "|",
    ]
    for row, marks in zip(table.frame.itertuples(index=False), table.best.itertuples(index=False)):
        lines.append("| " + " | ".join(_md_cell(v, bool(b)) for v, b in zip(row, marks)) + " |")
    return "\n".join(lines)


def write_markdown(report: Report, out: Path) -> Path:
    doc = report.document
    lines = [
        f"# DenseBench report: {report.metric}",
        "",
        f"Generated {doc['generated']} by densebench {doc['densebench_version']}. Sources: "
        + ", ".join(
            f"{s} ({doc['counts'][s]['results']} results)" for s in doc["sources"] if s in doc.get("counts", {})
        )
        + ".",
        "",
    ]
    if report.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in report.notes], ""]
    for section in _sections(report):
        lines += [f"## {section}", ""]
        for table in (t for t in report.tables if t.section == section):
            lines += [f"### {table.title}", ""]
            if table.note:
                lines += [table.note, ""]
            lines += [markdown_table(table), ""]
        for plot in (p for p in report.plots if p.section == section):
            lines += [
                f"### {plot.title}",
                "",
                f"![{plot.title}](plots/{plot.name}.png) ([SVG](plots/{plot.name}.svg))",
                "",
            ]
            if plot.note:
                lines += [plot.note, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


# --- LaTeX ------------------------------------------------------------------------------------------------------
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "—": "--",
    "−": "$-$",
    "Δ": r"$\Delta$",
    "χ": r"$\chi$",
    "²": r"$^2$",
    "·": r"$\cdot$",
    "α": r"$\alpha$",
    "≥": r"$\geq$",
    "×": r"$\times$",
    "ρ": r"$\rho$",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def latex_table(table: Table) -> str:
    ncols = len(table.frame.columns)
    spec = "l" * table.label_columns + "r" * (ncols - table.label_columns)
    body = []
    for i, (row, marks) in enumerate(zip(table.frame.itertuples(index=False), table.best.itertuples(index=False))):
        if table.footer and i == len(table.frame) - table.footer:
            body.append(r"\midrule")
        cells = [f"\\textbf{{{tex_escape(v)}}}" if b else tex_escape(v) for v, b in zip(row, marks)]
        body.append(" & ".join(cells) + r" \\")
    tabular = "\n".join(
        [
            f"\\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(tex_escape(c) for c in table.frame.columns) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
        ]
    )
    if ncols > 7:
        tabular = "\\resizebox{\\linewidth}{!}{%\n" + tabular + "}"
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            f"\\caption{{{tex_escape(table.title)}}}",
            f"\\label{{tab:{table.name}}}",
            tabular,
            r"\end{table}",
            "",
        ]
    )


def write_tex(report: Report, out: Path) -> Path:
    parts = [
        f"% DenseBench report tables ({report.metric}). Needs \\usepackage{{booktabs}} and \\usepackage{{graphicx}}.",
        "",
    ]
    parts += [latex_table(t) for t in report.tables if t.section != "Runs"]
    path = out / "tables.tex"
    path.write_text("\n".join(parts))
    return path
