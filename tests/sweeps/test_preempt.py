"""Preemption (runs/preempt.py): a stop signal checkpoints at the next safe point; the resumed run
ends bitwise where an uninterrupted one does (CPU, fixed seeds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from densebench.config import compose
from densebench.runs import preempt
from densebench.engine.progress import RunProgress
from densebench.engine.train import execute
from tests.conftest import REPO, densebench
from tests.sweeps import TINY

# 2 epochs of 2 optimiser steps (8 images, batch 4), 2 validation and 3 test images.
RUN = [*TINY, "progress=none", "cache_dir=null"]


def run_dir(out):
    (path,) = list(out.rglob("config.yaml"))
    return path.parent


def execute_in(out, stop_at=None):
    """Execute the run in `out`; with `stop_at=k`, SIGTERM this process during the k-th progress step."""
    overrides = [*RUN, f"output_dir={out}"]
    calls = {"n": 0}
    original = RunProgress.step

    def step(self, info=""):
        calls["n"] += 1
        if calls["n"] == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, info)

    RunProgress.step = step
    try:
        with preempt.handling():
            return execute(compose(overrides), overrides)
    finally:
        RunProgress.step = original


def test_runs_stopped_mid_epoch_and_mid_validation_resume_to_the_uninterrupted_result(tmp_path):
    reference = execute_in(tmp_path / "ref")
    out = tmp_path / "stopped"
    with pytest.raises(preempt.Preempted, match="SIGTERM in training at epoch 1"):
        execute_in(out, stop_at=1)  # after the first optimiser step
    last = torch.load(run_dir(out) / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == -1 and last["partial"]["epoch"] == 0 and last["partial"]["steps"] == 1
    assert not (run_dir(out) / "log.jsonl").exists()
    with pytest.raises(preempt.Preempted, match="SIGTERM in val at epoch 2"):
        execute_in(out, stop_at=6)  # resumed: step 2 of epoch 1, 2 val images, 2 steps of epoch 2, val
    last = torch.load(run_dir(out) / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 0 and last["partial"] == {**last["partial"], "epoch": 1, "steps": 2}
    resumed = execute_in(out)
    assert resumed["test"]["metrics"] == reference["test"]["metrics"]
    assert resumed["test"]["bootstrap"] == reference["test"]["bootstrap"]
    assert resumed["val"] == reference["val"]
    log = [json.loads(line) for line in (run_dir(out) / "log.jsonl").read_text().splitlines()]
    ref_log = [json.loads(line) for line in (run_dir(tmp_path / "ref") / "log.jsonl").read_text().splitlines()]
    assert [(r["train_loss"], r["val"]) for r in log] == [(r["train_loss"], r["val"]) for r in ref_log]


def test_sigterm_ends_the_cli_run_after_one_step_with_a_checkpoint_and_status_143(tmp_path):
    args = ["run", *TINY, f"output_dir={tmp_path}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "densebench", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.rglob(".*.lock")):  # the run has started
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # it stops after its first optimiser step
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in err and "rerun to resume" in err
    run = run_dir(tmp_path)
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "metrics.json").exists()
    assert not list(run.parent.glob(".*.lock"))  # released on the way out
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == -1 and last["partial"]["steps"] == 1  # resumes in-process above, under submitit below


@pytest.mark.slow
def test_under_submitit_sigusr2_requeues_the_job_which_resumes_to_the_uninterrupted_result(tmp_path):
    """SLURM's time-limit warning, rehearsed with submitit_local: checkpoint, requeue, resume, same metrics."""
    cell = [*TINY, "experiment=smoke", "adapter=frozen", "seed=0", "train.epochs=3", "dataset.n_train=12"]
    reference = densebench("run", *cell, f"output_dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "densebench", "run", "-m", "hydra/launcher=submitit_local", *cell, f"output_dir={out}"],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.rglob(".*.lock")):
        time.sleep(0.02)
    (lock,) = list(out.rglob(".*.lock"))
    os.kill(json.loads(lock.read_text())["pid"], signal.SIGUSR2)
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    logs = "".join(p.read_text() for p in out.rglob(".submitit/*/*_log.out"))
    assert "stopped by SIGUSR2" in logs and "resuming" in logs and "Requeued" in logs
    got = json.loads(next(out.rglob("metrics.json")).read_text())
    want = json.loads(next((tmp_path / "ref").rglob("metrics.json")).read_text())
    assert got["test"]["metrics"] == want["test"]["metrics"]
