"""`densebench analyze sizes`: one model at several input sizes — metric, time and memory against size.

Two ways, depending on whether a trained run is given:

- `run=RUN_DIR` (evaluate): the run's best weights evaluated on its test split at each size, so the
  same trained model meets different input granularities. In slide mode the size is the window (how
  much context a forward pass sees, at native resolution); in resize mode (`eval.mode=resize`) it is
  the resolution every image is squashed to, the paper's setting.
- no run (train): one full `densebench run` per size (`input_size=<s>`, the paper's resolution
  ablation), each in its own run directory, reused when already finished.

Sizes are rounded to the patch size. Time is seconds per test image; memory is the peak of CUDA
allocations (exact, reset per size) or, on CPU, of the process' resident memory during the pass.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.table import Table
from torch.utils.data import DataLoader

from densebench.backbones.catalog import build_on_meta
from densebench.analysis.options import Args, announce, load_config, output_dir, split_args
from densebench.data.select import choose
from densebench.data.dataset import SegmentationDataset
from densebench.engine import checkpoint
from densebench.bench.cli import timed
from densebench.engine.inference import evaluate
from densebench.engine.progress import RunProgress
from densebench.files import write_json
from densebench.engine.setup import build_environment, resolve_device, resolve_input_size
from densebench.errors import ConfigError
from densebench.metrics import test_block


def resolve_sizes(options: DictConfig, base: int, patch: int, model_cfg: DictConfig) -> list[int]:
    """Explicit `sizes`, else `factors` × base; each rounded to the nearest multiple of the patch (≥ 1 patch)."""
    if model_cfg.fixed_input_size:
        raise ConfigError(
            f"model {model_cfg.name} only takes input_size={model_cfg.fixed_input_size}; "
            "a sizes analysis needs a model with a free input size"
        )
    wanted = options.sizes if options.sizes is not None else [f * base for f in options.factors]
    if not wanted:
        raise ConfigError("sizes=[] and factors=[]: give at least one input size")
    return sorted({max(patch, math.floor(float(s) / patch + 0.5) * patch) for s in wanted})  # halves round up


def evaluate_sizes(cfg: DictConfig, options: DictConfig, run: Path) -> tuple[int, list[dict[str, Any]]]:
    """(base size, one row per size) for a trained run's best weights on its test split."""
    env = build_environment(cfg)
    device, source = env.device, env.splits.source
    chosen = choose(env.splits.splits, str(options.split), options.n_images, int(options.image_seed))
    model = env.segmenter
    model.load_trainable_state_dict(checkpoint.load(run / "checkpoints" / "best.pt", device)["model"])
    model.eval()
    base = env.input_size
    sizes = resolve_sizes(options, base, model.backbone.patch_size, cfg.model)
    normalize = env.normalizer()
    dataset = SegmentationDataset(chosen, env.sample_loader())
    bs = cfg.eval.bootstrap
    rows = []
    progress = RunProgress(cfg.progress)
    with progress:
        for size in sizes:
            predictor = env.predictor(size)
            for _ in range(int(options.warmup)):
                predictor(normalize(dataset[0]["image"][None].to(device)))
            progress.start_steps(f"size {size}", len(dataset))
            result: dict[str, Any] = {}

            def run_eval() -> None:
                result["cms"] = evaluate(
                    model,
                    DataLoader(dataset, batch_size=1),
                    predictor,
                    normalize,
                    source.num_classes,
                    source.ignore_index,
                    device,
                    on_item=progress.step,
                )

            times, memory = timed(run_eval, 1, 0, device)
            block = test_block(result["cms"], source.classes, int(bs.n), float(bs.ci), int(bs.seed))
            rows.append(
                _row(
                    size,
                    block,
                    cfg.train.select_metric,
                    times[0] / len(dataset),
                    getattr(memory, "cuda_mb", None) or memory.peak_mb,
                )
            )
            progress.log(
                f"input size {size}: {cfg.train.select_metric} "
                f"{block['metrics'][cfg.train.select_metric]:.4f}, {rows[-1]['s_per_image']:.3f} s/image"
            )
    return base, rows


def train_sizes(overrides: list[str], options: DictConfig) -> tuple[int, list[dict[str, Any]]]:
    """(base size, one row per size), training one run per size with the engine."""
    from densebench.config import compose
    from densebench.engine.train import execute

    if any(o.split("=", 1)[0].lstrip("+") == "input_size" for o in overrides):
        raise ConfigError("input_size= is what sizes= varies; drop it (set sizes=[...] instead)")
    cfg = compose(overrides)
    backbone = build_on_meta(cfg.model)
    base = resolve_input_size(cfg, backbone)
    rows = []
    for size in resolve_sizes(options, base, backbone.patch_size, cfg.model):
        run_overrides = [*overrides, f"input_size={size}"]
        record = execute(compose(run_overrides), run_overrides)
        assert record is not None  # None only on the non-zero ranks of a DDP run
        test, timing, memory = record["test"], record["timing"], record["memory"]
        row = _row(
            size,
            test,
            cfg.train.select_metric,
            timing["eval_s"] / max(test["n_images"], 1),
            memory.get("peak_cuda_mb") or memory["peak_rss_mb"],
        )
        row.update(train_s_per_epoch=timing["train_s_per_epoch"], run_dir=record["run"]["run_dir"])
        rows.append(row)
    return base, rows


def _row(size: int, test: dict[str, Any], metric: str, s_per_image: float, peak_mb: float) -> dict[str, Any]:
    boot = (test.get("bootstrap") or {}).get("metrics", {}).get(metric, {})
    return {
        "input_size": size,
        "metrics": test["metrics"],
        "n_images": test["n_images"],
        "ci": {"ci_lower": boot.get("ci_lower"), "ci_upper": boot.get("ci_upper")},
        "s_per_image": s_per_image,
        "peak_memory_mb": peak_mb,
    }


def write_outputs(doc: dict[str, Any], out: Path) -> list[Path]:
    """sizes.json, sizes.csv (one row per size) and sizes.png."""
    from densebench.analysis.plots import sizes_plot

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sizes.json", doc)
    metrics = list(doc["rows"][0]["metrics"])
    extra = [k for k in ("train_s_per_epoch", "run_dir") if k in doc["rows"][0]]
    with (out / "sizes.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["input_size", *metrics, "ci_lower", "ci_upper", "s_per_image", "peak_memory_mb", *extra])
        for r in doc["rows"]:
            writer.writerow(
                [
                    r["input_size"],
                    *(r["metrics"][m] for m in metrics),
                    r["ci"]["ci_lower"],
                    r["ci"]["ci_upper"],
                    r["s_per_image"],
                    r["peak_memory_mb"],
                    *(r[k] for k in extra),
                ]
            )
    title = f"{doc['model']} · {doc['adapter']} on {doc['dataset']} ({doc['mode']}, eval.mode={doc['eval_mode']})"
    return [out / "sizes.json", out / "sizes.csv", sizes_plot(doc["rows"], doc["metric"], title, out / "sizes")]


def summary_table(doc: dict[str, Any]) -> Table:
    metric = doc["metric"]
    table = Table(title=f"{doc['model']} · {doc['adapter']} on {doc['dataset']}: input size ({doc['mode']})")
    for column in ("input size", metric, "95% CI", "s / image", "peak MB"):
        table.add_column(column, justify="right")
    for r in doc["rows"]:
        ci = r["ci"]
        table.add_row(
            str(r["input_size"]),
            f"{r['metrics'][metric]:.4f}",
            "-" if ci["ci_lower"] is None else f"[{ci['ci_lower']:.4f}, {ci['ci_upper']:.4f}]",
            f"{r['s_per_image']:.3f}",
            f"{r['peak_memory_mb']:.0f}",
        )
    return table


def analyze(args: Args) -> tuple[dict[str, Any], DictConfig]:
    options = args.options
    if args.run is not None:
        cfg = load_config(args)
        base, rows = evaluate_sizes(cfg, options, args.run)
        mode = "evaluate"
    else:
        from densebench.config import compose

        cfg = compose(args.overrides)
        base, rows = train_sizes(args.overrides, options)
        mode = "train"
    doc = {
        "kind": "densebench.analysis.sizes",
        "mode": mode,
        "run": str(args.run) if args.run else None,
        "model": cfg.model.name,
        "adapter": cfg.adapter.name,
        "dataset": cfg.dataset.name,
        "eval_mode": cfg.eval.mode,
        "metric": cfg.train.select_metric,
        "base_input_size": base,
        "device": str(resolve_device(cfg.device)),
        "rows": rows,
    }
    return doc, cfg


def main(argv: list[str]) -> int:
    args = split_args(argv, "sizes")
    doc, cfg = analyze(args)
    written = write_outputs(doc, output_dir(args, cfg, "sizes"))
    return announce(written, summary_table(doc) if cfg.progress != "none" else None)
