"""A Hydra callback for the cluster tests: a run longer than a minute on the tiny demo, without using the CPU.

`+hydra.callbacks.slow._target_=tests.cluster.slow.SlowFirstAttempt +hydra.callbacks.slow.seconds=S`
makes every progress step (optimiser step, validation or test image) of a SLURM job's first attempt
sleep S seconds first, so a 1-minute time limit or an `scontrol requeue` finds the run mid-training.
A requeued attempt (SLURM_RESTART_COUNT > 0) runs at full speed, so the tests wait for one stop only.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hydra.experimental.callback import Callback


class SlowFirstAttempt(Callback):
    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if "SLURM_JOB_ID" not in os.environ or os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return
        from densebench.engine.progress import RunProgress

        original, seconds = RunProgress.step, self.seconds

        def step(progress: RunProgress, info: str = "") -> None:
            time.sleep(seconds)
            original(progress, info)

        RunProgress.step = step  # type: ignore[method-assign]
