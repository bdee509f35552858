"""The SLURM path on a real one-node SLURM (tests/cluster/slurm.py), through `hydra/launcher=submitit_slurm`:
sbatch scripts slurmctld must accept, array jobs, srun's environment, time-limit signals, `scontrol requeue`
and the begin-time hold of requeued jobs, which submitit's local imitation never goes through.

Jobs ask for what a CPU partition has (no GPU, 1 CPU, 1 GB) and run the smoke grid's tiny cells; every
process uses one thread, so the SLURM runs and the local reference runs compute bitwise the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, densebench
from tests.sweeps import TINY

GRID = ["experiment=smoke", *TINY]  # 4 cells: frozen, full × seeds 0, 1
CELL = [*GRID, "adapter=frozen", "seed=0"]
REFERENCE = "synthetic/demo_vit/frozen/seed0-*"  # CELL's run directory, under any output_dir


def cpu_node(**changes: object) -> list[str]:
    """`hydra/launcher=submitit_slurm` with the settings of a CPU node (README, "Try the set-up")."""
    settings = {"gpus_per_node": "null", "cpus_per_task": 1, "mem_gb": 1, **changes}
    return ["hydra/launcher=submitit_slurm", *(f"hydra.launcher.{k}={v}" for k, v in settings.items())]


def slow(seconds: float) -> list[str]:
    """Each progress step of a job's first attempt sleeps `seconds` (tests/cluster/slow.py)."""
    return [
        "+hydra.callbacks.slow._target_=tests.cluster.slow.SlowFirstAttempt",
        f"+hydra.callbacks.slow.seconds={seconds}",
    ]


def env(cluster) -> dict[str, str]:
    return {
        "SLURM_CONF": str(cluster.conf),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
    }


def launch(cluster, *args: str) -> subprocess.Popen:
    """`densebench ARGS` in the background, output (stdout and stderr) kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "densebench", *args],
        cwd=REPO,
        env={**os.environ, **env(cluster)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def run(cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return densebench(*args, cwd=REPO, env=env(cluster), timeout=timeout)


def metrics_of(root: Path, pattern: str = REFERENCE) -> dict:
    (path,) = root.glob(f"{pattern}/metrics.json")
    record = json.loads(path.read_text())
    assert record["status"] == "complete"
    return record["test"]["metrics"]


def job_dirs(out: Path) -> list[Path]:
    """submitit's folder per job (`<id>`, or `<array id>_<index>` in an array), oldest sweep first."""
    sweeps = sorted(out.glob("multirun/*/.submitit"))
    return [
        d
        for s in sweeps
        for d in sorted(s.iterdir())
        if re.fullmatch(r"\d+(_\d+)?", d.name) and any(d.glob("*_submitted.pkl"))
    ]  # an array's own folder holds only its sbatch script


def job_logs(out: Path) -> str:
    return "".join(p.read_text() for d in job_dirs(out) for p in sorted(d.glob("*_log.out")))


@pytest.fixture(scope="module")
def grid(slurm, tmp_path_factory):
    """The smoke grid through SLURM and, at the same time, the same cells run here one after the other."""
    root = tmp_path_factory.mktemp("grid")
    on_slurm = launch(slurm, "run", "-m", *GRID, *cpu_node(), f"output_dir={root / 'slurm'}")
    local = launch(slurm, "run", "-m", *GRID, f"output_dir={root / 'local'}")
    return SimpleNamespace(
        slurm=root / "slurm", local=root / "local", output=finish(on_slurm), local_output=finish(local)
    )


def test_the_smoke_grid_runs_as_one_slurm_array_and_matches_the_same_cells_run_locally(grid):
    jobs = job_dirs(grid.slurm)
    assert len(jobs) == 4 and len({d.name.split("_")[0] for d in jobs}) == 1  # one array of 4 tasks
    script = next(grid.slurm.glob("multirun/*/.submitit/*/*_submission.sh")).read_text()
    assert "#SBATCH --array=0-3" in script and "#SBATCH --cpus-per-task=1" in script and "gpus" not in script
    for d in jobs:
        assert f"JobEnvironment(job_id={d.name}, " in job_logs(grid.slurm)
    cells = sorted(p.parent.relative_to(grid.slurm) for p in grid.slurm.glob("*/*/*/*/metrics.json"))
    assert [f"{c.parent.name}/{c.name[:5]}" for c in cells] == [
        "frozen/seed0",
        "frozen/seed1",
        "full/seed0",
        "full/seed1",
    ]
    for cell in cells:
        assert metrics_of(grid.slurm, str(cell)) == metrics_of(grid.local, str(cell)), cell


def test_a_rerun_submits_nothing_and_status_shows_every_cell_done(grid, slurm):
    stamps = [p.stat().st_mtime_ns for p in grid.slurm.rglob("metrics.json")]
    next_job = slurm.next_job_id()
    again = run(slurm, "run", "-m", *GRID, *cpu_node(), f"output_dir={grid.slurm}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Skipping 4 finished and 0 running cells" in again.stdout and "launching 0 of 4" in again.stdout
    assert slurm.next_job_id() == next_job and len(job_dirs(grid.slurm)) == 4
    assert [p.stat().st_mtime_ns for p in grid.slurm.rglob("metrics.json")] == stamps
    status = run(slurm, "status", str(grid.slurm))
    assert status.returncode == 0 and "4 cells" in status.stdout and "done 4" in status.stdout, status.stdout


def test_without_job_accounting_the_sacct_failure_is_reported_once(grid):
    assert grid.output.count("sacct fails on this cluster (Slurm accounting storage is disabled)") == 1
    assert "Bypassing sacct error" not in grid.output  # submitit's warning, otherwise repeated at every poll
    assert grid.output.count("Slurm accounting storage is disabled") == 1  # sacct's own line, once


def test_at_the_time_limit_a_job_checkpoints_requeues_and_resumes_to_the_uninterrupted_result(slurm, grid, tmp_path):
    # A 1-minute limit and a first attempt slowed to over a minute (11 steps of 5 s). SLURM checks limits
    # every 30 s and may signal up to 60 s early: with signal_delay_s=15 SIGUSR2 comes 15-45 s in.
    done = run(
        slurm,
        "run",
        "-m",
        *CELL,
        *cpu_node(timeout_min=1, signal_delay_s=15),
        *slow(5),
        f"output_dir={tmp_path}",
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logs = job_logs(tmp_path)
    (job,) = {d.name for d in job_dirs(tmp_path)}
    stops = logs.count("stopped by SIGUSR2 in ")
    assert stops >= 1 and logs.count("resuming ") == stops, logs[-3000:]  # each stop checkpointed, each resumed
    assert "Requeued job" in logs and job in slurm.released  # requeued through SLURM, held, released
    assert "DUE TO TIME LIMIT" not in logs  # stopped before SLURM's own kill
    assert metrics_of(tmp_path) == metrics_of(grid.local)


def test_a_job_requeued_by_slurm_while_training_resumes_to_the_uninterrupted_result(slurm, grid, tmp_path):
    proc = launch(slurm, "run", "-m", *CELL, *cpu_node(), *slow(3), f"output_dir={tmp_path}")  # still training
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.rglob(".*.lock")):  # the run holds its directory
        time.sleep(0.1)
    (job,) = {d.name for d in job_dirs(tmp_path)}
    slurm.run("scontrol", "requeue", job)  # what preemption with PreemptMode=REQUEUE does: SIGTERM, then requeue
    finish(proc)
    logs = job_logs(tmp_path)
    assert logs.count("stopped by SIGTERM in ") == 1 and logs.count("resuming ") == 1, logs[-3000:]
    assert job in slurm.released
    assert metrics_of(tmp_path) == metrics_of(grid.local)


def test_a_failing_cell_leaves_the_array_running_and_a_rerun_submits_only_that_cell(slurm, tmp_path):
    args = ["run", "-m", *CELL, *cpu_node(), "train.loss=nope,dice", f"output_dir={tmp_path}"]
    first = run(slurm, *args)
    assert first.returncode == 1 and "1 failed" in first.stdout + first.stderr, first.stderr[
        -3000:
    ]  # the sweep says so
    assert len(job_dirs(tmp_path)) == 2
    status = run(slurm, "status", str(tmp_path))
    assert "done 1" in status.stdout and "failed 1" in status.stdout, status.stdout
    assert "ConfigError: train.loss=nope is not known" in status.stdout
    (done,) = tmp_path.rglob("metrics.json")
    stamp = done.stat().st_mtime_ns
    again = run(slurm, *args)
    assert again.returncode == 1, again.stderr[-3000:]  # the retried cell fails again
    assert "Skipping 1 finished and 0 running cells" in again.stdout and "launching 1 of 2" in again.stdout
    new = job_dirs(tmp_path)[2:]
    assert len(new) == 1 and "train.loss=nope is not known" in "".join(p.read_text() for p in new[0].glob("*_log.out"))
    assert done.stat().st_mtime_ns == stamp


def test_a_cell_with_two_tasks_per_node_trains_with_ddp_over_two_slurm_tasks(slurm, grid, tmp_path):
    done = run(slurm, "run", "-m", *CELL, *cpu_node(tasks_per_node=2), f"output_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    (job,) = job_dirs(tmp_path)
    rank0, rank1 = (next(job.glob(f"*_{task}_log.out")).read_text() for task in (0, 1))
    assert "global_rank=0(2)" in rank0 and "global_rank=1(2)" in rank1  # srun started 2 tasks of one job
    assert "epoch 2/2" in rank0 and "epoch" not in rank1 and "Job completed successfully" in rank1  # rank 0 logs
    assert len(next(tmp_path.rglob("log.jsonl")).read_text().splitlines()) == 2
    reference = metrics_of(grid.local)
    for key, value in metrics_of(tmp_path).items():  # float32 DDP: the tolerance of tests/sweeps/test_ddp.py
        assert value == pytest.approx(reference[key], abs=0.02), key


@pytest.mark.parametrize(
    "setting, fix",
    [
        ("gpus_per_node=1", "hydra.launcher.gpus_per_node=null on a CPU partition"),
        ("partition=nope", "set hydra.launcher.partition"),
        ("cpus_per_task=CPUS+1", "lower hydra.launcher.cpus_per_task"),  # SLURM would accept it and never run it
    ],
)
def test_settings_no_node_can_run_stop_the_sweep_with_one_line_before_submitting(slurm, tmp_path, setting, fix):
    key, value = setting.split("=")
    value = str(slurm.cpus + 1) if value == "CPUS+1" else value
    done = run(slurm, "run", "-m", *CELL, *cpu_node(**{key: value}), f"output_dir={tmp_path}", timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SLURM would never run these jobs"), done.stderr
    assert f"{key}={value}" in lines[0] and fix in lines[0] and "nothing submitted" in lines[0]
    assert not job_dirs(tmp_path) and not [job for job in slurm.jobs() if job["state"] == "PENDING"]
