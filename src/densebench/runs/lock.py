"""One writer per run directory: an exclusive lock file next to it, naming its owner, with a heartbeat.

Two sweeps pointed at the same output root, or a requeued job and its stale twin, must never write
the same run directory at once. The lock is `<parent>/.<run>.lock` (beside the run directory, so
`force=true` can delete the directory while holding it). It is created by hard-linking a complete
temporary file onto that name, which fails if the name exists: atomic on local file systems and
on NFS, and a reader never sees a half-written lock. It records host, PID, process start time and
the scheduler's job id; a daemon thread refreshes its mtime every `heartbeat_s` seconds.

A lock is stale when its owner is gone: on the same host, no process with that PID and start time
runs; on another host, the heartbeat is older than `stale_s`; under SLURM, the owner had our own
job id but ran on another node (a requeued job always follows the end of its previous incarnation).
A stale lock is broken under a short-lived `.break` lock, so two contenders cannot both take it over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from densebench.errors import DenseBenchError

HEARTBEAT_S = 30.0
STALE_S = 300.0  # well above NFS attribute caching (<= 60 s) and modest clock skew


class RunLocked(DenseBenchError):
    """The run directory is being written by another live process."""


def lock_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.lock"


def job_id() -> str | None:
    """The scheduler's id for this job, stable across requeues (SLURM), else None."""
    return os.environ.get("SLURM_JOB_ID")


def _owner() -> dict[str, Any]:
    me = psutil.Process()
    return {
        "host": socket.gethostname(),
        "pid": me.pid,
        "pid_started": me.create_time(),
        "job": job_id(),
        "token": uuid.uuid4().hex,
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def read_owner(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _process_runs(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def owner_alive(path: Path, stale_s: float = STALE_S) -> dict[str, Any] | None:
    """The owner recorded in lock file `path` if it still holds the lock, else None (absent or stale)."""
    owner = read_owner(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    if owner is None:  # unreadable: only trust it while fresh
        return None if age > stale_s else {"host": "?", "pid": "?", "since": "?"}
    if owner.get("host") == socket.gethostname():
        return owner if _process_runs(int(owner["pid"]), float(owner["pid_started"])) else None
    if owner.get("job") and owner["job"] == job_id():  # our own job, requeued onto another node
        return None
    return owner if age <= stale_s else None


def holder(run_dir: Path, stale_s: float = STALE_S) -> dict[str, Any] | None:
    """Who is writing `run_dir` right now (None: nobody)."""
    return owner_alive(lock_path(run_dir), stale_s)


class RunLock:
    """`with RunLock(run_dir):` — exclusive right to write `run_dir`; raises RunLocked if a live owner has it."""

    def __init__(self, run_dir: Path, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S) -> None:
        self.run_dir = Path(run_dir)
        self.path = lock_path(self.run_dir)
        self.heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self.owner: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        owner = _owner()
        tmp = self.path.with_name(f"{self.path.name}.{owner['token']}")
        tmp.write_text(json.dumps(owner))
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    live = owner_alive(self.path, self.stale_s)
                    if live is not None:
                        raise RunLocked(
                            f"{self.run_dir} is being written by pid {live['pid']} on {live['host']} "
                            f"(since {live['since']}); wait for it, or delete {self.path} if that process is gone"
                        ) from None
                    self._break_stale()
                    continue
                self.owner = owner
                break
            else:
                raise RunLocked(f"could not take over the stale lock {self.path}; delete it and retry")
        finally:
            tmp.unlink(missing_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat {self.run_dir.name}", daemon=True)
        self._thread.start()

    def _break_stale(self) -> None:
        """Remove a stale lock, re-checked under `.break` so that a fresh lock is never removed."""
        guard = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > self.stale_s:  # its breaker died mid-break
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
            return
        os.close(fd)
        try:
            if owner_alive(self.path, self.stale_s) is None:
                self.path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        current = read_owner(self.path)
        if self.owner is not None and current is not None and current.get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)
        self.owner = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
