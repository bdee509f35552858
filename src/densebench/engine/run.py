"""`densebench run`: Hydra entry point around `engine.train.execute`.

Arguments go to Hydra untouched (overrides, --multirun, --help, --cfg job). Config-group names are
checked first so a typo gives one line naming the known options. In a multirun a failing cell
records `error.json` in its run directory and the sweep goes on. Around each run, `session` holds
the run directory's lock, the DDP process group and the stop-signal handlers; a stopped
(preempted) run has saved its checkpoint and hands the signal on (submitit requeues the job).
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from densebench.config import check_group_choices, check_keys, config_dir
from densebench.errors import DenseBenchError, as_user_error, one_line, print_error
from densebench.settings import check_overrides


# configs/hydra/launcher/submitit_*.yaml replace the plugin's defaults under the same names, so Hydra
# validates them against the plugin's schema (wanted) and warns that this is deprecated. Set at import:
# submitit jobs import this module to run `task`, and compose the config again.
warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema", category=UserWarning)


def print_result(record: dict, console: Console) -> None:
    test = record["test"]
    boot = test["bootstrap"]["metrics"]
    table = Table(
        title=f"{record['run']['dataset']} · {record['run']['model']} · {record['run']['adapter']} "
        f"· seed {record['run']['seed']} · test ({test['n_images']} images, {test['eval_mode']})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{int(test['bootstrap']['ci'] * 100)}% CI", justify="right")
    for key, value in test["metrics"].items():
        b = boot.get(key, {})
        ci = f"[{b['ci_lower']:.4f}, {b['ci_upper']:.4f}]" if b.get("ci_lower") is not None else "-"
        table.add_row(key, "-" if value is None else f"{value:.4f}", ci)
    console.print(table)
    console.print(f"metrics: {Path(record['run']['run_dir']) / 'metrics.json'}", highlight=False)


def task(cfg: DictConfig) -> str:
    """One cell; returns `done` or `failed: <one-line error>` (the sweeper's summary reads it)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from densebench.engine import ddp
    from densebench.runs import preempt
    from densebench.runs.rundir import run_dir
    from densebench.engine.session import session
    from densebench.engine.train import execute
    from densebench.settings import validate

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    console = Console(soft_wrap=True)
    path = run_dir(cfg, overrides)
    try:
        with session(cfg, path):  # the run lock is held while the run, or its failure record, writes
            try:
                validate(cfg)  # before a model is built or a file decoded; a bad cell is recorded like any failure
                record = execute(cfg, overrides)
            except Exception as raised:
                if isinstance(raised, preempt.Preempted):
                    raise
                exc = as_user_error(raised)  # a read-only or full disk is one line, not a traceback
                if ddp.is_main() and (multirun or path.is_dir()):  # `densebench status` then shows why
                    _record_failure(path, raised, cfg, overrides)
                if not multirun:
                    if exc is raised:
                        raise
                    raise exc from raised
                if not isinstance(exc, DenseBenchError):
                    exc = RuntimeError(f"run failed ({type(exc).__name__}): {exc}")
                print_error(exc)
                return f"failed: {type(exc).__name__}: {one_line(exc)}"
    except (DenseBenchError, OSError) as raised:  # a single run's error, or a cell that could not start: no record
        exc = as_user_error(raised)
        if not isinstance(exc, DenseBenchError):
            raise
        print_error(exc)
        if not multirun:
            sys.exit(2)
        return f"failed: {type(exc).__name__}: {one_line(exc)}"
    except preempt.Preempted as exc:
        print_error(exc)
        preempt.hand_on(exc)
    if record is not None and cfg.progress != "none":
        print_result(record, console)
        if not multirun:
            console.print(
                f"next: densebench report {cfg.output_dir}   (tables, rankings and figures of every run "
                "there; add --published DIR to set them beside the paper's)",
                highlight=False,
            )
    return "done"


def _record_failure(path: Path, exc: BaseException, cfg: DictConfig, overrides: list[str]) -> None:
    from omegaconf import OmegaConf

    from densebench.files import write_json

    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an unresolvable config may be the very failure
        config = OmegaConf.to_container(cfg, resolve=False)
    try:
        write_json(
            path / "error.json",
            {
                "type": type(exc).__name__,
                "message": one_line(exc),
                "traceback": "".join(traceback.format_exception(exc)),
                "overrides": overrides,
                "config": config,
            },
        )
    except OSError:  # the disk that failed the run may refuse the record too; the error line still follows
        pass


def main(argv: list[str]) -> int:
    import hydra

    configs = config_dir()
    check_group_choices(argv)
    check_keys(argv)
    check_overrides(argv)
    entry = hydra.main(config_path=str(configs), config_name="config", version_base="1.3")(task)
    saved = sys.argv
    sys.argv = ["densebench run", *argv]
    try:
        entry()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
