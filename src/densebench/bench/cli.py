"""`densebench bench`: train-step and evaluation throughput and peak memory for one configuration.

    densebench bench model=uni model.pretrained=false adapter=lora input_size=224 train.batch_size=8 \
        --iters 5 --warmup 2 --eval-size 1000 --out bench.json

Random inputs, the engine's own model/loss/optimiser/predictor; warm-up iterations excluded; the
median over timed iterations; peak memory sampled during the timed region only (CPU RSS, or CUDA
max allocated). Results say which machine produced them. Other modes: `--epochs N` (real epochs
through the engine), `--loader` (the data loader alone), `--run-epochs N` (training and validation
of each epoch), `--suite paper-compare|memory|feature-reuse`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import psutil
import torch

from densebench.config import compose
from densebench.bench.suite import (
    epoch_bench,
    host_facts,
    loader_bench,
    memory_table,
    paper_compare,
    print_compare,
    print_memory,
)
from densebench.bench.flops import count_flops
from densebench.bench.reuse import feature_reuse, print_reuse, run_epochs
from densebench.engine.optim import build_loss, build_optimizer, build_scheduler
from densebench.engine.setup import build_environment
from densebench.files import write_json


class PeakMemory:
    """Peak resident memory (MB) of this process during a `with` block, sampled every 5 ms."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            time.sleep(0.005)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.device.type == "cuda":
            self.cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, iters: int, warmup: int, device: torch.device) -> tuple[list[float], PeakMemory]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    with PeakMemory(device) as mem:
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
    return times, mem


def bench(overrides: list[str], iters: int, warmup: int, eval_size: int | None, num_classes: int) -> dict:
    cfg = compose(overrides)
    env = build_environment(cfg, data=False, num_classes=num_classes)
    model, device, dtype, size = env.segmenter, env.device, env.autocast_dtype, env.input_size
    batch, clip = int(cfg.train.batch_size), float(cfg.train.clip_grad)
    normalize = env.normalizer()
    criterion = build_loss(cfg.train.loss, int(cfg.dataset.ignore_index))
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=max(1, iters + warmup))
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    masks = torch.randint(0, num_classes, (batch, size, size), device=device)

    def train_step() -> None:
        model.train()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = criterion(model(normalize(images)).float(), masks)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

    times, mem = timed(train_step, iters, warmup, device)
    s_iter = statistics.median(times)
    result = {
        "config": {
            "model": cfg.model.name,
            "variant": cfg.model.variant,
            "adapter": cfg.adapter.name,
            "input_size": size,
            "batch_size": batch,
            "precision": env.precision,
            "overrides": overrides,
        },
        "train": {
            "s_per_iter": s_iter,
            "images_per_s": batch / s_iter,
            "times": times,
            "peak_rss_mb": mem.peak_mb,
            "peak_cuda_mb": getattr(mem, "cuda_mb", None),
        },
        "params": model.parameter_counts(),
    }
    if eval_size:
        model.eval()
        predictor = env.predictor()
        image = normalize(torch.randint(0, 256, (1, 3, eval_size, eval_size), dtype=torch.uint8, device=device))
        times, mem = timed(lambda: predictor(image), max(1, iters // 2), 1, device)
        s_img = statistics.median(times)
        gflop = count_flops(lambda: predictor(image)) / 1e9  # one more pass, after timing
        result["eval"] = {
            "image_size": eval_size,
            "mode": cfg.eval.mode,
            "overlap": float(cfg.eval.overlap),
            "window_batch": int(cfg.eval.window_batch),
            "s_per_image": s_img,
            "images_per_s": 1 / s_img,
            "gflop_per_image": gflop,
            "gflop_per_s": gflop / s_img,
            "times": times,
            "peak_rss_mb": mem.peak_mb,
            "peak_cuda_mb": getattr(mem, "cuda_mb", None),
        }
    facts = host_facts()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else facts["processor"]
    result["machine"] = {"device": name, **facts}
    return result


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="densebench bench", description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=5, help="timed iterations (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--eval-size", type=int, default=None, help="also time whole-image inference at this side length")
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="time whole training epochs of a real run (data loading included); the last one counts",
    )
    p.add_argument(
        "--loader",
        action="store_true",
        help="time the training data loader alone (no model) for --epochs epochs (default 2)",
    )
    p.add_argument(
        "--suite",
        choices=["paper-compare", "memory", "feature-reuse"],
        default=None,
        help="paper-compare: every cell of configs/bench/paper_compare.yaml beside the paper code's "
        "figures; memory: configs/bench/memory.yaml (peak memory by backbone, strategy, size); "
        "feature-reuse: configs/bench/feature_reuse.yaml (frozen runs with/without feature reuse)",
    )
    p.add_argument(
        "--run-epochs",
        type=int,
        default=None,
        help="time each epoch's training and validation of a real run (feature-reuse cells)",
    )
    p.add_argument(
        "--no-before",
        action="store_true",
        help="paper-compare: skip the same-machine runs with the optimisations switched off",
    )
    p.add_argument("--out", type=Path, default=None, help="write JSON here (printed otherwise)")
    args, overrides = p.parse_known_args(argv)
    if args.suite == "paper-compare":
        result = paper_compare(overrides, before=not args.no_before)
        print_compare(result)
    elif args.suite == "memory":
        result = memory_table(overrides)
        print_memory(result)
    elif args.suite == "feature-reuse":
        result = feature_reuse(overrides)
        print_reuse(result)
    elif args.run_epochs:
        result = run_epochs(overrides, args.run_epochs)
    elif args.loader:
        result = loader_bench(overrides, args.epochs or 2)
    elif args.epochs:
        result = epoch_bench(overrides, args.epochs)
    else:
        result = bench(overrides, args.iters, args.warmup, args.eval_size, args.num_classes)
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    else:
        print(json.dumps(result, indent=2))
    return 0
