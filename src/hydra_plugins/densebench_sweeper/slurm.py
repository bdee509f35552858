"""What the sweeper adds around submitit's SLURM launcher: a check before submitting, and quiet polling.

- Before submitting, the job script submitit would write goes through `sbatch --test-only`: SLURM
  answers whether any node could ever run it. Settings no node satisfies (a GPU on a CPU partition,
  an unknown partition, more CPUs than a node has) then give one line naming the settings and the fix,
  instead of a refused submission with submitit's traceback or, worse, an array pending forever
  (SLURM accepts e.g. `--cpus-per-task` above every node's CPU count unless `EnforcePartLimits` says otherwise).
- On a cluster without job accounting `sacct` fails, and submitit warns about it on every poll of
  the jobs' states; DenseBench asks sacct once and says it once.

Only the standard library is imported at module level: Hydra imports every module of
`hydra_plugins` when it scans for plugins.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Settings named in the error line, in this order, when set.
RESOURCES = (
    "partition",
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "gpus_per_task",
    "gres",
    "cpus_per_task",
    "cpus_per_gpu",
    "mem_gb",
    "mem_per_gpu",
    "mem_per_cpu",
    "timeout_min",
    "constraint",
    "qos",
    "account",
)

# sbatch's reason → what to change (first match wins).
FIXES = (
    (r"partition", "set hydra.launcher.partition (or $SBATCH_PARTITION) to a partition `sinfo -s` lists"),
    (
        r"gres|generic resource|gpu",
        "no node offers those GPUs: hydra.launcher.gpus_per_node=null on a CPU partition, or pick a GPU partition",
    ),
    (r"feature|constraint", "hydra.launcher.constraint names a feature no node has (`sinfo -o '%P %f'`)"),
    (r"memory", "lower hydra.launcher.mem_gb to what a node has (`sinfo -o '%P %m'`, MB)"),
    (
        r"node configuration|cpu|processor",
        (
            "no node has that many CPUs, GPUs or memory: lower hydra.launcher.cpus_per_task, gpus_per_node or mem_gb "
            "(`sinfo -o '%P %c %m %G'`)"
        ),
    ),
    (r"time limit|timelimit", "lower hydra.launcher.timeout_min to the partition's limit (`sinfo -o '%P %l'`)"),
)


def is_slurm(launcher: Any) -> bool:
    """hydra/launcher=submitit_slurm (hydra-submitit-launcher's SlurmLauncher)."""
    return getattr(launcher, "_EXECUTOR", None) == "slurm"


def job_script(params: dict[str, Any]) -> str:
    """The sbatch script submitit writes for one job of a launcher with these `hydra.launcher` settings.

    Same mapping of settings as the launcher's `launch` (queue-wide keys as they are, the others with
    the executor's prefix); the command itself does not matter to `--test-only`.
    """
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    with tempfile.TemporaryDirectory() as folder:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(
            **{
                key if key in generic else f"slurm_{key}": value
                for key, value in params.items()
                if key not in ("submitit_folder", "max_num_timeout")
            }
        )
        return executor._executor._make_submission_file_text("true", "preflight")  # type: ignore[attr-defined]


def reason_of(stderr: str) -> str:
    """The reason a SLURM command gives, without its prefixes: the last line that says something."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else "no reason given"
    return re.sub(r"^(sbatch: error: |allocation failure: |Batch job submission failed: )+", "", reason)


def preflight(params: dict[str, Any]) -> None:
    """Raise a ConfigError unless SLURM could run a job with these settings; submits nothing."""
    from densebench.errors import ConfigError

    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"hydra/launcher=submitit_slurm needs SLURM's {' and '.join(missing)} on PATH: launch from "
            "a node of the cluster (or try the set-up here with hydra/launcher=submitit_local)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "densebench-preflight.sh"
        script.write_text(job_script(params))
        done = subprocess.run(
            ["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=120, check=False
        )
    if done.returncode == 0:
        return
    reason = reason_of(done.stderr or done.stdout)
    fix = next(
        (fix for pattern, fix in FIXES if re.search(pattern, reason, re.IGNORECASE)),
        "fix the hydra.launcher settings (`sinfo -o '%P %c %m %G %f %l'` shows what the nodes offer)",
    )
    asked = " ".join(f"{key}={params[key]}" for key in RESOURCES if params.get(key) is not None)
    raise ConfigError(
        f"SLURM would never run these jobs (sbatch --test-only: {reason}; hydra.launcher: {asked}); "
        f"{fix}; nothing submitted"
    )


def quiet_sacct() -> None:
    """Ask sacct once, before the sweep polls it; where it fails, say so once and leave it alone.

    submitit follows jobs with `sacct` and, when that fails, warns on every poll (three copies each,
    plus sacct's own error line). Without sacct it learns that a job ended from the result file
    the job writes, which is what it falls back to anyway when sacct fails.
    """
    global _sacct_checked
    if _sacct_checked:
        return
    _sacct_checked = True
    try:
        probe = subprocess.run(
            ["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=60, check=False
        )
        failure = None if probe.returncode == 0 else reason_of(probe.stderr or probe.stdout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    if failure is None:
        return
    from submitit.slurm.slurm import SlurmJob

    SlurmJob.watcher._make_command = lambda: None  # type: ignore[method-assign]  # no job to ask about
    log.warning(
        f"sacct fails on this cluster ({failure}): job states come from the files the jobs write "
        "(shown once; submitit would repeat it at every poll)"
    )


_sacct_checked = False
