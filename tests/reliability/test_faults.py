"""Faults: a run killed with SIGKILL at any point and started again ends with the test block of an
uninterrupted run of the same seed and no partial file; two runs of one cell at once, a read-only
and a full output directory are one line each."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.cases import Case, line
from tests.reliability.conftest import RUN, assert_one_line_error, cli

IDENTICAL = "the rerun resumes and its metrics.json `test` block equals the uninterrupted run's; no partial file"
CASES = [
    Case("kill-in-first-epoch", "faults", "kill -9 after the first optimiser step, then the same command", IDENTICAL),
    Case("kill-between-epochs", "faults", "kill -9 after epoch 1's checkpoint, before its log line", IDENTICAL),
    Case("kill-in-evaluation", "faults", "kill -9 while the test set is evaluated", IDENTICAL),
    Case("kill-writing-results", "faults", "kill -9 half-way through writing metrics.json", IDENTICAL),
    Case(
        "two-runs-at-once",
        "faults",
        "the same run started while another process writes it",
        line("is being written by pid"),
        ("is being written by pid",),
    ),
    Case(
        "read-only-output",
        "faults",
        "`output_dir` on a read-only file system",
        line("cannot write", "Read-only file system", "another output_dir"),
        ("cannot write", "Read-only file system", "another output_dir"),
    ),
    Case(
        "full-output",
        "faults",
        "the disk fills while checkpoints are written (a file size limit)",
        line("cannot write", "checkpoints/", "free space"),
        ("cannot write", "checkpoints/", "free space"),
    ),
]
BY_ID = {c.id: c for c in CASES}


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _in_first_epoch() -> None:
    from densebench.engine.progress import RunProgress

    original = RunProgress.step

    def step(self, info=""):
        original(self, info)
        _kill_self()  # the first progress step: one optimiser step of epoch 1 done

    RunProgress.step = step


def _between_epochs() -> None:
    from densebench.engine.train import Run

    original = Run.save_last

    def save_last(self, epoch, partial=None):
        original(self, epoch, partial)
        if partial is None and epoch == 0:
            _kill_self()  # epoch 1 checkpointed, its log line not yet written

    Run.save_last = save_last


def _in_evaluation() -> None:
    from densebench.engine.progress import RunProgress

    original = RunProgress.start_steps

    def start_steps(self, what, total):
        original(self, what, total)
        if what == "test":
            _kill_self()

    RunProgress.start_steps = start_steps


def _writing_results() -> None:
    import tempfile

    from densebench import files

    original = files.write_atomic

    def write_atomic(path, data, durable=True):
        if Path(path).name != "metrics.json":
            return original(path, data, durable)
        fd, _ = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.", suffix=".tmp")
        os.write(fd, data[: len(data) // 2])  # what write_atomic has written when the kill comes
        _kill_self()

    files.write_atomic = write_atomic  # write_json (metrics.json) writes through it


POINTS: dict[str, Callable[[], None]] = {
    "kill-in-first-epoch": _in_first_epoch,
    "kill-between-epochs": _between_epochs,
    "kill-in-evaluation": _in_evaluation,
    "kill-writing-results": _writing_results,
}


def forked_child() -> None:
    """In a forked child: one intra-op thread, since the parent's OpenMP pool does not survive fork
    (libgomp would hang). Results do not depend on the thread count (the kill tests compare them)."""
    import torch

    torch.set_num_threads(1)


def run_killed(overrides: list[str], arm: Callable[[], None]) -> int:
    """Run in a forked child that SIGKILLs itself at the armed point; returns the signal it died of."""
    pid = os.fork()
    if pid == 0:  # the child: no cleanup of any kind runs after the kill
        try:
            forked_child()
            from densebench.config import compose
            from densebench.engine.train import execute
            from densebench.runs import preempt

            arm()
            with preempt.handling():
                execute(compose(overrides), overrides)
        finally:
            os._exit(3)  # the kill point was never reached
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


@pytest.mark.parametrize("point", list(POINTS))
def test_a_run_killed_and_started_again_ends_as_if_never_killed(point, finished_run, tmp_path):
    from densebench.config import compose
    from densebench.engine.train import execute
    from densebench.runs import preempt

    _, _, reference = finished_run
    overrides = [*RUN, f"output_dir={tmp_path}"]
    assert run_killed(overrides, POINTS[point]) == signal.SIGKILL
    (run_dir,) = {p.parent for p in tmp_path.rglob("config.yaml")}
    assert not (run_dir / "metrics.json").exists()
    with preempt.handling():
        execute(compose(overrides), overrides)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["test"] == reference["test"] and record["val"] == reference["val"]
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]  # no partial file left
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]


def test_a_second_run_of_a_cell_being_written_is_one_line(tmp_path, capsys):
    from densebench.config import compose
    from densebench.runs.lock import RunLock
    from densebench.runs.rundir import run_dir

    overrides = [*RUN, f"output_dir={tmp_path}"]
    lock = RunLock(run_dir(compose(overrides), overrides))
    lock.acquire()  # what the first run holds while it writes
    try:
        code, _, err = cli(capsys, "run", *overrides)
    finally:
        lock.release()
    assert_one_line_error(code, err, *BY_ID["two-runs-at-once"].needles, str(os.getpid()))
    assert not list(tmp_path.rglob("config.yaml"))  # the second run wrote nothing


def test_a_read_only_output_directory_is_one_line(tmp_path, capsys, monkeypatch):
    """Root ignores file modes, so a read-only file system is what `os` answers for paths under it."""
    root = str(tmp_path / "ro")
    real_mkdir, real_os_open = os.mkdir, os.open

    def refuse(path):
        if os.fspath(path).startswith(root):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def mkdir(path, *a, **k):
        refuse(path)
        return real_mkdir(path, *a, **k)

    def os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    code, _, err = cli(capsys, "run", *RUN, f"output_dir={root}")
    assert_one_line_error(code, err, *BY_ID["read-only-output"].needles, root)


def test_a_full_output_disk_is_one_line_naming_the_file(tmp_path):
    """A file size limit makes the kernel refuse checkpoint writes (EFBIG), as a full disk would (ENOSPC)."""
    err_path = tmp_path / "stderr.txt"
    pid = os.fork()
    if pid == 0:
        try:
            forked_child()
            sys.stderr = open(err_path, "w", buffering=1)  # noqa: SIM115 (the child exits without closing)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (48_000, resource.RLIM_INFINITY))
            from densebench.cli import main

            main(["run", *RUN, f"output_dir={tmp_path / 'out'}"])
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert_one_line_error(os.WEXITSTATUS(status), err_path.read_text(), *BY_ID["full-output"].needles)
    assert not list((tmp_path / "out").rglob("*.tmp"))  # the refused write left no partial file
