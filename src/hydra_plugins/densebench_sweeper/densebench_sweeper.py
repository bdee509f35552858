"""Hydra's basic sweeper plus what a 1530-cell grid needs at launch time.

The basic sweeper composes every cell's config before launching (to catch composition errors);
this one keeps what that composition tells: each cell's run directory, written to
`<sweep dir>/cells.json` for `densebench status`, and whether the cell is already finished or being
run by another live process. Such cells are not launched at all, so rerunning a half-finished grid
on SLURM submits only the missing, failed and interrupted cells (`force=true` launches all). The
launcher (basic, joblib, submitit) is unchanged; the run itself still checks and locks its directory.

Only Hydra's public plugin API is used: the sweep grammar is parsed by `OverridesParser` and expanded
here into the cartesian product of the swept values, as Hydra's basic sweeper does (discrete sweeps:
`a,b`, `range()`, `glob()`, `choice()`; `hydra.sweeper.params` first, command line after), batched by
`max_batch_size`, with the sweep's `multirun.yaml` saved in the sweep directory.
"""

from __future__ import annotations

import itertools
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

log = logging.getLogger(__name__)


def expand(overrides: list[Any]) -> list[list[str]]:
    """Every combination of the swept values, one override list per job (later keys vary fastest)."""
    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(f"{key}: the densebench sweeper takes lists, range(), glob() and choice(); "
                                 f"not {override.value_type.name}")
    return [list(job) for job in itertools.product(*choices.values())]


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

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        inner = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.launcher = _SkipSettled(inner, self)

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
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
        return returns

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose and resolve each cell (the basic sweeper only composes) and record where it writes.

        Resolving here turns a missing environment variable or a bad interpolation into one error
        before launch, instead of a failed job per cell.
        """
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        from densebench.errors import print_error
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
                cell = " ".join(overrides)
                print_error(ConfigError(f"cell '{cell}': {str(exc).splitlines()[0]}; nothing launched"))
                raise SystemExit(2) from None
            self._batch.append((Cell.from_config(cfg, list(cfg.hydra.overrides.task)), bool(cfg.force)))
        self.cells += [cell for cell, _ in self._batch]
        write_manifest(Path(str(self.config.hydra.sweep.dir)), self.cells)


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
            log.info(f"Skipping {states.count('done')} finished and {states.count('running')} running cells "
                     f"(force=true launches them); launching {len(todo)} of {len(states)}")
        results: list[JobReturn | None] = [None] * len(states)
        if todo:
            for i, ret in zip(todo, self.inner.launch([job_overrides[i] for i in todo], initial_job_idx)):
                results[i] = ret
        for i, s in enumerate(states):
            if results[i] is None:
                results[i] = JobReturn(overrides=list(job_overrides[i]), status=JobStatus.COMPLETED, _return_value=s)
        return results  # type: ignore[return-value]
