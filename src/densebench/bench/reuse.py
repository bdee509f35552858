"""`densebench bench --suite feature-reuse`: what frozen-feature reuse saves, epoch part by epoch part.

`run_epochs` times each epoch's training and validation of a real `Run` (the engine's loader, model,
optimiser, predictor and feature memo); the suite runs configs/bench/feature_reuse.yaml's variants
per backbone, each in its own process, and extrapolates whole runs from the measured parts.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from omegaconf import OmegaConf

from densebench.bench.flops import train_flops_per_image
from densebench.bench.suite import _in_subprocess, machine
from densebench.config import compose, config_dir


def run_epochs(overrides: list[str], epochs: int) -> dict:
    """Seconds of each epoch's training and validation, the memo's counts, and the train GFLOP/s."""
    from densebench.engine.features import feature_cache_block
    from densebench.engine.train import Run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose([*overrides, f"output_dir={tmp}", "progress=none"])
        run = Run(cfg, overrides)
        run.dir.mkdir(parents=True)
        t0 = time.perf_counter()
        run.build()
        build_s = time.perf_counter() - t0
        train_s, val_s = [], []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            run.train_epoch(epoch)
            t1 = time.perf_counter()
            run.evaluate("val")
            val_s.append(time.perf_counter() - t1)
            train_s.append(t1 - t0)
        flops = train_flops_per_image(run.model, run.input_size, run.device)
    n_train = len(run.train_set)
    return {
        "overrides": overrides,
        "build_s": build_s,
        "train_s": train_s,
        "val_s": val_s,
        "images": {"train": n_train, "val": len(run.eval_sets["val"])},
        "feature_cache": feature_cache_block(run.memo),
        "gflop_per_image": flops / 1e9,
        "gflop_per_s": flops / 1e9 * n_train / train_s[0],
    }


def extrapolate(rows: dict[str, dict], epochs: int, views: int) -> dict[str, float]:
    """Whole-run seconds (training + validation every epoch) from the measured epoch parts:
    uncached = every epoch like the uncached epochs; val reuse = first validation at its measured
    cost, the rest at the cached one; + views:K = K training epochs uncached, the rest cached."""
    plain, val, views_row = rows["uncached"], rows["val reuse"], rows["val reuse + views"]
    train_plain = sum(plain["train_s"]) / len(plain["train_s"])
    val_plain = sum(plain["val_s"]) / len(plain["val_s"])
    out = {"uncached": epochs * (train_plain + val_plain)}
    val_first, val_cached = val["val_s"][0], val["val_s"][-1]
    out["val reuse"] = epochs * train_plain + val_first + (epochs - 1) * val_cached
    train_first, train_cached = views_row["train_s"][0], views_row["train_s"][-1]
    k = min(views, epochs)
    out["val reuse + views"] = k * train_first + (epochs - k) * train_cached + val_first + (epochs - 1) * val_cached
    return out


def feature_reuse(extra: list[str]) -> dict:
    suite: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(config_dir() / "bench" / "feature_reuse.yaml"))  # type: ignore[assignment]
    epochs = int(suite["epochs"])
    result: dict[str, Any] = {
        "suite": "feature-reuse",
        "extra_overrides": extra,
        "epochs": epochs,
        "views": suite["views"],
        "extrapolate_epochs": suite["extrapolate_epochs"],
        "machine": machine(),
        "models": {},
    }
    for model, m_over in suite["models"].items():
        rows = {
            name: _in_subprocess(["--run-epochs", str(epochs)], [*suite["common"], *m_over, *v_over, *extra])
            for name, v_over in suite["variants"].items()
        }
        entry: dict[str, Any] = {"rows": rows}
        if not any("error" in r for r in rows.values()):
            whole = extrapolate(rows, int(suite["extrapolate_epochs"]), int(suite["views"]))
            entry["extrapolated_s"] = whole
            entry["speedup"] = {k: whole["uncached"] / v for k, v in whole.items()}
            measured = {k: sum(r["train_s"]) + sum(r["val_s"]) for k, r in rows.items()}
            entry["measured_s"] = measured
            entry["measured_speedup"] = {k: measured["uncached"] / v for k, v in measured.items()}
        result["models"][model] = entry
    return result


def print_reuse(result: dict) -> None:
    from rich.table import Table

    from densebench.bench.suite import _console

    m = result["machine"]
    n = result["extrapolate_epochs"]
    table = Table(
        title=f"frozen-feature reuse on {m['processor']} ({m['cpu_count']} CPUs, {m['torch_threads']} "
        f"threads): seconds per epoch part (epoch 1 / epoch {result['epochs']}), "
        f"{n}-epoch run extrapolated with views:{result['views']}"
    )
    for col in (
        "backbone",
        "variant",
        "train s",
        "val s",
        f"{result['epochs']} epochs s",
        "speedup",
        f"{n} epochs h",
        f"{n}-epoch speedup",
    ):
        table.add_column(col, justify="left" if col in ("backbone", "variant") else "right")
    for model, entry in result["models"].items():
        for name, row in entry["rows"].items():
            if "error" in row:
                table.add_row(model, name, "failed: " + row["error"], *[""] * 5)
                continue
            table.add_row(
                model,
                name,
                " / ".join(f"{t:.1f}" for t in row["train_s"]),
                " / ".join(f"{t:.1f}" for t in row["val_s"]),
                f"{entry['measured_s'][name]:.1f}",
                f"{entry['measured_speedup'][name]:.2f}x",
                f"{entry['extrapolated_s'][name] / 3600:.2f}",
                f"{entry['speedup'][name]:.2f}x",
            )
    _console().print(table)
