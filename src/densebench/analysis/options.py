"""Command-line plumbing shared by the `densebench analyze` commands.

An analysis takes the run overrides of `densebench run` plus its own keys (a section of
configs/analysis.yaml, `run=RUN_DIR`, `out=DIR`), all as KEY=VALUE, so one command line can say
`model=uni dataset=glas n_images=4`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from densebench.errors import ConfigError

COMMON_KEYS = ("run", "out")


@dataclass
class Args:
    options: DictConfig  # the command's section of configs/analysis.yaml, with KEY=VALUE applied
    run: Path | None  # a trained run directory (run=...)
    out: Path | None  # output folder (out=...)
    overrides: list[str]  # everything else: the run config's overrides


def split_args(argv: list[str], section: str) -> Args:
    """Separate the analysis' own KEY=VALUE arguments from the run overrides."""
    from densebench.config import config_dir, load_yaml, merge

    defaults = load_yaml(config_dir() / "analysis.yaml")[section]
    own, overrides = [], []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" in arg and (key in defaults or key in COMMON_KEYS):
            own.append(arg)
        elif arg.startswith("-"):
            raise ConfigError(
                f"densebench analyze {section}: unknown option {arg}; options are KEY=VALUE "
                f"({', '.join([*defaults, *COMMON_KEYS])}) and run overrides"
            )
        else:
            overrides.append(arg)
    given = OmegaConf.from_dotlist(own)
    run = given.pop("run", None)
    out = given.pop("out", None)
    return Args(merge(defaults, given), Path(str(run)) if run else None, Path(str(out)) if out else None, overrides)


def run_config(run: Path, overrides: list[str]) -> DictConfig:
    """A finished run's resolved config, with runtime overrides (device, dataset.root, input_size, ...)."""
    from densebench.config import GROUPS, load_yaml, merge

    saved = run / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"run={run}: no config.yaml there; point run= at a run directory (…/<model>/<adapter>/seedN)")
    if not (run / "checkpoints" / "best.pt").is_file():
        raise ConfigError(f"run={run}: no checkpoints/best.pt yet; wait for the run's first validation epoch")
    for arg in overrides:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in GROUPS:
            raise ConfigError(f"run={run} fixes the {key}; drop {arg} (or leave out run= to analyse another {key})")
    return merge(load_yaml(saved), OmegaConf.from_dotlist(overrides))


def load_config(args: Args) -> DictConfig:
    """The run's config when run= is given, else the config `densebench run <overrides>` would use."""
    from densebench.config import compose

    return run_config(args.run, args.overrides) if args.run else compose(args.overrides)


def output_dir(args: Args, cfg: DictConfig, command: str) -> Path:
    """out=, else <run>/analysis/<command>, else <output_dir>/analysis/<command>/<dataset>/<model>."""
    if args.out is not None:
        return args.out
    if args.run is not None:
        return args.run / "analysis" / command
    return Path(str(cfg.output_dir)) / "analysis" / command / cfg.dataset.name / cfg.model.name


def announce(written: list[Path], table: Table | None) -> int:
    """Print the result table (None: quiet, e.g. progress=none) and the files written; the exit code."""
    console = Console(soft_wrap=True)
    if table is not None:
        console.print(table)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    return 0
