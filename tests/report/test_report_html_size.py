"""report.html of a 70-run sweep with galleries stays small (figures and panels beside it), and is still one
file when asked (--self-contained)."""

from __future__ import annotations

import re
from pathlib import Path

from densebench.report.cli import main

LIMIT = 5 * 1024 * 1024


def test_a_70_run_report_html_is_under_5_mb_with_its_images_beside_it(seventy_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(seventy_runs), "--out", str(out), "--format", "html", "--no-plots"]) == 0
    html = out / "report.html"
    panels = sorted((out / "gallery").glob("*.jpg"))
    # what the old embedding would have weighed: every panel inline
    assert sum(p.stat().st_size for p in panels) * 4 / 3 > LIMIT, "fixture too small to test the limit"
    assert html.stat().st_size <= LIMIT
    assert html.read_text().count('<details class="run"') == 70
    refs = set(re.findall(r'src="(gallery/[^"]+)"', html.read_text()))
    assert refs == {f"gallery/{p.name}" for p in panels}
