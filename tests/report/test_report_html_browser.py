"""report.html in a real headless browser (Chromium): no console errors, clicking a header re-sorts, and a
70-run report with long names does not scroll sideways at 1400 px (neither the page nor any table or gallery).

The page is loaded from a file:// URL, as a user would open it. A copy gets two extra scripts: one first
in <head> that records errors (window.onerror, unhandled rejections, console.error), one after the page's
own script that clicks headers and writes what the DOM then shows into a <pre>; `--dump-dom` returns it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from densebench.report.cli import main

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)")

RECORD_ERRORS = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + e.message); });
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
var __consoleError = console.error;
console.error = function () { window.__errors.push('console: ' + Array.prototype.join.call(arguments, ' '));
                              __consoleError.apply(console, arguments); };
</script>"""

CLICK_AND_READ = """<script>
(function () {
  var out = {errors: window.__errors};
  try {
    var table = document.getElementById('t-model-ranks-runs');
    var heads = table.tHead.rows[0].cells;
    function column(name) {
      for (var i = 0; i < heads.length; i++) { if (heads[i].textContent === name) { return i; } }
      throw new Error('no column ' + name);
    }
    function read(name) {
      var c = column(name);
      return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[c].textContent; });
    }
    out.initial = read('Model');
    heads[column('Avg rank')].click();
    heads[column('Avg rank')].click();
    out.byRankDescending = read('Avg rank');
    out.modelsByRankDescending = read('Model');
    out.ariaSort = heads[column('Avg rank')].getAttribute('aria-sort');
    heads[column('Model')].click();
    out.byModelAscending = read('Model');
    var filter = document.querySelector('input.filter[data-table="t-model-ranks-runs"]');
    filter.value = 'c';
    filter.dispatchEvent(new Event('input'));
    out.visibleAfterFilter = Array.prototype.filter.call(table.tBodies[0].rows,
      function (r) { return r.style.display !== 'none'; }).length;
  } catch (e) { out.errors.push('harness: ' + e.message); }
  var pre = document.createElement('pre');
  pre.id = 'harness-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


MEASURE_WIDTH = """<script>
window.addEventListener('load', function () {
  var out = {errors: window.__errors, wide: []};
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var root = document.documentElement;
  out.page = [root.scrollWidth, window.innerWidth];
  document.querySelectorAll('body *').forEach(function (el) {
    var style = getComputedStyle(el);
    var scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
    if (scrolls && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'PRE') {
      out.wide.push(el.tagName + '.' + el.className + ' ' + el.scrollWidth + '>' + el.clientWidth);
    }
    if (el.getBoundingClientRect().right > window.innerWidth + 1 && el.offsetParent !== null) {
      out.wide.push('past the right edge: ' + el.tagName + '.' + el.className + ' ' + (el.id || ''));
    }
  });
  var pre = document.createElement('pre');
  pre.id = 'harness-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _browse(out: Path, tmp_path: Path, script: str, width: int = 1400) -> tuple[dict, str]:
    """Open report.html with the error recorder and `script` in headless Chromium; its JSON result and stderr."""
    page = (out / "report.html").read_text()
    harness = out / "harness.html"
    harness.write_text(page.replace("<head>", "<head>" + RECORD_ERRORS, 1).replace("</body>", script + "</body>"))
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-extensions",
            "--no-first-run",
            f"--window-size={width},1000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'<pre id="harness-result">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no harness output; chromium said: {proc.stderr[-2000:]}"
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text), proc.stderr


def test_a_70_run_report_does_not_scroll_sideways_at_1400_px(seventy_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(seventy_runs), "--out", str(out), "--format", "html"]) == 0
    result, stderr = _browse(out, tmp_path, MEASURE_WIDTH)
    assert result["errors"] == [] and "Uncaught" not in stderr
    assert result["wide"] == [], "\n".join(result["wide"])
    assert result["page"][0] <= result["page"][1]


def test_html_opens_without_errors_and_sorts_on_header_click(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--format", "html"]) == 0
    result, stderr = _browse(out, tmp_path, CLICK_AND_READ)
    assert result["errors"] == []
    assert "Uncaught" not in stderr
    # fixture sweep ranks: a (1.5+1+2+1)/4, b (1.5+2+1+2)/4, c (3+3)/2; a and b tie on glas/frozen
    assert result["initial"] == ["a", "b", "c"]
    assert result["byRankDescending"] == ["3.000", "1.625", "1.375"]
    assert result["modelsByRankDescending"] == ["c", "b", "a"]
    assert result["ariaSort"] == "descending"
    assert result["byModelAscending"] == ["a", "b", "c"]
    assert result["visibleAfterFilter"] == 1
