"""Progress: rich bars on a terminal, plain one-line-per-epoch logs otherwise (CI, SLURM logs)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    """Epoch and step bars; `style` is rich | plain | none (auto picks rich on a TTY)."""

    def __init__(self, style: str = "auto", console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True)
        if style == "auto":
            style = "rich" if sys.stdout.isatty() else "plain"
        self.style = style
        self._bars: Progress | None = None
        self._epoch_task: TaskID | None = None
        self._step_task: TaskID | None = None

    def __enter__(self) -> "RunProgress":
        if self.style == "rich":
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
            )
            self._bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.__exit__(*exc)

    def start_epochs(self, total: int, done: int) -> None:
        if self._bars is not None:
            self._epoch_task = self._bars.add_task("epochs", total=total, completed=done, info="")

    def start_steps(self, description: str, total: int, completed: int = 0) -> None:
        if self._bars is not None:
            if self._step_task is not None:
                self._bars.remove_task(self._step_task)
            self._step_task = self._bars.add_task(description, total=total, completed=completed, info="")

    def step(self, info: str = "", advance: int = 1) -> None:
        if self._bars is not None and self._step_task is not None:
            self._bars.update(self._step_task, advance=advance, info=info)

    def end_epoch(self, line: str) -> None:
        if self._bars is not None and self._epoch_task is not None:
            self._bars.update(self._epoch_task, advance=1, info=line)
            self._bars.console.print(line, highlight=False)
        elif self.style == "plain":
            print(line, flush=True)

    def log(self, line: str) -> None:
        if self.style != "none":
            self.console.print(line, highlight=False)
