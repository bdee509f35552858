"""What the report shows of the analyses: galleries side by side across models, FLOPs next to parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from densebench.files import write_json


def finish(run) -> Path:
    """Test the run (writing its gallery) and record a metrics.json with the blocks the report reads."""
    from omegaconf import OmegaConf

    test = run.test()
    test.pop("best"), test.pop("eval_s")
    cfg = run.cfg
    write_json(
        run.dir / "metrics.json",
        {
            "schema_version": 1,
            "status": "complete",
            "run": {
                "dataset": cfg.dataset.name,
                "model": cfg.model.name,
                "adapter": cfg.adapter.name,
                "seed": int(cfg.seed),
                "run_dir": str(run.dir),
                "overrides": run.overrides,
            },
            "config": OmegaConf.to_container(cfg, resolve=True),
            "test": test,
            "model": {"name": cfg.model.name, "params": run.model.parameter_counts()},
        },
    )
    return run.dir


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    from densebench.report.cli import main
    from tests.analysis.conftest import make_run

    root = tmp_path_factory.mktemp("report-runs")
    finish(make_run(root, "frozen"))
    finish(make_run(root, "frozen", "model=uni", "model.pretrained=false"))
    out = tmp_path_factory.mktemp("report")
    assert main([str(root), "--out", str(out), "--format", "html", "--no-plots"]) == 0
    return (out / "report.html").read_text()


def test_report_shows_each_gallery_image_once_with_every_models_prediction(html: str) -> None:
    galleries = html[html.index('id="s-galleries"') :]
    # captions use display names, like the tables
    assert "Demo ViT (random init, not a PFM) · Frozen · seed 0" in galleries and "UNI · Frozen · seed 0" in galleries
    rows = re.findall(r'<div class="gallery">(.*?)</div>', galleries[: galleries.index("<script>")])
    assert len(rows) == 3  # the three test images
    for row in rows:  # image, ground truth, then each model's prediction
        assert len(re.findall(r'<img id="g\d+"', row)) == 4


def test_a_runs_drill_down_shows_its_gallery_by_reference(html: str) -> None:
    ids = set(re.findall(r'<img id="(g\d+)"', html))
    refs = re.findall(r'data-same-as="(g\d+)"', html)
    assert len(refs) == 2 * 3 * 3  # two runs, three test images, three panels each
    assert set(refs) <= ids
    assert len(set(re.findall(r'src="(gallery/g\d+\.jpg)"', html))) == len(ids)  # every panel written beside it once


def test_scaling_also_correlates_the_means_with_flops() -> None:
    from densebench.report.plots import scaling

    cells = pd.DataFrame(
        [
            {"entry": m, "model": m, "variant": "", "dataset": "d", "strategy": "frozen", "value": v, "params": p}
            for m, v, p in (("A", 0.5, 1e8), ("B", 0.7, 3e8), ("C", 0.6, 6e8))
        ]
    )
    flops = {"A": 3e10, "B": 1e10, "C": 2e10}
    result = scaling(cells, ["frozen"], flops)
    expected = scipy_stats.spearmanr([3e10, 1e10, 2e10], [0.5, 0.7, 0.6])
    assert result["flops"]["overall"]["rho"] == pytest.approx(expected.statistic)
    assert result["flops"]["points"]["frozen"]["B"] == [1e10, pytest.approx(0.7)]
    assert "flops" not in scaling(cells, ["frozen"])
