"""One writer per run directory (runs/lock.py): contention, stale locks, and what a sweep does with a locked cell."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from densebench.cli import main
from densebench.runs.cells import state
from densebench.runs.lock import RunLock, RunLocked, holder, lock_path
from tests.conftest import REPO
from tests.sweeps import TINY

HOLD = """
import sys, time
from pathlib import Path
from densebench.runs.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_held_run_directory_cannot_be_taken_until_released(tmp_path):
    run = tmp_path / "glas" / "uni" / "lora" / "seed0"
    with RunLock(run):
        assert lock_path(run).is_file() and holder(run)["pid"] == os.getpid()
        with pytest.raises(RunLocked, match=rf"is being written by pid {os.getpid()} on {socket.gethostname()}"):
            RunLock(run).acquire()
    assert not lock_path(run).exists() and holder(run) is None
    with RunLock(run):
        pass


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path):
    run = tmp_path / "seed0"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            RunLock(run).acquire()
        assert state(run) == "running"
    finally:
        child.send_signal(signal.SIGKILL)  # no release: the lock file stays behind
        child.wait()
    assert lock_path(run).is_file() and holder(run) is None
    with RunLock(run) as lock:
        assert json.loads(lock_path(run).read_text())["token"] == lock.owner["token"]


def test_another_hosts_lock_lives_while_its_heartbeat_is_fresh(tmp_path, monkeypatch):
    run = tmp_path / "seed0"
    path = lock_path(run)
    path.write_text(
        json.dumps({"host": "node-17", "pid": 1, "pid_started": 0, "job": "4242", "token": "x", "since": "then"})
    )
    with pytest.raises(RunLocked, match="pid 1 on node-17"):
        RunLock(run, stale_s=60).acquire()
    os.utime(path, (time.time() - 120, time.time() - 120))
    with RunLock(run, stale_s=60):
        pass
    path.write_text(
        json.dumps({"host": "node-17", "pid": 1, "pid_started": 0, "job": "4242", "token": "x", "since": "then"})
    )
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # our own job, requeued here: its old lock is ours to take
    with RunLock(run, stale_s=60):
        pass


def test_the_heartbeat_keeps_a_long_run_fresh(tmp_path):
    run = tmp_path / "seed0"
    with RunLock(run, heartbeat_s=0.05):
        os.utime(lock_path(run), (0, 0))
        time.sleep(0.3)
        assert time.time() - lock_path(run).stat().st_mtime < 5


def test_a_cell_another_sweep_is_writing_is_left_alone(tmp_path, capsys):
    from densebench.config import compose
    from densebench.runs.rundir import run_dir

    overrides = [f"output_dir={tmp_path}", *TINY, "progress=none"]
    run = run_dir(compose(overrides), overrides)
    with RunLock(run):
        with pytest.raises(SystemExit) as single:
            main(["run", *overrides])
        assert single.value.code == 2 and "is being written by" in capsys.readouterr().err
        with pytest.raises(SystemExit) as multi:
            main(["run", "-m", *overrides])
        out = capsys.readouterr().out
        assert multi.value.code == 0 and "Skipping 0 finished and 1 running cells" in out
        assert "sweep: 1 cells: 0 done, 1 skipped, 0 failed" in out
        with pytest.raises(SystemExit) as forced:  # force=true launches it; the job itself then refuses
            main(["run", "-m", *overrides, "force=true"])
        captured = capsys.readouterr()
        assert "is being written by" in captured.err
        # a cell that could not run is a failed cell: the sweep says so and exits 1
        assert forced.value.code == 1 and "0 done, 0 skipped, 1 failed" in captured.out and "RunLocked" in captured.out
        assert not run.exists()  # neither a failure record nor any other file in the owner's directory


def test_runs_side_by_side_on_a_multi_gpu_machine_take_different_gpus(tmp_path, monkeypatch):
    import torch

    from densebench.engine import session
    from densebench.errors import DenseBenchError

    monkeypatch.setattr(session.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: type("P", (), {"uuid": f"GPU-{i}"}))
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    with session.claim_gpu("auto"), session.claim_gpu("auto"):
        with pytest.raises(DenseBenchError, match="all 2 visible GPUs are taken"):
            with session.claim_gpu("auto"):
                pass
    with session.claim_gpu("auto"), session.claim_gpu("cuda:1"):  # released again; an explicit device claims nothing
        pass
    assert chosen == [0, 1, 0]
