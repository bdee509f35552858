"""Shared test helpers: composing configs, running the CLI, locating ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DENSEBENCH_SHARED", REPO.parent / "shared"))

# A seconds-long version of the demo: tiny ViT, a handful of small synthetic images.
FAST = [
    "model.variant=tiny",
    "dataset.n_train=8",
    "dataset.n_val=2",
    "dataset.n_test=3",
    "dataset.min_size=48",
    "dataset.max_size=72",
    "dataset.min_side=48",
    "train.epochs=2",
    "train.batch_size=4",
    "eval.bootstrap.n=50",
    "progress=plain",
    "train.num_workers=0",  # loader workers: the demo run and test_loader_workers_*
]


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test (visibly) when a user's clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared not present ({path}): genuine sample files are only in the developers' workspace")
    return path


def densebench(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "densebench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def compose_cfg():
    from densebench.config import compose

    return compose
