"""`densebench` command line: a thin shell that dispatches to the subcommands' modules.

`run` hands its arguments to Hydra unchanged, so overrides, `--multirun`, `--help` and `--cfg job`
behave as Hydra users expect. Other subcommands parse their own arguments. A `DenseBenchError`
ends the process with its one-line message instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys

from rich.console import Console

from densebench.config import take_config_dirs
from densebench.errors import DenseBenchError, print_error

# subcommand -> (module, function, one-line help). Each function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("densebench.engine.run", "main", "train and evaluate one run (Hydra overrides; --multirun for grids)"),
    "status": ("densebench.runs.status", "main", "done / running / failed / missing cells of a sweep"),
    "plan": ("densebench.bench.plan", "main", "before launching a grid: cells, done/pending, compute hours, memory"),
    "evaluate": (
        "densebench.engine.evaluate_cli",
        "main",
        "score a folder of predicted label PNGs against ground truth",
    ),
    "predict": ("densebench.predict.cli", "main", "apply a finished run to images and whole-slide images"),
    "bench": ("densebench.bench.cli", "main", "measure train/eval throughput and peak memory"),
    "report": ("densebench.report.cli", "main", "aggregate metrics.json files and published results"),
    "models": ("densebench.adapters.check", "models_main", "list the backbones with sizes and where weights are"),
    "doctor": ("densebench.backbones.cli", "doctor_main", "check which backbones' weights are available"),
    "data": ("densebench.data.cli", "main", "list, check and export datasets"),
    "analyze": ("densebench.analysis.cli", "main", "token similarity per layer, input-size sweeps, FLOPs"),
}


def usage() -> str:
    lines = ["usage: densebench <command> [args...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += [
        "",
        "`densebench <command> --help` describes each command.",
        "`--config-dir DIR` (any command): also read configs from DIR/<group>/*.yaml, before the built-in ones.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print_error(DenseBenchError(f"unknown command '{name}'; see `densebench --help`"))
        sys.exit(2)
    module_name, func_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        Console(stderr=True).print(f"densebench {name}: not available yet in this version", highlight=False)
        sys.exit(2)
    try:
        rest = take_config_dirs(rest)
        code = getattr(module, func_name)(rest)
    except DenseBenchError as exc:
        print_error(exc)
        sys.exit(2)
    sys.exit(code or 0)
