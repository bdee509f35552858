"""`densebench analyze flops [models=[uni,virchow2]] [input_size=224] [variant=full] [out=DIR]`.

Parameters and forward FLOPs of each backbone for one square image, counted on the meta device
(no weights, no memory; see `bench.flops`). Writes flops.json and prints a table.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from densebench.bench.flops import backbone_cost
from densebench.analysis.options import announce, split_args
from densebench.config import config_dir, group_options
from densebench.files import write_json
from densebench.errors import ConfigError
from densebench.report.cli import default_runs_dir


def model_names(selected: Any) -> list[str]:
    known = sorted(group_options("model"))
    if selected is None:
        return known
    names = [selected] if isinstance(selected, str) else [str(m) for m in selected]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigError(f"models={unknown}: not in configs/model/; known: {', '.join(known)}")
    return names


def costs(names: list[str], input_size: int, variant: str) -> list[dict[str, Any]]:
    from densebench.config import compose

    rows = []
    for name in names:
        cfg = compose([f"model={name}", f"model.variant={variant}"]).model
        rows.append(
            {
                "model": name,
                "display_name": cfg.get("display_name") or name,
                "variant": variant,
                **backbone_cost(cfg, input_size),
            }
        )
    return rows


def main(argv: list[str]) -> int:
    args = split_args(argv, "flops")
    if args.overrides:
        raise ConfigError(
            f"densebench analyze flops takes models=, input_size=, variant=, out=; not {args.overrides[0]}"
        )
    opts = args.options
    rows = costs(model_names(opts.models), int(opts.input_size), str(opts.variant))
    out = args.out or default_runs_dir(config_dir()) / "analysis" / "flops"
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "flops.json",
        {
            "kind": "densebench.analysis.flops",
            "input_size": int(opts.input_size),
            "variant": str(opts.variant),
            "models": rows,
        },
    )
    table = Table(title=f"backbones: one forward pass of a {opts.input_size}x{opts.input_size} image")
    for column in ("model", "params (M)", "GFLOPs", "tokens", "input"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(
            r["display_name"],
            f"{r['params'] / 1e6:.1f}",
            f"{r['flops'] / 1e9:.1f}",
            str(r["tokens"]),
            str(r["input_size"]),
        )
    return announce([out / "flops.json"], table)
