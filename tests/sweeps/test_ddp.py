"""DDP (engine/ddp.py): 2 gloo processes on CPU compute the single-process run on the same data order.

In float64 the two agree to rounding (1e-12): the design (shards of one global permutation, global
BatchNorm statistics, the loss on the gathered global batch, averaged gradients, summed confusion
matrices) is exact. In float32 they agree only to float32 noise, which training with Adam amplifies
(a sign-normalised update turns 1e-7 relative gradient noise into lr-sized steps for tiny gradients),
so the torchrun end-to-end test (slow) compares within a tolerance.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import densebench.engine.train as train
from densebench.config import compose
from densebench.engine import ddp, setup
from densebench.engine.sampler import EpochBatches
from tests.conftest import REPO, densebench
from tests.sweeps import TINY

# 10 training images in batches of 4: the last global batch (2) is split 1 + 1.
DDP_RUN = [*TINY, "dataset.n_train=10", "dataset.n_val=3", "progress=none", "cache_dir=null"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _execute_fp64(rank: int, world: int, out: str, port: int) -> None:
    """Train and test one run in float64 (patched in), as rank `rank` of `world` gloo processes."""
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    build_model, for_backbone = setup.build_model, setup.Normalizer.for_backbone
    setup.build_model = lambda cfg, n: build_model(cfg, n).double()
    setup.Normalizer.for_backbone = classmethod(lambda cls, b, d: _Double(for_backbone(b, d)))
    overrides = [*DDP_RUN, f"output_dir={out}"]
    with ddp.process_group():
        assert ddp.rank_world() == (rank, world)
        train.execute(compose(overrides), overrides)


class _Double:
    def __init__(self, normalize) -> None:
        self.normalize = normalize

    def __call__(self, images):
        return self.normalize(images).double()


def _run_dir(out):
    (path,) = list(out.rglob("log.jsonl"))
    return path.parent


def test_two_gloo_processes_train_and_score_exactly_like_one(tmp_path):
    port = _free_port()
    ctx = mp.get_context("fork")  # children inherit the imported engine: no second 5 s import
    single = ctx.Process(target=_execute_fp64, args=(0, 1, str(tmp_path / "one"), port))
    single.start()
    single.join()
    assert single.exitcode == 0
    mp.start_processes(_execute_fp64, args=(2, str(tmp_path / "two"), _free_port()), nprocs=2, start_method="fork")
    one, two = _run_dir(tmp_path / "one"), _run_dir(tmp_path / "two")
    log1 = [json.loads(line) for line in (one / "log.jsonl").read_text().splitlines()]
    log2 = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
    assert len(log2) == 2  # one line per epoch: only rank 0 writes
    for a, b in zip(log1, log2):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-12, abs=0)
        assert b["val"] == pytest.approx(a["val"], rel=1e-12, abs=0)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m2["test"]["metrics"] == pytest.approx(m1["test"]["metrics"], rel=1e-12, abs=0)
    state1, state2 = (torch.load(d / "checkpoints" / "last.pt", weights_only=True)["model"] for d in (one, two))
    for key, value in state1.items():
        torch.testing.assert_close(state2[key], value, rtol=1e-10, atol=1e-12)


def test_rank_shards_of_each_global_batch_concatenate_to_the_single_process_batch():
    single = list(EpochBatches(10, 4, seed=3, epoch=2))
    shards = [list(EpochBatches(10, 4, seed=3, epoch=2, rank=r, world=3)) for r in range(3)]
    assert [sum((s[b] for s in shards), []) for b in range(3)] == single
    assert [len(s[2]) for s in shards] == [1, 1, 0]
    assert EpochBatches(10, 4, seed=3, epoch=2).sizes(2) == [2]
    assert EpochBatches(10, 4, seed=3, epoch=2, world=3).sizes(0) == [2, 1, 1]


def test_a_resumed_epoch_continues_with_the_same_batches():
    full = list(EpochBatches(10, 4, seed=0, epoch=5))
    assert list(EpochBatches(10, 4, seed=0, epoch=5, skip=1)) == full[1:]
    assert list(EpochBatches(10, 4, seed=0, epoch=6)) != full


def test_a_batch_too_small_for_every_process_is_refused(monkeypatch):
    from densebench.errors import ConfigError

    monkeypatch.setattr(ddp, "rank_world", lambda: (0, 4))
    ddp.check_batches(16, 8)
    with pytest.raises(ConfigError, match="last batch of 2; change train.batch_size"):
        ddp.check_batches(10, 8)


@pytest.mark.slow
def test_torchrun_two_processes_match_one_within_float32_noise(tmp_path):
    """The real launcher path (torchrun, env://, rank-0 outputs) in float32: same metrics within 0.02."""
    args = ["run", *TINY, "train.epochs=1", "cache_dir=null"]
    one = densebench(*args, f"output_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-2000:]
    import subprocess
    import sys

    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "densebench",
            *args,
            f"output_dir={tmp_path / 'two'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"},
    )
    assert two.returncode == 0, two.stderr[-3000:]
    m1, m2 = (json.loads(next((tmp_path / d).rglob("metrics.json")).read_text()) for d in ("one", "two"))
    for key, value in m1["test"]["metrics"].items():
        assert m2["test"]["metrics"][key] == pytest.approx(value, abs=0.02), key
    assert two.stdout.count(" · test (") == 1  # one result table: rank 0 tests alone


@pytest.mark.slow
def test_a_multi_task_submitit_job_trains_its_cell_with_ddp(tmp_path):
    """tasks_per_node=2: submitit's SLURM-style variables become torch's, the two tasks form one gloo group."""
    proc = densebench(
        "run",
        "-m",
        "experiment=smoke",
        "adapter=frozen",
        "seed=0",
        "hydra/launcher=submitit_local",
        "hydra.launcher.tasks_per_node=2",
        *TINY,
        "train.epochs=1",
        f"output_dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (log,) = list(tmp_path.rglob("log.jsonl"))
    assert len(log.read_text().splitlines()) == 1  # rank 0 alone wrote
    rank1 = next(tmp_path.rglob(".submitit/*/*_1_log.out")).read_text()
    assert "Job completed successfully" in rank1 and "epoch 1/1" not in rank1
