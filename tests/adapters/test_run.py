"""`densebench run` end to end for every strategy: the run completes on the demo data, records where
its trainable parameters are, and its checkpoint re-evaluated in a new process gives the same test metrics.

One `--multirun` process trains all strategies (imports dominate a tiny run's cost); the default
test covers `demo_vit`, the slow one every model config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, densebench

from .support import MODELS, STRATEGIES

TINY_RUN = [
    "model.variant=tiny",
    "model.pretrained=false",
    "train.epochs=1",
    "train.num_workers=0",
    "progress=none",
    "dataset.n_train=4",
    "dataset.n_val=2",
    "dataset.n_test=2",
    "dataset.min_size=48",
    "dataset.max_size=64",
    "dataset.min_side=48",
    "eval.bootstrap.n=50",
    "decoder.stem_channels=64",
    "decoder.channels=[32,16,16,8]",
]

# Rebuild each run from its saved config in a fresh interpreter, load checkpoints/best.pt, test again.
REEVALUATE = """
import sys
from pathlib import Path
from omegaconf import OmegaConf
from densebench.files import read_json, write_json
from densebench.engine.train import Run

results = {}
for d in map(Path, sys.argv[2:]):
    record = read_json(d / "metrics.json")
    run = Run(OmegaConf.load(d / "config.yaml"), record["run"]["overrides"])
    assert run.dir.resolve() == d.resolve(), (run.dir, d)
    run.build()
    results[str(d)] = run.test()["metrics"]
write_json(Path(sys.argv[1]), results)
"""


# One thread: tiny tensors gain nothing from more, and the test machine's cores are shared.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _train_all(out: Path, models: list[str], timeout: int) -> dict[tuple[str, str], Path]:
    _ok(
        densebench(
            "run",
            "--multirun",
            f"model={','.join(models)}",
            f"adapter={','.join(STRATEGIES)}",
            f"output_dir={out}",
            *TINY_RUN,
            timeout=timeout,
            env=ONE_THREAD,
        )
    )
    runs = {}
    for model in models:
        for strategy in STRATEGIES:
            found = list((out / "synthetic" / model / strategy).glob("*/metrics.json"))
            assert len(found) == 1, f"{model} × {strategy}: no finished run in {out}"
            runs[(model, strategy)] = found[0].parent
    return runs


def _check_records(runs: dict[tuple[str, str], Path]) -> None:
    for (model, strategy), run in runs.items():
        record = json.loads((run / "metrics.json").read_text())
        assert record["status"] == "complete"
        params = record["model"]["params"]
        assert (params["backbone_trainable"] > 0) == (strategy == "full"), (model, strategy, params)
        assert (params["adapter_trainable"] > 0) == (strategy not in ("frozen", "full")), (model, strategy, params)
        assert params["decoder"] > 0


def _check_reevaluation(runs: dict[tuple[str, str], Path], out: Path, timeout: int) -> None:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO / "src")}
    _ok(
        subprocess.run(
            [sys.executable, "-c", REEVALUATE, str(out / "reevaluated.json"), *map(str, runs.values())],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    )
    again = json.loads((out / "reevaluated.json").read_text())
    for key, run in runs.items():
        recorded = json.loads((run / "metrics.json").read_text())["test"]["metrics"]
        assert again[str(run)] == recorded, key


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], Path]]:
    out = tmp_path_factory.mktemp("runs")
    return out, _train_all(out, ["demo_vit"], timeout=300)


def test_a_demo_run_completes_and_records_where_trainable_parameters_are(demo_runs):
    _check_records(demo_runs[1])


def test_a_checkpoint_evaluated_in_a_new_process_gives_the_same_test_metrics(demo_runs):
    _check_reevaluation(demo_runs[1], demo_runs[0], timeout=300)


@pytest.mark.slow
def test_every_model_config_runs_every_strategy_and_reevaluates_identically(tmp_path):
    models = sorted(p.stem for p in (REPO / "configs" / "model").glob("*.yaml"))
    assert set(models) <= set(MODELS)
    runs = _train_all(tmp_path, models, timeout=3600)
    _check_records(runs)
    _check_reevaluation(runs, tmp_path, timeout=3600)
