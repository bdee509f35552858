"""The README's demo exactly as a user types it (slow: run with `-m slow`)."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import densebench


@pytest.mark.slow
def test_plain_densebench_run_finishes_within_three_minutes_and_learns(tmp_path):
    t0 = time.perf_counter()
    proc = densebench("run", cwd=tmp_path, timeout=600)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = (tmp_path / "outputs").rglob("metrics.json")
    record = json.loads(path.read_text())
    assert record["test"]["metrics"]["Mean_Dice"] > 0.6
    assert elapsed < 180, f"demo took {elapsed:.0f} s"
