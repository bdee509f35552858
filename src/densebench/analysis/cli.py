"""`densebench analyze <tokens|sizes|flops> [KEY=VALUE ...]`: dispatch to the analyses (docs/analysis.md)."""

from __future__ import annotations

import importlib

from densebench.errors import ConfigError

# analysis -> (module, one-line help); each module has main(argv) -> exit code.
ANALYSES = {
    "tokens": ("densebench.analysis.tokens", "patch-token similarity, effective rank and class separability per layer"),
    "sizes": ("densebench.analysis.sizes", "one model at several input sizes: metric, time and memory"),
    "flops": ("densebench.analysis.flops_cli", "parameters and forward FLOPs of every backbone at an input size"),
}

USAGE = """usage: densebench analyze <analysis> [KEY=VALUE ...]

analyses:
{rows}

KEY=VALUE sets the analysis' options (configs/analysis.yaml), run=RUN_DIR (a trained run) and out=DIR;
every other KEY=VALUE configures model and data as for `densebench run` (model=, dataset=, input_size=, ...).
With no arguments an analysis runs on the demo model and data. See docs/analysis.md."""


def usage() -> str:
    return USAGE.format(rows="\n".join(f"  {name:<8} {help_}" for name, (_, help_) in ANALYSES.items()))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help") or (len(argv) > 1 and argv[1] in ("-h", "--help")):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in ANALYSES:
        raise ConfigError(f"unknown analysis '{name}'; choose one of {', '.join(ANALYSES)}")
    return importlib.import_module(ANALYSES[name][0]).main(rest)
