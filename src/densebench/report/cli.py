"""`densebench report [RUNS_DIR ...] [--published DIR] [--out DIR] [--metric Mean_Dice] [--format md,csv,tex,html,json]`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from densebench.config import load_yaml
from densebench.errors import DenseBenchError
from densebench.report.build import Options, build_report
from densebench.report.load import Results, load_published, load_runs
from densebench.names import Catalog

FORMATS = ("md", "csv", "tex", "html", "json")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="densebench report",
        description="Aggregate metrics.json files of runs and/or published results into tables, statistics, plots "
        "and a self-contained HTML leaderboard.",
    )
    p.add_argument(
        "runs",
        nargs="*",
        type=Path,
        metavar="RUNS_DIR",
        help="folders searched for run directories (default: the configured output root, unless --published "
        "is given alone)",
    )
    p.add_argument(
        "--published",
        type=Path,
        metavar="DIR",
        help="folder of published results, one JSON per strategy: {dataset: {model: {metric: {mean, ci_lower, ci_upper}}}}",
    )
    p.add_argument("--out", type=Path, default=Path("report"), metavar="DIR", help="output folder (default: report)")
    p.add_argument(
        "--metric",
        default="Mean_Dice",
        help="metric to rank and tabulate (default Mean_Dice; any key of the results, e.g. mIoU, Mean_F1)",
    )
    p.add_argument(
        "--format", default=",".join(FORMATS), help=f"comma-separated outputs among {','.join(FORMATS)} (default all)"
    )
    p.add_argument(
        "--per-class",
        action="append",
        metavar="DATASET",
        help="dataset for per-class tables (repeatable; default every dataset of the runs)",
    )
    p.add_argument(
        "--paired",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="paired bootstrap of A − B on one dataset; each a run directory or DATASET/MODEL/STRATEGY[/seedN] "
        "(repeatable)",
    )
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples for --paired (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the --paired resamples (default 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures (faster; the HTML then has none)")
    p.add_argument(
        "--self-contained",
        action="store_true",
        help="embed figures and gallery panels in report.html (one file to send; larger) instead of "
        "writing them beside it in plots/ and gallery/",
    )
    p.add_argument(
        "--flops-size",
        type=int,
        default=None,
        metavar="N",
        help="also plot the metric against backbone forward FLOPs for an NxN image (counted on the meta "
        "device from the model configs, about a second per model; e.g. 224)",
    )
    p.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the Friedman/Nemenyi tests (default 0.05)"
    )
    return p


def _config_dir() -> Path | None:
    from densebench.config import config_dir

    try:
        return config_dir()
    except DenseBenchError:
        return None


def default_runs_dir(config_dir: Path | None) -> Path:
    """The configured output root: `output_dir` of configs/config.yaml (DENSEBENCH_OUTPUT, else ./outputs)."""
    if config_dir is not None:
        value = load_yaml(config_dir / "config.yaml").get("output_dir")
        if value:
            return Path(str(value))
    return Path("outputs")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise DenseBenchError(f"--format {args.format}: choose among {','.join(FORMATS)}")
    if args.n_resamples < 10:
        raise DenseBenchError("--n-resamples must be at least 10")
    start = time.perf_counter()
    config_dir = _config_dir()
    runs_dirs = list(args.runs)
    if not runs_dirs and args.published is None:
        runs_dirs = [default_runs_dir(config_dir)]
        if not runs_dirs[0].is_dir():
            raise DenseBenchError(
                f"no runs directory given and {runs_dirs[0]} does not exist; pass RUNS_DIR or --published DIR"
            )
    out = args.out.resolve()
    catalog = Catalog.load(config_dir)
    results = load_runs(runs_dirs, catalog, exclude=out) if runs_dirs else Results.empty()
    if args.published is not None:
        results = results.with_values(load_published(args.published, catalog))
    options = Options(
        metric=args.metric,
        per_class=args.per_class,
        paired=[tuple(p) for p in args.paired],
        n_resamples=args.n_resamples,
        bootstrap_seed=args.bootstrap_seed,
        alpha=args.alpha,
        plots=not args.no_plots,
        flops_size=args.flops_size or None,
        inputs={"runs_dirs": [str(d) for d in runs_dirs], "published": str(args.published) if args.published else None},
    )
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(results, catalog, options, out)

    from densebench.report import html, render

    written = []
    if "json" in formats:
        written.append(render.write_json(report, out))
    if "csv" in formats:
        written.append(out / "csv")
        render.write_csv(report, out)
    if "md" in formats:
        written.append(render.write_markdown(report, out))
    if "tex" in formats:
        written.append(render.write_tex(report, out))
    if "html" in formats:
        written.append(html.write_html(report, out, catalog, self_contained=args.self_contained))
    console = Console(soft_wrap=True)
    values = results.values
    summary = " and ".join(
        f"{values.loc[values['source'] == s, 'run'].nunique()} {s} results"
        if s == "published"
        else f"{values.loc[values['source'] == s, 'run'].nunique()} runs"
        for s in results.sources()
    )
    console.print(
        f"report of {summary or 'no results'}: {len(report.tables)} tables, {len(report.plots)} plots "
        f"in {time.perf_counter() - start:.1f} s",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"  note: {note}", highlight=False, markup=False)
    for path in written:
        console.print(f"  wrote {path}", highlight=False)
    return 0
