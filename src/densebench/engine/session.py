"""What surrounds one run in its process, apart from training itself: the DDP process group, a GPU
of its own, the run directory's lock and the stop-signal handlers (ddp.py, lock.py, preempt.py)."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from omegaconf import DictConfig

from densebench.engine import ddp
from densebench.runs import preempt
from densebench.runs.lock import RunLock, RunLocked
from densebench.runs.rundir import is_complete
from densebench.errors import DenseBenchError


@contextmanager
def claim_gpu(device: str) -> Iterator[None]:
    """With device=auto, one process per run and several visible GPUs (the joblib launcher, or a few
    `densebench run` side by side), take a GPU no other DenseBench run on this machine holds.

    GPUs are named by UUID, so processes with different CUDA_VISIBLE_DEVICES agree on the names.
    """
    import torch

    count = torch.cuda.device_count() if device == "auto" and ddp.rank_world()[1] == 1 else 0
    if count < 2:
        yield
        return
    root = Path(tempfile.gettempdir()) / "densebench-gpus"
    for index in range(count):
        lock = RunLock(root / f"{socket.gethostname()}-{torch.cuda.get_device_properties(index).uuid}")
        try:
            lock.acquire()
        except RunLocked:
            continue
        try:
            torch.cuda.set_device(index)
            yield
        finally:
            lock.release()
        return
    raise DenseBenchError(
        f"all {count} visible GPUs are taken by other DenseBench runs on this machine; "
        "run fewer jobs at once (hydra.launcher.n_jobs) or pick one with device=cuda:N"
    )


@contextmanager
def session(cfg: DictConfig, run_dir: Path) -> Iterator[None]:
    """Enter everything a run needs around `execute`; a finished run (skipped, only read) takes no lock."""
    with preempt.handling(), ddp.process_group(), ExitStack() as stack:  # signals first: none is lost
        if ddp.is_main() and (cfg.force or not is_complete(run_dir)):
            stack.enter_context(RunLock(run_dir))
        stack.enter_context(claim_gpu(str(cfg.device)))
        yield
