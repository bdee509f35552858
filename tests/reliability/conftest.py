"""Shared pieces of the failure-case suite: running the CLI in-process, the one-line-error check,
a tiny image/mask folder, and one finished tiny run shared by the cases that only read it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.sweeps import TINY

# A whole run in about a second: tiny ViT and decoder, 8/2/3 small synthetic images, 2 epochs.
RUN = [*TINY, "progress=none", "cache_dir=null", "eval.gallery.n=1", "eval.bootstrap.n=20"]
# A made-up Hugging Face token: set while the shared run runs, it must appear in no file written.
TOKEN = "hf_reliabilitySuiteCanary0123456789abcdef"
# The same without the synthetic dataset's keys, for runs on other datasets.
MODEL = [o for o in RUN if not o.startswith("dataset.")]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`densebench <argv>` in this process (no interpreter start-up): exit code, stdout, stderr."""
    from densebench.cli import main

    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """The expected outcome of a user mistake: exit 2, exactly one `error:` line on stderr naming each
    needle (the file, key or value and the fix), and no traceback."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_folder(root: Path, side: int = 48, seed: int = 0, counts: dict[str, int] | None = None) -> Path:
    """`dataset=folder` layout with the official split in subfolders: images/<split>/<s><i>.png (RGB) and
    masks/<split>/<s><i>.png (class ids 0/1), seeded; train holds t0..t5, val v0..v1, test s0..s1."""
    rng = np.random.default_rng(seed)
    for split, n in (counts or {"train": 6, "val": 2, "test": 2}).items():
        for i in range(n):
            mask = (rng.random((side, side)) > 0.5).astype(np.uint8)
            image = np.stack([mask * 120 + 60 + rng.integers(0, 40, (side, side))] * 3, -1).astype(np.uint8)
            name = f"{split}/{ {'train': 't', 'val': 'v', 'test': 's'}[split] }{i}.png".replace(" ", "")
            save(root / "images" / name, image)
            save(root / "masks" / name, mask)
    return root


def folder_run(root: Path, out: Path) -> list[str]:
    """Overrides of a tiny run on a `make_folder` tree."""
    return [
        *MODEL,
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.min_side=48",
        "dataset.split=official",
        "train.batch_size=2",
        f"output_dir={out}",
    ]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> tuple[list[str], Path, dict]:
    """One finished tiny run (overrides, run directory, metrics.json), shared by the cases that read it."""
    from densebench.config import compose
    from densebench.engine.train import execute
    from densebench.runs import preempt

    out = tmp_path_factory.mktemp("finished")
    overrides = [*RUN, f"output_dir={out}"]
    with pytest.MonkeyPatch.context() as patch, preempt.handling():
        patch.setenv("HF_TOKEN", TOKEN)
        record = execute(compose(overrides), overrides)
    return (
        overrides,
        Path(record["run"]["run_dir"]),
        json.loads((Path(record["run"]["run_dir"]) / "metrics.json").read_text()),
    )
