"""Stop signals (SLURM preemption and time limits): checkpoint at the next safe point, then requeue.

SLURM sends SIGUSR2 `signal_delay_s` before the time limit (submitit's `--signal`), SIGTERM on
preemption or `scancel`, and SIGKILL a grace period later; SIGUSR1 is the other common choice. A
step cannot be resumed half-way, so the handler only records the signal, and the run looks at it
at safe points:

- after every optimiser step: it checkpoints the epoch so far (steps done, loss sum, seconds) with
  model, optimiser, scheduler, scaler and RNG states. The resumed run skips those steps: the
  epoch's permutation and each item's augmentation are seeded by (seed, epoch, index), so the rest
  of the epoch sees the same batches, and its result is bitwise that of an uninterrupted run on CPU
  with fixed seeds (GPU kernels may not be deterministic);
- after every validation image: the epoch's training is complete; it checkpoints it as such and
  validation reruns on resume;
- after every test image: `last.pt` already holds the whole training; nothing more to save.

It then raises `Preempted`. The entry point hands the signal on to the handler that was installed
before ours: under submitit that one pickles the job and requeues it (SIGUSR2; `max_num_timeout`
bounds the requeues), and the requeued job resumes from the checkpoint. Without such a handler the
process exits with status 128 + signal; rerunning the same command resumes.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

_received: int | None = None


class Preempted(Exception):
    def __init__(self, signum: int, where: str) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} {where}; rerun to resume")
        self.signum = signum


def requested() -> int | None:
    """The stop signal received while `handling()` was active, if any."""
    return _received


def _record(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum


@contextmanager
def handling() -> Iterator[None]:
    """Record stop signals instead of dying on them (main thread only: elsewhere signals cannot be caught)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None
    previous = {sig: signal.signal(sig, _record) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _received = None


def hand_on(exc: Preempted) -> None:
    """After the checkpoint: let the previously installed handler act (submitit requeues), then exit."""
    handler = signal.getsignal(exc.signum)
    if callable(handler):
        handler(exc.signum, sys._getframe())
    raise SystemExit(128 + exc.signum)
