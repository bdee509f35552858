"""docs/your-model.md runs as written: its bash blocks, in order, from an empty folder to a ranked report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared_path

DOC = REPO / "docs" / "your-model.md"


def tutorial_script() -> str:
    """Every ```bash block of the tutorial, in order; `densebench` is this checkout's CLI."""
    blocks = re.findall(r"^```bash\n(.*?)^```", DOC.read_text(), flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 6, "the tutorial lost its command blocks"
    header = f'set -euo pipefail\ndensebench() {{ "{sys.executable}" -m densebench "$@"; }}\n'
    return header + "\n".join(blocks)


def test_the_tutorial_script_covers_check_train_and_report():
    script = tutorial_script()
    for step in (
        "densebench models --check model=my_vit",
        "densebench run --multirun",
        "densebench report outputs",
        "densebench models --check model=my_tiny_vit",
    ):
        assert step in script


@pytest.mark.slow
def test_the_tutorial_runs_from_an_empty_folder_to_a_ranked_report(tmp_path):
    published = shared_path("published", "pfm-densebench")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PUBLISHED": str(published), "NO_ALBUMENTATIONS_UPDATE": "1"}
    env.pop("DENSEBENCH_CONFIG_PATH", None)
    proc = subprocess.run(
        ["bash", "-c", tutorial_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("ok: works with frozen") == 2  # my_vit and my_tiny_vit pass the check
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    (average,) = doc["published_rank"]["average"]
    assert average["entry"] == "my_vit" and average["n_datasets"] == 2 and average["n_published_datasets"] == 18
    assert "My ViT (tutorial, random init) (own runs)" in (tmp_path / "report" / "report.md").read_text()
