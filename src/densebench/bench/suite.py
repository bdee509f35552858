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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from rich.console import Console
from rich.table import Table

from densebench.config import config_dir, load_yaml, to_dict
from densebench.config import compose
from densebench.bench.flops import train_flops_per_image

if TYPE_CHECKING:
    from densebench.engine.train import Run


@contextmanager
def scratch_run(overrides: list[str], model: bool = True) -> Iterator[Run]:
    """A run built as `densebench run` builds it, in a temporary directory (nothing of it is kept)."""
    from densebench.engine.train import Run

    with tempfile.TemporaryDirectory() as tmp:
        run = Run(compose([*overrides, f"output_dir={tmp}", "progress=none"]), overrides)
        run.dir.mkdir(parents=True)
        run.build(model=model)
        yield run


def epoch_bench(overrides: list[str], epochs: int) -> dict:
    """Seconds per iteration and images/s of the last of `epochs` epochs; peak RSS of this process
    (and CUDA's max allocated); the work per image in FLOPs and the rate achieved."""
    with scratch_run(overrides) as run:
        loader_len = len(run.loader(run.train_set, True))
        times, faults = [], []
        for epoch in range(epochs):
            f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            run.train_epoch(epoch)
            times.append(time.perf_counter() - t0)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cuda = run.device.type == "cuda"
        peak_cuda_mb = torch.cuda.max_memory_allocated(run.device) / 2**20 if cuda else None
        counts = run.model.parameter_counts()
        flops = train_flops_per_image(run.model, run.input_size, run.device)  # after timing: it adds a step
    images_per_s = len(run.train_set) / times[-1]
    return {
        "overrides": overrides,
        "epochs": epochs,
        "epoch_s": times,
        "iters_per_epoch": loader_len,
        "s_per_iter": times[-1] / loader_len,
        "images_per_s": images_per_s,
        "peak_rss_mb": peak_rss_mb,
        "peak_cuda_mb": peak_cuda_mb,
        "params": counts,
        "gflop_per_image": flops / 1e9,
        "gflop_per_s": flops / 1e9 * images_per_s,
        "minor_page_faults": faults,  # per epoch: copy-on-write after forking loader workers shows here
    }


def loader_bench(overrides: list[str], epochs: int) -> dict:
    """Images/s the training loader alone delivers (decode, cache, augmentation, collation; no model),
    epoch by epoch: with the default cache the first epoch decodes and fills it, later ones read it."""
    with scratch_run(overrides, model=False) as run:
        cfg = run.cfg
        rates = []
        for epoch in range(epochs):
            t0, n = time.perf_counter(), 0
            for batch in run.loader(run.train_set, True, epoch):
                n += len(batch["image"])
            rates.append(n / (time.perf_counter() - t0))
    return {
        "overrides": overrides,
        "input_size": run.input_size,
        "batch_size": int(cfg.train.batch_size),
        "num_workers": int(cfg.train.num_workers),
        "cache": cfg.cache_dir is not None,
        "images": len(run.train_set),
        "images_per_s": rates,
    }


def gemm_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """fp32 GEMM rate of this machine through PyTorch's default path and through oneDNN: the scale on
    which figures from different machines can be compared."""
    from densebench.fastpath import linear, onednn_available

    a, b = torch.randn(n, n), torch.randn(n, n)
    paths = {"default": lambda: a @ b.t()}
    if onednn_available():
        paths["onednn"] = lambda: linear(a, b)
    rates = {}
    with torch.no_grad():
        for name, fn in paths.items():
            fn()
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            rates[name] = 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9
    return rates


def host_facts() -> dict:
    """What every benchmark result says of the machine that produced it."""
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "host": platform.node(),
    }


def machine() -> dict:
    """Host facts plus the measured GEMM rates the suites put their figures against."""
    return {**host_facts(), "gemm_fp32_gflops": gemm_gflops()}


def _in_subprocess(flags: list[str], overrides: list[str]) -> dict:
    """One `densebench bench` cell in its own process, so its peak memory is its own."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "densebench", "bench", *flags, "--out", out.name, *overrides],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            killed = proc.returncode < 0 and f"killed by signal {-proc.returncode} (out of memory?)"
            return {"error": killed or " ".join(proc.stderr.strip().splitlines()[-1:])}
        return json.loads(Path(out.name).read_text())


def _epochs_in_subprocess(overrides: list[str]) -> dict:
    return _in_subprocess(["--epochs", "2"], overrides)


def memory_table(extra: list[str]) -> dict:
    """Peak memory of one training step per backbone size x strategy x input size (configs/bench/memory.yaml)."""
    suite = to_dict(load_yaml(config_dir() / "bench" / "memory.yaml"), resolve=False)
    cells = [
        (model, name, size, [*m_over, *s_over])
        for model, m_over in suite["models"].items()
        for size in suite["sizes"]
        for name, s_over in suite["strategies"].items()
    ]
    cells += [
        (model, c["name"], c["size"], [*m_over, *c["overrides"]])
        for model, m_over in suite["models"].items()
        for c in suite.get("extra_cells", [])
    ]
    rows = []
    for model, name, size, overrides in cells:
        ours = _in_subprocess(
            ["--iters", "1", "--warmup", "0"], [*suite["common"], *overrides, f"input_size={size}", *extra]
        )
        rows.append({"model": model, "strategy": name, "input_size": size, "result": ours})
    return {"suite": "memory", "extra_overrides": extra, "machine": machine(), "rows": rows}


def print_memory(result: dict) -> None:
    m = result["machine"]
    table = Table(title=f"peak memory of one training step at batch 1 on {m['processor']} ({m['cpu_count']} CPUs)")
    for col in ("backbone", "strategy", "input", "peak MB", "s/step", "trainable params"):
        table.add_column(col, justify="left" if col in ("backbone", "strategy") else "right")
    for row in result["rows"]:
        r = row["result"]
        if "error" in r:
            table.add_row(row["model"], row["strategy"], f"{row['input_size']}²", "failed: " + r["error"], "", "")
            continue
        train = r["train"]
        peak = train["peak_cuda_mb"] if train.get("peak_cuda_mb") is not None else train["peak_rss_mb"]
        table.add_row(
            row["model"],
            row["strategy"],
            f"{row['input_size']}²",
            f"{peak:.0f}",
            f"{train['s_per_iter']:.1f}",
            f"{r['params']['trainable_total']:,}",
        )
    _console().print(table)


def paper_compare(extra: list[str], before: bool = True) -> dict:
    suite = to_dict(load_yaml(config_dir() / "bench" / "paper_compare.yaml"), resolve=False)
    rows = []
    for cell in suite["cells"]:
        overrides = [*suite["common"], *cell["overrides"], *extra]
        row = {
            "name": cell["name"],
            "paper": cell["paper"],
            "target": cell["target"],
            "ours": _epochs_in_subprocess(overrides),
        }
        if before and cell.get("before", True):
            row["before"] = _epochs_in_subprocess([*overrides, *suite["before"]])
        rows.append(row)
    m = machine()
    peak = max(m["gemm_fp32_gflops"].values())
    return {
        "suite": "paper-compare",
        "before_overrides": suite["before"],
        "extra_overrides": extra,
        "machine": m,
        "rows": [assess(row, peak) for row in rows],
    }


def assess(row: dict, peak_gflops: float) -> dict:
    """Add the cell's targets in absolute units, whether ours meets them, and this machine's ceiling:
    the img/s if every counted FLOP ran at the machine's measured GEMM rate and nothing else took
    time. A target above the ceiling cannot be met on this machine at this precision."""
    paper, target, ours = row["paper"], row["target"], row["ours"]
    goal = {"images_per_s": paper["images_per_s"] * target["speed"]}
    if "memory" in target:
        goal["peak_rss_mb"] = paper["peak_rss_mb"] * target["memory"]
    row = {**row, "goal": goal}
    if "error" in ours:
        return row
    row["ceiling_images_per_s"] = peak_gflops / ours["gflop_per_image"]
    row["share_of_peak"] = ours["gflop_per_s"] / peak_gflops
    row["met"] = {"images_per_s": ours["images_per_s"] >= goal["images_per_s"]}
    if "peak_rss_mb" in goal:
        row["met"]["peak_rss_mb"] = ours["peak_rss_mb"] <= goal["peak_rss_mb"]
    return row


def _ratio(a: dict | None, b: dict | None, key: str) -> str:
    if not a or not b or key not in a or key not in b:
        return "-"
    return f"{a[key] / b[key]:.2f}x"


def _verdict(row: dict) -> str:
    if "met" not in row:
        return "-"
    if all(row["met"].values()):
        return "met"
    if row["goal"]["images_per_s"] > row["ceiling_images_per_s"]:
        return "no: target above ceiling"
    return "no: " + ", ".join("speed" if k == "images_per_s" else "memory" for k, ok in row["met"].items() if not ok)


def _console() -> Console:
    """Wide tables stay whole when printed into a file or a pipe (rich assumes 80 columns there)."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240)


def print_compare(result: dict) -> None:
    m = result["machine"]
    gemm = ", ".join(f"{k} {v:.0f}" for k, v in m["gemm_fp32_gflops"].items())
    table = Table(
        title=f"paper-compare on {m['processor']} ({m['cpu_count']} CPUs, {m['torch_threads']} threads; "
        f"fp32 GEMM GFLOP/s: {gemm}); ceiling = img/s with every counted FLOP at the best GEMM rate"
    )
    for col in (
        "cell",
        "GFLOP/img",
        "paper img/s",
        "target img/s",
        "ceiling img/s",
        "before img/s",
        "ours img/s",
        "ours GFLOP/s",
        "vs paper",
        "vs before",
        "RSS MB paper/before/ours",
        "target RSS MB",
        "target met",
    ):
        table.add_column(col, justify="left" if col in ("cell", "target met") else "right")
    fmt = lambda d, k, f: f.format(d[k]) if d and k in d else "-"  # noqa: E731
    for row in result["rows"]:
        p, o, b, goal = row["paper"], row["ours"], row.get("before"), row["goal"]
        if "error" in o:
            table.add_row(
                row["name"],
                "",
                fmt(p, "images_per_s", "{:.2f}"),
                fmt(goal, "images_per_s", "{:.2f}"),
                "",
                "",
                "failed: " + o["error"],
                *[""] * 6,
            )
            continue
        table.add_row(
            row["name"],
            f"{o['gflop_per_image']:.0f}",
            fmt(p, "images_per_s", "{:.2f}"),
            fmt(goal, "images_per_s", "{:.2f}"),
            f"{row['ceiling_images_per_s']:.2f}",
            fmt(b, "images_per_s", "{:.2f}"),
            fmt(o, "images_per_s", "{:.2f}"),
            f"{o['gflop_per_s']:.0f} ({row['share_of_peak']:.0%})",
            _ratio(o, p, "images_per_s"),
            _ratio(o, b, "images_per_s"),
            " / ".join(fmt(d, "peak_rss_mb", "{:.0f}") for d in (p, b, o)),
            fmt(goal, "peak_rss_mb", "{:.0f}"),
            _verdict(row),
        )
    _console().print(table)
