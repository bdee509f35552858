"""The sweeper's SLURM checks (hydra_plugins/densebench_sweeper/slurm.py) against stand-in SLURM commands:
no cluster needed, so they run wherever the cluster tests are skipped."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from densebench.errors import ConfigError
from hydra_plugins.densebench_sweeper import slurm

# hydra.launcher of configs/hydra/launcher/submitit_slurm.yaml with the CPU-node settings, resolved.
PARAMS = {
    "submitit_folder": "/tmp/x/.submitit/%j",
    "name": "densebench",
    "timeout_min": 10,
    "nodes": 1,
    "tasks_per_node": 1,
    "gpus_per_node": 1,
    "cpus_per_task": 1,
    "mem_gb": 1,
    "stderr_to_stdout": True,
    "partition": None,
    "signal_delay_s": 30,
    "max_num_timeout": 3,
    "additional_parameters": {},
    "array_parallelism": 4,
    "setup": None,
}


def stand_ins(tmp_path: Path, monkeypatch, **scripts: str) -> Path:
    """Put shell scripts named like SLURM's commands first on PATH; returns their folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_without_slurm_commands_a_slurm_sweep_stops_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="needs SLURM's sbatch and srun on PATH: launch from a node of the cluster"):
        slurm.preflight(PARAMS)


def test_sbatch_test_only_sees_the_job_script_and_its_refusal_names_the_setting_to_change(monkeypatch, tmp_path):
    bin_dir = stand_ins(
        tmp_path,
        monkeypatch,
        srun="exit 0",
        sbatch=(
            'cp "$2" "$(dirname "$0")/script.sh"\n'
            'echo "sbatch: error: Invalid generic resource (gres) specification" >&2; exit 1'
        ),
    )
    with pytest.raises(ConfigError) as info:
        slurm.preflight(PARAMS)
    message = str(info.value)
    assert message.startswith("SLURM would never run these jobs (sbatch --test-only: Invalid generic resource")
    assert "gpus_per_node=1" in message and "hydra.launcher.gpus_per_node=null" in message
    assert "\n" not in message and message.endswith("nothing submitted")
    script = (bin_dir / "script.sh").read_text()
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --time=10" in script and "srun" in script


def test_a_failing_sacct_is_reported_once_and_not_polled_again(monkeypatch, tmp_path, caplog):
    from submitit.slurm.slurm import SlurmJob

    stand_ins(tmp_path, monkeypatch, sacct='echo "Slurm accounting storage is disabled" >&2; exit 1')
    monkeypatch.setattr(slurm, "_sacct_checked", False)
    monkeypatch.setattr(SlurmJob.watcher, "_make_command", SlurmJob.watcher._make_command)  # restored after
    monkeypatch.setattr(SlurmJob.watcher, "_registered", set())
    SlurmJob.watcher.register_job("12")
    with caplog.at_level(logging.WARNING):
        slurm.quiet_sacct()
        slurm.quiet_sacct()
    assert [r.getMessage()[:66] for r in caplog.records] == [
        "sacct fails on this cluster (Slurm accounting storage is disabled)"
    ]
    assert SlurmJob.watcher._make_command() is None
