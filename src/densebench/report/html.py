"""report.html: inline CSS and JS, works offline from a file:// URL. Figures and gallery panels are files
beside it (`plots/`, `gallery/`; each figure a thumbnail linking to the full image), which keeps a 70-run
report a few MB; `self_contained` embeds them as data URIs instead, for one file to mail. Tables sort by
clicking a header (numbers by value, missing last), filter by text and wrap instead of scrolling
sideways; every run of the user's own has a drill-down with all metrics, per-class scores and its
resolved config, titled with display names.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from html import escape
from pathlib import Path
from typing import Any

from densebench.report import gallery
from densebench.report.build import Report
from densebench.names import Catalog
from densebench.report.tables import Table, fmt

CSS = """
:root{--fg:#1d232b;--muted:#5b6673;--line:#d9dee4;--head:#f2f4f7;--best:#e7f4ea;--accent:#2f6db5}
*{box-sizing:border-box}body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0}
header{padding:16px 24px;border-bottom:1px solid var(--line)}h1{font-size:20px;margin:0 0 4px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px;z-index:2;
display:flex;flex-wrap:wrap;gap:4px 14px}nav a{color:var(--accent);text-decoration:none}
main{padding:8px 24px 40px}h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:18px 0 4px}.note{color:var(--muted);margin:2px 0 6px}
.wrap{max-width:100%}table{border-collapse:collapse;margin:4px 0 10px;font-variant-numeric:tabular-nums;max-width:100%}
th,td{border:1px solid var(--line);padding:3px 7px;overflow-wrap:anywhere}td.num{text-align:right}
td .ci{display:block;color:var(--muted);font-size:11px;white-space:nowrap}td.num{white-space:nowrap}
th{overflow-wrap:normal;word-break:normal;hyphens:auto}
th{background:var(--head);cursor:pointer;user-select:none;position:relative;padding-right:16px}
th[aria-sort=ascending]::after{content:"\\25B2";position:absolute;right:3px;font-size:9px}
th[aria-sort=descending]::after{content:"\\25BC";position:absolute;right:3px;font-size:9px}
td.best{background:var(--best);font-weight:600}tfoot td{background:#fafbfc;font-style:italic}
input.filter{margin:2px 0;padding:3px 6px;border:1px solid var(--line);border-radius:3px;width:260px}
figure{margin:10px 0 18px}figure img{max-width:100%;max-height:720px;border:1px solid var(--line)}figcaption{color:var(--muted)}
details.run{border:1px solid var(--line);border-radius:4px;margin:6px 0;padding:4px 8px}
details.run[open]{background:#fbfcfd}summary{cursor:pointer;overflow-wrap:anywhere}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px;white-space:pre-wrap;overflow-wrap:anywhere}
ul.notes li{margin:2px 0}
"""

JS = """
(function(){
  function key(cell){
    var v=cell.getAttribute('data-v');
    if(v===null){return {num:false,text:cell.textContent.trim().toLowerCase()};}
    if(v===''){return {num:true,missing:true};}
    return {num:true,value:parseFloat(v)};
  }
  function compare(a,b,asc){
    if(a.num&&b.num){
      if(a.missing||b.missing){return (a.missing?1:0)-(b.missing?1:0);}
      return asc?a.value-b.value:b.value-a.value;
    }
    var r=String(a.text||'').localeCompare(String(b.text||''),undefined,{numeric:true});
    return asc?r:-r;
  }
  function sortBy(table,col,th){
    var asc=th.getAttribute('aria-sort')!=='ascending';
    var heads=table.tHead.rows[0].cells;
    for(var i=0;i<heads.length;i++){heads[i].removeAttribute('aria-sort');}
    th.setAttribute('aria-sort',asc?'ascending':'descending');
    var body=table.tBodies[0];
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(r1,r2){return compare(key(r1.cells[col]),key(r2.cells[col]),asc);});
    rows.forEach(function(r){body.appendChild(r);});
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    if(!table.tHead){return;}
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
      th.addEventListener('click',function(){sortBy(table,col,th);});
    });
  });
  document.querySelectorAll('input.filter').forEach(function(input){
    var table=document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input',function(){
      var q=input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows,function(row){
        row.style.display=(!q||row.textContent.toLowerCase().indexOf(q)>=0)?'':'none';
      });
    });
  });
  function openTarget(){
    var id=decodeURIComponent(location.hash.slice(1));
    var el=id&&document.getElementById(id);
    if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView();}
  }
  window.addEventListener('hashchange',openTarget);
  openTarget();
})();
"""


def _number(value: Any) -> str | None:
    """data-v attribute for numeric sort keys ('' = missing); None for text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        return "" if math.isnan(v) else repr(v)
    return None


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def _cell_text(text: str) -> str:
    """`0.8500 [0.830, 0.870]` as the value with its CI on a second, smaller line (narrow columns)."""
    value, sep, ci = text.partition(" [")
    if sep and ci.endswith("]") and value.replace(".", "", 1).lstrip("-").isdigit():
        return f'{escape(value)}<span class="ci">[{escape(ci)}</span>'
    return escape(text)


def table_html(table: Table, run_anchor: dict[str, str] | None = None) -> str:
    tid = f"t-{_slug(table.name)}"
    head = "".join(f"<th scope=col>{escape(str(c))}</th>" for c in table.frame.columns)
    run_ids = table.extra.get("run_ids")
    if run_ids and run_anchor:
        head += "<th scope=col>Details</th>"
    rows = []
    n = len(table.frame)
    for i in range(n):
        cells = []
        for j, _col in enumerate(table.frame.columns):
            text = str(table.frame.iat[i, j])
            sort = _number(table.sort.iat[i, j])
            attrs = "" if sort is None else f' data-v="{escape(sort)}"'
            classes = [c for c, on in (("num", j >= table.label_columns), ("best", bool(table.best.iat[i, j]))) if on]
            if classes:
                attrs += f' class="{" ".join(classes)}"'
            hint = "" if table.hints is None else str(table.hints.iat[i, j])
            if hint:
                attrs += f' title="{escape(hint)}"'
            cells.append(f"<td{attrs}>{_cell_text(text)}</td>")
        if run_ids and run_anchor:
            anchor = run_anchor.get(run_ids[i], "")
            cells.append(f'<td><a href="#{anchor}">details</a></td>' if anchor else "<td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body_rows, foot_rows = rows[: n - table.footer], rows[n - table.footer :] if table.footer else []
    foot = f"<tfoot>{''.join(foot_rows)}</tfoot>" if foot_rows else ""
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f'<h3 id="{escape(_slug(table.name))}">{escape(table.title)}</h3>{note}'
        f'<input class="filter" type="search" placeholder="Filter rows…" data-table="{tid}" aria-label="Filter {escape(table.title)}">'
        f'<div class="wrap"><table class="sortable" id="{tid}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body_rows)}</tbody>{foot}</table></div>"
    )


def _small_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for j, v in enumerate(row):
            number = _number(v) if j else None
            text = fmt(float(v)) if number is not None and isinstance(v, float) else ("—" if v is None else str(v))
            attrs = "" if number is None else f' data-v="{escape(number)}" class="num"'
            cells.append(f"<td{attrs}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wrap"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def run_details(anchor: str, doc: dict[str, Any], gallery_html: str = "", catalog: Catalog | None = None) -> str:
    """One run's drill-down: summary metrics, per-class scores, instance metrics, facts and resolved config."""
    run, test = doc.get("run", {}), doc.get("test", {})
    catalog = catalog or Catalog()
    point = test.get("metrics") or {}
    boot = (test.get("bootstrap") or {}).get("metrics") or {}
    summary = [
        [
            k,
            point.get(k),
            (boot.get(k) or {}).get("mean"),
            (boot.get(k) or {}).get("ci_lower"),
            (boot.get(k) or {}).get("ci_upper"),
        ]
        for k in dict.fromkeys([*point, *boot])
    ]
    parts = [
        f"<h4>Test metrics ({escape(str(test.get('n_images', '?')))} images, {escape(str(test.get('eval_mode', '?')))})</h4>",
        _small_table(["Metric", "Point", "Bootstrap mean", "CI lower", "CI upper"], summary),
    ]
    per_class = test.get("per_class") or {}
    if per_class:
        measures = list(dict.fromkeys(m for scores in per_class.values() for m in (scores or {})))
        parts += [
            "<h4>Per class</h4>",
            _small_table(
                ["Class", *measures], [[name, *[(s or {}).get(m) for m in measures]] for name, s in per_class.items()]
            ),
        ]
    instance = test.get("instance")
    if instance:
        parts += ["<h4>Instance metrics</h4>", f"<pre>{escape(json.dumps(instance, indent=1))}</pre>"]
    parts.append(gallery_html)
    facts = {k: doc.get(k) for k in ("model", "data", "val", "timing", "memory", "device", "code") if doc.get(k)}
    parts += [
        "<details><summary>Model, data, timing, device</summary>",
        f"<pre>{escape(json.dumps(facts, indent=1))}</pre></details>",
        "<details><summary>Resolved config</summary>",
        f"<pre>{escape(json.dumps(doc.get('config', {}), indent=1))}</pre></details>",
    ]
    title = (
        f"{catalog.display('dataset', str(run.get('dataset')))} · {catalog.display('model', str(run.get('model')))}"
        f" · {catalog.display('strategy', str(run.get('adapter')))} · seed {run.get('seed')} — {run.get('run_dir', '')}"
    )
    return f'<details class="run" id="{anchor}"><summary>{escape(title)}</summary>{"".join(parts)}</details>'


def _figure_html(plot: Any, self_contained: bool) -> str:
    """A figure: embedded, or a thumbnail (the PNG scaled by the browser) linking to the full PNG and SVG."""
    note = f"<br>{escape(plot.note)}" if plot.note else ""
    rel = f"plots/{plot.name}"
    if self_contained:
        img = f'<img alt="{escape(plot.title)}" src="data:image/png;base64,{base64.b64encode(plot.path.read_bytes()).decode()}">'
        links = ""
    else:
        img = f'<a href="{escape(rel)}.png"><img alt="{escape(plot.title)}" loading="lazy" src="{escape(rel)}.png"></a>'
        links = f' (<a href="{escape(rel)}.png">PNG</a>, <a href="{escape(rel)}.svg">SVG</a>)'
    return f'<figure id="p-{_slug(plot.name)}">{img}<figcaption>{escape(plot.title)}{links}{note}</figcaption></figure>'


def write_html(report: Report, out: Path, catalog: Catalog | None = None, self_contained: bool = False) -> Path:
    """report.html; figures and gallery panels beside it (`plots/`, `gallery/`) or, with `self_contained`, inside it."""
    doc = report.document
    catalog = catalog or Catalog()
    anchors = {run_id: f"run-{i}" for i, run_id in enumerate(sorted(report.results.details))}
    sections = list(dict.fromkeys([*(t.section for t in report.tables), *(p.section for p in report.plots)]))
    assets = None if self_contained else out / "gallery"
    if assets is not None and assets.is_dir():
        shutil.rmtree(assets)  # panels of an earlier report in this folder
    galleries = gallery.Galleries(report.results.details, catalog, assets)
    if galleries.section:
        sections.append("Galleries")
    nav = "".join(f'<a href="#s-{_slug(s)}">{escape(s)}</a>' for s in sections)
    body = []
    if report.notes:
        body.append(
            '<h2 id="s-notes">Notes</h2><ul class="notes">'
            + "".join(f"<li>{escape(n)}</li>" for n in report.notes)
            + "</ul>"
        )
    for section in sections:
        body.append(f'<h2 id="s-{_slug(section)}">{escape(section)}</h2>')
        body += [table_html(t, anchors) for t in report.tables if t.section == section]
        body += [_figure_html(plot, self_contained) for plot in report.plots if plot.section == section]
        if section == "Galleries":
            body.append(
                '<p class="note">The same seeded test images for every run of a dataset: image, ground truth, '
                "then each run's prediction.</p>" + galleries.section
            )
        if section == "Runs" and report.results.details:
            body.append("<h3>Run details</h3>")
            body += [
                run_details(anchors[run_id], d, galleries.for_run(run_id), catalog)
                for run_id, d in sorted(report.results.details.items())
            ]
    sources = ", ".join(
        f"{s}: {doc['counts'][s]['results']} results" for s in doc["sources"] if s in doc.get("counts", {})
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f'<link rel="icon" href="data:,"><title>DenseBench report: {escape(report.metric)}</title><style>{CSS}{gallery.GALLERY_CSS}</style></head>'
        f"<body><header><h1>DenseBench report: {escape(report.metric)}</h1>"
        f"<div class=note>Generated {escape(doc['generated'])} by densebench {escape(doc['densebench_version'])}. "
        f"{escape(sources)}.</div></header><nav>{nav}</nav><main>{''.join(body)}</main><script>{JS}{gallery.GALLERY_JS}</script></body></html>"
    )
    path = out / "report.html"
    path.write_text(page)
    return path
