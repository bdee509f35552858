"""`densebench run`: Hydra entry point around `engine.train.execute`.

Arguments go to Hydra untouched (overrides, --multirun, --help, --cfg job). Config-group names are
checked first so a typo gives one line naming the known options. In a multirun a failing cell
records `error.json` in its run directory and the sweep goes on.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from densebench.cli import config_dir, print_error
from densebench.errors import ConfigError, DenseBenchError

GROUPS = ("model", "adapter", "dataset", "train", "eval", "experiment")


def check_group_choices(argv: list[str], configs: Path) -> None:
    """`model=nope` → one clear line listing the known models (Hydra prints several lines otherwise)."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in GROUPS or value.startswith(("glob(", "range(", "choice(", "${")):
            continue
        known = sorted(p.stem for p in (configs / key).glob("*.yaml"))
        for choice in value.split(","):
            if choice and choice != "null" and choice not in known:
                raise ConfigError(f"unknown {key} '{choice}'; known: {', '.join(known)} (configs/{key}/)")


def print_result(record: dict, console: Console) -> None:
    test = record["test"]
    boot = test["bootstrap"]["metrics"]
    table = Table(title=f"{record['run']['dataset']} · {record['run']['model']} · {record['run']['adapter']} "
                        f"· seed {record['run']['seed']} · test ({test['n_images']} images, {test['eval_mode']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{int(test['bootstrap']['ci'] * 100)}% CI", justify="right")
    for key, value in test["metrics"].items():
        b = boot.get(key, {})
        ci = f"[{b['ci_lower']:.4f}, {b['ci_upper']:.4f}]" if b.get("ci_lower") is not None else "-"
        table.add_row(key, "-" if value is None else f"{value:.4f}", ci)
    console.print(table)
    console.print(f"metrics: {Path(record['run']['run_dir']) / 'metrics.json'}", highlight=False)


def task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from densebench.engine.rundir import run_dir, write_json
    from densebench.engine.train import execute

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    console = Console(soft_wrap=True)
    try:
        record = execute(cfg, overrides)
    except DenseBenchError as exc:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            _record_failure(run_dir(cfg, overrides), exc, write_json)
        print_error(exc)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            sys.exit(2)
        return
    except Exception as exc:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise
        _record_failure(run_dir(cfg, overrides), exc, write_json)
        print_error(RuntimeError(f"run failed ({type(exc).__name__}): {exc}"))
        return
    if record is not None and cfg.get("progress", "auto") != "none":
        print_result(record, console)


def _record_failure(path: Path, exc: BaseException, write_json) -> None:
    write_json(path / "error.json", {
        "type": type(exc).__name__, "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    })


def main(argv: list[str]) -> int:
    import hydra

    configs = config_dir()
    check_group_choices(argv, configs)
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
