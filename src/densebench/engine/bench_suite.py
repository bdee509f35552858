"""Epoch-level benchmarks through the real engine (data loader, augmentation, cache, model, optimiser).

`densebench bench --epochs 2 <overrides>` times the last of N training epochs of a real `Run`, the
way the paper code's figures were taken. `densebench bench --suite paper-compare` runs every cell of
`configs/bench/paper_compare.yaml` in its own process (so peak RSS is per cell) and prints our
figures beside the paper code's with the ratios.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from densebench.cli import config_dir
from densebench.config import compose


def epoch_bench(overrides: list[str], epochs: int) -> dict:
    """Seconds per iteration and images/s of the last of `epochs` epochs; peak RSS of this process."""
    from densebench.engine.train import Run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose([*overrides, f"output_dir={tmp}", "progress=none"])
        run = Run(cfg, overrides)
        run.dir.mkdir(parents=True)
        run.build()
        loader_len = len(run.loader(run.train_set, True))
        times = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            run.train_epoch(epoch)
            times.append(time.perf_counter() - t0)
        counts = run.model.parameter_counts()
    s_iter = times[-1] / loader_len
    return {
        "overrides": overrides, "epochs": epochs, "epoch_s": times, "iters_per_epoch": loader_len,
        "s_per_iter": s_iter, "images_per_s": len(run.train_set) / times[-1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "params": counts,
    }


def machine() -> dict:
    return {
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def paper_compare(extra: list[str]) -> dict:
    suite = OmegaConf.to_container(OmegaConf.load(config_dir() / "bench" / "paper_compare.yaml"))
    rows = []
    for cell in suite["cells"]:
        overrides = [*suite["common"], *cell["overrides"], *extra]
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "densebench", "bench", "--epochs", "2", "--out", out.name, *overrides],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                rows.append({"name": cell["name"], "error": proc.stderr.strip().splitlines()[-1:]})
                continue
            ours = json.loads(Path(out.name).read_text())
        paper = cell["paper"]
        rows.append({
            "name": cell["name"], "paper": paper, "ours": ours,
            "speedup": ours["images_per_s"] / paper["images_per_s"],
            "memory_ratio": ours["peak_rss_mb"] / paper["peak_rss_mb"],
        })
    return {"suite": "paper-compare", "machine": machine(), "rows": rows}


def print_compare(result: dict) -> None:
    table = Table(title=f"paper-compare on {result['machine']['processor']} "
                        f"({result['machine']['cpu_count']} CPUs, {result['machine']['torch_threads']} threads)")
    for col in ("cell", "paper img/s", "ours img/s", "speed-up", "paper RSS MB", "ours RSS MB", "memory ratio"):
        table.add_column(col, justify="left" if col == "cell" else "right")
    for row in result["rows"]:
        if "error" in row:
            table.add_row(row["name"], "-", "failed: " + " ".join(row["error"]), "", "", "", "")
            continue
        p, o = row["paper"], row["ours"]
        table.add_row(row["name"], f"{p['images_per_s']:.2f}", f"{o['images_per_s']:.2f}", f"{row['speedup']:.2f}x",
                      f"{p['peak_rss_mb']:.0f}", f"{o['peak_rss_mb']:.0f}", f"{row['memory_ratio']:.2f}")
    Console(soft_wrap=True).print(table)
