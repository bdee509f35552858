"""Hydra's basic sweeper plus what a 1530-cell grid needs at launch time.

The basic sweeper composes every cell's config before launching (to catch composition errors);
this one keeps what that composition tells: each cell's run directory, written to
`<sweep dir>/cells.json` for `densebench status`, and whether the cell is already finished or being
run by another live process. Such cells are not launched at all, so rerunning a half-finished grid
on SLURM submits only the missing, failed and interrupted cells (`force=true` launches all). The
launcher (basic, joblib, submitit) is unchanged; the run itself still checks and locks its directory.
With submitit_slurm, SLURM is first asked whether it could run the jobs at all (slurm.py).

When every cell has run, the sweep ends with a summary (done, skipped, failed with each one-line error)
and exits with status 1 if any cell failed, so a script or a cluster job can tell.

Only Hydra's public plugin API is used: the sweep grammar is parsed by `OverridesParser` and expanded
here into the cartesian product of the swept values, as Hydra's basic sweeper does (discrete sweeps:
`a,b`, `range()`, `glob()`, `choice()`; `hydra.sweeper.params` first, command line after), batched by
`max_batch_size`, with the sweep's `multirun.yaml` saved in the sweep directory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from densebench.runs.grid import expand
from hydra_plugins.densebench_sweeper import slurm

log = logging.getLogger(__name__)


class DenseBenchSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__()
        if max_batch_size is not None and max_batch_size <= 0:
            raise HydraException(f"hydra.sweeper.max_batch_size={max_batch_size}: use a positive number or null")
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context: Any = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.cells: list[Any] = []
        self._batch: list[tuple[Any, bool]] = []
        self.outcomes: list[tuple[Any, str, str]] = []  # (cell, done | skipped | failed, one-line reason)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        inner = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.launcher = _SkipSettled(inner, self)

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        """Every cell of the grid, then the summary; exit status 1 when a cell failed."""
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = expand(parser.parse_overrides([*(f"{k}={v}" for k, v in self.params.items()), *arguments]))
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or max(len(jobs), 1)
        returns: list[Sequence[JobReturn]] = []
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            for r in results:
                _ = r.return_value  # raises the job's exception, as Hydra's sweepers do
            returns.append(results)
        if summarise(self.outcomes):
            raise SystemExit(1)
        return returns

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose and resolve each cell (the basic sweeper only composes) and record where it writes.

        Resolving here turns a missing environment variable or a bad interpolation into one error
        before launch, instead of a failed job per cell.
        """
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        from densebench.errors import print_error
        from densebench.data.fingerprint import recorded_root
        from densebench.runs.cells import Cell, write_manifest
        from densebench.errors import ConfigError

        assert self.hydra_context is not None and self.config is not None
        self._batch = []
        for overrides in batch:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            task = cfg.copy()
            with open_dict(task):
                del task["hydra"]
            try:
                OmegaConf.to_container(task, resolve=True)
            except OmegaConfBaseException as exc:  # one line and exit 2 like any config error, no traceback
                print_error(ConfigError(f"cell '{' '.join(overrides)}': {str(exc).splitlines()[0]}; nothing launched"))
                raise SystemExit(2) from None
            cell = Cell.from_config(cfg, list(cfg.hydra.overrides.task))
            # A finished cell whose dataset.root changed is launched: its run compares the data (data/fingerprint.py).
            moved = cfg.dataset.get("root") != recorded_root(cell.run_dir) and (cell.run_dir / "metrics.json").is_file()
            self._batch.append((cell, bool(cfg.force) or moved))
        self.cells += [cell for cell, _ in self._batch]
        write_manifest(Path(str(self.config.hydra.sweep.dir)), self.cells)


def _preflight(launcher: Any) -> None:
    """Settings SLURM would never run: one line and exit 2, like a config error, before any submission."""
    from densebench.errors import print_error
    from densebench.errors import DenseBenchError

    try:
        slurm.preflight(launcher.params)
    except DenseBenchError as exc:
        print_error(exc)
        raise SystemExit(2) from None


class _SkipSettled(Launcher):
    """Launches the cells of a batch that are neither finished nor running elsewhere."""

    def __init__(self, inner: Launcher, sweeper: DenseBenchSweeper) -> None:
        self.inner = inner
        self.sweeper = sweeper

    def setup(self, **kwargs: Any) -> None:
        self.inner.setup(**kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from densebench.runs.cells import state

        states = [None if force else state(cell.run_dir) for cell, force in self.sweeper._batch]
        todo = [i for i, s in enumerate(states) if s not in ("done", "running")]
        skipped = len(states) - len(todo)
        if skipped:
            log.info(
                f"Skipping {states.count('done')} finished and {states.count('running')} running cells "
                f"(force=true launches them); launching {len(todo)} of {len(states)}"
            )
        results: list[JobReturn | None] = [None] * len(states)
        if todo and slurm.is_slurm(self.inner):
            _preflight(self.inner)
            slurm.quiet_sacct()
        if todo:
            for i, ret in zip(todo, self.inner.launch([job_overrides[i] for i in todo], initial_job_idx)):
                results[i] = ret
        for i, s in enumerate(states):
            cell = self.sweeper._batch[i][0]
            if results[i] is None:
                results[i] = JobReturn(overrides=list(job_overrides[i]), status=JobStatus.COMPLETED, _return_value=s)
                why = "already finished" if s == "done" else "running in another process"
                self.sweeper.outcomes.append((cell, "skipped", why))
            elif (launched := results[i]) is not None:
                self.sweeper.outcomes.append((cell, *outcome(cell.run_dir, launched)))
        return results  # type: ignore[return-value]


def outcome(run_dir: Path, ret: JobReturn) -> tuple[str, str]:
    """(done | failed, one-line reason) of a launched cell: what its job returned, else its run directory."""
    from densebench.errors import one_line
    from densebench.runs.cells import state
    from densebench.runs.status import error_line

    value = getattr(ret, "_return_value", None)
    if ret.status == JobStatus.FAILED:
        return "failed", f"{type(value).__name__}: {one_line(value)}" if isinstance(
            value, BaseException
        ) else "job failed"
    if isinstance(value, str) and value.startswith("failed: "):
        return "failed", value.removeprefix("failed: ")
    now = state(run_dir)
    if now == "done":
        return "done", ""
    return "failed", error_line(run_dir) if now == "failed" else f"no result ({now})"


def summarise(outcomes: list[tuple[Any, str, str]]) -> bool:
    """Print `sweep: N cells: a done, b skipped, c failed` and a line per failed cell; True if any failed."""
    from rich.console import Console
    from rich.markup import escape

    counts = {k: sum(o == k for _, o, _ in outcomes) for k in ("done", "skipped", "failed")}
    console = Console(soft_wrap=True)
    style = "red" if counts["failed"] else "green"
    console.print(
        f"[{style}]sweep: {len(outcomes)} cells: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + "[/]",
        highlight=False,
    )
    for cell, kind, why in outcomes:
        if kind == "failed":
            extra = " ".join(cell.semantic)
            name = f"{cell.dataset} · {cell.model} · {cell.adapter} · seed {cell.seed}" + (
                f" · {extra}" if extra else ""
            )
            console.print(f"  [red]failed[/] {escape(name)}: {escape(why)}", highlight=False)
    return counts["failed"] > 0
