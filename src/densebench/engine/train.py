"""One run, end to end: build, train with validation, select the best epoch, test, write metrics.json.

An unfinished run directory resumes from `checkpoints/last.pt`; a finished one is skipped unless
`force=true`. A stop signal ends the run at the next optimiser step (or evaluation image) with a
mid-epoch checkpoint that resumes exactly (preempt.py). Under torchrun the same code trains on N
processes (ddp.py): sharded global batches, global BatchNorm and loss, only rank 0 writes.
"""

from __future__ import annotations

import io
import json
import math
import resource
import shutil
import signal
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Subset

import densebench
from densebench.engine.gallery import save_gallery
from densebench.data.dataset import SegmentationDataset, worker_context
from densebench.data.fingerprint import check_or_record, check_same_data, recorded_root
from densebench.data.transforms import build_train_transform
from densebench.engine import checkpoint, ddp
from densebench.engine.features import ViewDataset, feature_cache_block, open_memo
from densebench.engine.inference import evaluate
from densebench.engine.optim import build_loss, build_optimizer, build_scheduler
from densebench.engine.progress import RunProgress
from densebench.engine.sampler import EpochBatches
from densebench.backbones.catalog import build_on_meta
from densebench.engine.setup import DataSplits, build_environment, load_splits
from densebench.config import load_yaml
from densebench.errors import ConfigError
from densebench.files import read_json, remove_partial_writes, write_atomic, write_json
from densebench.metrics import summary, test_block
from densebench.metrics.instance import InstanceScorer
from densebench.model import Segmenter
from densebench.runs import preempt
from densebench.runs.rundir import first_difference, git_commit, is_complete, run_dir, semantic_config


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _floats(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


@dataclass
class Partial:
    """How far the current epoch got: what a mid-epoch checkpoint needs to finish it exactly."""

    epoch: int
    steps: int = 0  # loader batches done, always at an optimiser-step boundary
    loss_sum: float = 0.0
    images: int = 0
    seconds: float = 0.0


class Run:
    """State of one run: config, directory, data, model, optimisation and bookkeeping."""

    def __init__(self, cfg: DictConfig, overrides: list[str]) -> None:
        self.cfg = cfg
        self.overrides = list(overrides)
        self.dir = run_dir(cfg, overrides)
        self.ckpt_dir = self.dir / "checkpoints"
        self.progress = RunProgress(cfg.progress if ddp.is_main() else "none")
        self.partial: Partial | None = None

    # ----- setup -------------------------------------------------------------------------------
    def prepare_dir(self) -> bool:
        """Returns True when the run may proceed (False: finished and not forced)."""
        cfg = self.cfg
        if is_complete(self.dir) and not cfg.force:
            self.check_finished_data()
            return False
        build_on_meta(cfg.model)  # a model that cannot be built (e.g. a user factory's bug) leaves no run directory
        if cfg.force and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(self.dir)  # what a kill -9 left mid-write; this run holds the directory's lock
        saved = self.dir / "config.yaml"
        current = semantic_config(cfg)
        if saved.is_file() and (self.ckpt_dir / "last.pt").is_file():
            previous = semantic_config(load_yaml(saved))
            diff = first_difference(previous, current)
            if diff:
                raise ConfigError(
                    f"{self.dir} holds an unfinished run with a different config (at '{diff}'); "
                    "add force=true to start it over or choose another output_dir"
                )
        write_atomic(saved, OmegaConf.to_yaml(cfg, resolve=True).encode())
        (self.dir / "error.json").unlink(missing_ok=True)
        return True

    def check_finished_data(self) -> None:
        """A finished run is the answer only for the data it ran on (data/fingerprint.py); sources
        without files (the synthetic demo) are pinned by the config alone and read nothing here."""
        root = self.cfg.dataset.get("root")
        if not root:
            return
        recorded = read_json(self.dir / "metrics.json").get("data") or {}
        check_same_data(self.dir, recorded, recorded_root(self.dir), load_splits(self.cfg).facts(), root, finished=True)

    def build(self, model: bool = True) -> None:
        """Data, model, optimiser; `model=False` stops after the datasets (loader benchmarks), with the
        backbone built on the meta device only to fix the input size."""
        cfg = self.cfg
        self.env = env = build_environment(cfg, model=model)
        self.device, self.precision, self.autocast_dtype = env.device, env.precision, env.autocast_dtype
        self.data: DataSplits = env.splits
        self.data_facts = self.data.facts()
        if ddp.is_main():
            check_or_record(self.dir, self.data_facts, cfg.dataset.get("root"), (self.ckpt_dir / "last.pt").is_file())
            write_json(self.dir / "splits.json", {k: [s.key for s in v] for k, v in self.data.splits.items()})
        self.input_size = env.input_size
        load = env.sample_loader()
        self.train_set = SegmentationDataset(
            self.data.splits["train"], load, build_train_transform(cfg.train.augment, self.input_size), int(cfg.seed)
        )
        self.eval_sets = {k: SegmentationDataset(self.data.splits[k], load) for k in ("val", "test")}
        ddp.check_batches(len(self.train_set), int(cfg.train.batch_size))
        if not model:
            return
        self.model: Segmenter = env.segmenter
        self.normalize = env.normalizer()
        self.criterion = build_loss(cfg.train.loss, self.data.source.ignore_index)
        self.steps_per_epoch = math.ceil(len(self.train_set) / (cfg.train.batch_size * cfg.train.accumulate))
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.predictor = env.predictor()
        self.start_epoch, self.best_value, self.best_epoch = 0, -math.inf, -1
        self.epoch_seconds: list[float] = []
        self.log: list[dict[str, Any]] = []  # log.jsonl's records, kept in the checkpoint so both always agree
        source = self.data.source  # instance scoring is checked now, not after training
        self.instance_scorer = (
            InstanceScorer.for_dataset(cfg.eval.instance, source.classes, source.ignore_index)
            if source.has_instances
            else None
        )
        self.memo = open_memo(cfg, self.dir, self.model, self.data, self.input_size, self.precision)
        if self.memo is not None and self.memo.views:  # a protocol change: K fixed views per image
            self.train_set = ViewDataset.of(self.train_set, self.memo.views)
        self.net = ddp.wrap(self.model)  # what training calls: the model, or DDP around it

    def resume(self) -> None:
        last = self.ckpt_dir / "last.pt"
        if not last.is_file():
            return
        state = checkpoint.load(last, self.device)
        self.model.load_trainable_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best_value, self.best_epoch = float(state["best_value"]), int(state["best_epoch"])
        self.epoch_seconds = list(state["epoch_seconds"])
        if "log" in state:
            self.log = list(state["log"])
            if ddp.is_main():  # a kill between the checkpoint and the log line loses neither
                self.write_log()
        elif (self.dir / "log.jsonl").is_file():  # a checkpoint from before the log was kept in it
            self.log = [json.loads(x) for x in (self.dir / "log.jsonl").read_text().splitlines() if x.strip()]
        self.partial = Partial(**state["partial"]) if state.get("partial") else None
        at = f" step {self.partial.steps + 1}" if self.partial else ""
        self.progress.log(f"resuming {self.dir} at epoch {self.start_epoch + 1}{at}")

    # ----- loops -------------------------------------------------------------------------------
    def loader(self, dataset: SegmentationDataset | Subset, train: bool, epoch: int = 0, skip: int = 0) -> DataLoader:
        """Train: this rank's shards of the epoch's global batches after `skip` (sampler.py); eval: one image
        at a time."""
        seed = int(self.cfg.seed)
        # Its own generator: creating the loader must not draw from the global RNG (a resumed run restores that).
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        if train:
            self.batches = EpochBatches(
                len(dataset), int(self.cfg.train.batch_size), seed, epoch, skip, *ddp.rank_world()
            )
            batching: dict[str, Any] = {"batch_sampler": self.batches}
        else:
            batching = {"batch_size": 1}
        workers = int(self.cfg.train.num_workers)
        return DataLoader(
            dataset,
            **batching,
            generator=gen,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            multiprocessing_context=worker_context(self.cfg.train.worker_start) if workers else None,
        )

    def train_epoch(self, epoch: int) -> float:
        """One epoch (or what a mid-epoch checkpoint left of it); returns the mean training loss."""
        cfg, model = self.cfg, self.model
        self.net.train()
        self.train_set.epoch = epoch
        if self.partial is None or self.partial.epoch != epoch:
            self.partial = Partial(epoch)
        part = self.partial
        loader = self.loader(self.train_set, True, epoch, part.steps)
        accumulate, n_batches = int(cfg.train.accumulate), self.batches.num_batches
        self.progress.start_steps(f"epoch {epoch + 1}", len(loader))
        self.optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter() - part.seconds
        for i, batch in enumerate(loader, start=part.steps):
            images = self.normalize(batch["image"].to(self.device, non_blocking=True))
            masks = batch["mask"].to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                sizes = self.batches.sizes(i)  # every rank's loss covers the global batch (ddp.py)
                with self.view_scope(batch):
                    logits = self.net(images)
                logits, masks = ddp.gather_rows(logits.float(), sizes), ddp.gather_rows(masks, sizes)
                loss = self.criterion(logits, masks)
            self.scaler.scale(loss / accumulate).backward()
            stepped = (i + 1) % accumulate == 0 or i + 1 == n_batches
            if stepped:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], float(cfg.train.clip_grad)
                )
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
            part.loss_sum += loss.item() * len(masks)
            part.images += len(masks)
            self.progress.step(f"loss {loss.item():.4f}")
            if stepped:
                part.steps, part.seconds = i + 1, time.perf_counter() - t0
                self.stop_if_requested("in training", every_rank=True)
        part.seconds = time.perf_counter() - t0
        return part.loss_sum / max(part.images, 1)

    def view_scope(self, batch: dict) -> AbstractContextManager:
        """With training views on, tells the feature memo which (image, view) each row of the batch is."""
        if self.memo is None or not self.memo.views:
            return nullcontext()
        samples = self.train_set.samples
        return self.memo.views_of(
            [("train", samples[int(i)].key, int(v)) for i, v in zip(batch["index"], batch["view"])]
        )

    def stop_if_requested(self, where: str, every_rank: bool = False) -> None:
        """At a safe point: after a stop signal, checkpoint the epoch so far (if any) and stop (preempt.py).

        `every_rank`: the ranks agree first (a collective, so only where all ranks pass in step).
        """
        signum = preempt.requested()
        if every_rank and ddp.agree(signum is not None) and signum is None:
            signum = signal.SIGTERM  # another rank was signalled
        if signum is None:
            return
        if self.partial is not None and ddp.is_main():
            self.save_last(self.partial.epoch - 1, self.partial)
        raise preempt.Preempted(signum, f"{where} at epoch {self.partial.epoch + 1}" if self.partial else where)

    def evaluate(self, split: str, on_prediction=None) -> torch.Tensor:
        """(images, C, C) confusion matrices; validation is shared out among DDP ranks, the test runs on rank 0."""
        dataset = self.eval_sets[split]
        share = ddp.share_of(len(dataset)) if split != "test" else None
        items = dataset if share is None else Subset(dataset, share)
        self.progress.start_steps(split, len(items))

        def on_item() -> None:
            self.progress.step()
            self.stop_if_requested(f"in {split}")

        memo = self.memo if self.memo is not None and self.memo.evaluation else None
        scope: Callable[[int], AbstractContextManager] | None = (
            None if memo is None else lambda i: memo.image(split, dataset.samples[i].key)
        )
        cms = (
            evaluate(
                self.model,
                self.loader(items, False),
                self.predictor,
                self.normalize,
                self.data.source.num_classes,
                self.data.source.ignore_index,
                self.device,
                on_item=on_item,
                on_prediction=on_prediction,
                item_scope=scope,
            )
            if len(items)
            else None
        )
        return ddp.assemble(cms, share, len(dataset), self.data.source.num_classes)

    def save_last(self, epoch: int, partial: Partial | None = None) -> None:
        """`epoch`: the last complete epoch; `partial`: how far the next one got (a stop mid-epoch)."""
        checkpoint.save(
            self.ckpt_dir / "last.pt",
            {
                "model": self.model.trainable_state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": checkpoint.rng_state(),
                "epoch": epoch,
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "epoch_seconds": self.epoch_seconds,
                "partial": asdict(partial) if partial else None,
                "log": self.log,
            },
        )

    def write_log(self) -> None:
        """log.jsonl rewritten whole and atomically: never a half line, never an epoch the checkpoint lacks."""
        write_atomic(self.dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.log).encode())

    def fit(self) -> None:
        cfg = self.cfg
        epochs, select = int(cfg.train.epochs), cfg.train.select_metric
        self.progress.start_epochs(epochs, self.start_epoch)
        for epoch in range(self.start_epoch, epochs):
            loss = self.train_epoch(epoch)
            assert self.partial is not None  # train_epoch keeps the epoch's progress there
            seconds = self.partial.seconds
            record = {
                "epoch": epoch + 1,
                "train_loss": loss,
                "lr": self.scheduler.get_last_lr()[-1],
                "train_s": seconds,
            }
            line = f"epoch {epoch + 1}/{epochs} loss {loss:.4f}"
            if (epoch + 1) % int(cfg.train.val_every) == 0 or epoch + 1 == epochs:
                val = _floats(summary(self.evaluate("val").sum(0)))
                record["val"] = val
                value = val[select] if not math.isnan(val[select]) else -math.inf
                line += f" val {select} {val[select]:.4f}"
                if value > self.best_value:
                    self.best_value, self.best_epoch = value, epoch
                    if ddp.is_main():
                        checkpoint.save(
                            self.ckpt_dir / "best.pt",
                            {"model": self.model.trainable_state_dict(), "epoch": epoch, "val": val},
                        )
                    line += " *"
            self.epoch_seconds.append(seconds)
            self.partial = None
            self.log.append(record)
            if ddp.is_main():
                self.save_last(epoch)  # before the log line: a logged epoch is always resumable
                self.write_log()
            self.progress.end_epoch(line)

    def test(self) -> dict[str, Any]:
        cfg = self.cfg
        best = checkpoint.load(self.ckpt_dir / "best.pt", self.device)
        self.model.load_trainable_state_dict(best["model"])
        t0 = time.perf_counter()
        scorer = self.instance_scorer
        if scorer is not None:
            scorer.rows.clear()
        cms = self.evaluate("test", on_prediction=scorer)
        eval_s = time.perf_counter() - t0
        keys = [s.key for s in self.data.splits["test"]]
        buf = io.BytesIO()
        np.savez_compressed(buf, cm=cms.cpu().numpy(), keys=np.array(keys))
        write_atomic(self.dir / "confusion_per_image.npz", buf.getvalue())
        save_gallery(self)  # gallery/: image | truth | prediction for eval.gallery.n seeded test images
        bs = cfg.eval.bootstrap
        out = {
            "eval_mode": cfg.eval.mode,
            **test_block(cms, self.data.source.classes, int(bs.n), float(bs.ci), int(bs.seed)),
            "eval_s": eval_s,
            "best": best,
        }
        if scorer is not None:  # sources without instance maps get no block at all (absent, not zero)
            out["instance"] = scorer.block(int(bs.n), float(bs.ci), int(bs.seed), eval_mode=cfg.eval.mode)
            write_atomic(self.dir / "instance_per_image.csv", scorer.per_image_csv(keys))
        return out


def execute(cfg: DictConfig, overrides: list[str]) -> dict[str, Any] | None:
    """Run (or resume, or skip) one configuration; returns the metrics record, or None if skipped."""
    run = Run(cfg, overrides)
    if not ddp.on_main(run.prepare_dir):  # rank 0 decides and prepares; every rank follows
        run.progress.log(f"already finished: {run.dir / 'metrics.json'} (force=true reruns it)")
        return read_json(run.dir / "metrics.json")
    started, t_start = _now(), time.perf_counter()
    run.build()
    run.resume()
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    with run.progress:
        run.fit()
        if not ddp.is_main():
            return None  # rank 0 tests alone and writes the outputs (ddp.py)
        test = run.test()
    best = test.pop("best")
    eval_s = test.pop("eval_s")
    model_cfg = cfg.model
    train_s = sum(run.epoch_seconds)
    images = len(run.train_set) * len(run.epoch_seconds)
    record = {
        "schema_version": 1,
        "status": "complete",
        "run": {
            "dataset": cfg.dataset.name,
            "model": model_cfg.name,
            "adapter": cfg.adapter.name,
            "seed": int(cfg.seed),
            "run_dir": str(run.dir.resolve()),
            "overrides": run.overrides,
            "started": started,
            "finished": _now(),
        },
        "code": {"version": densebench.__version__, "git_commit": git_commit()},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "data": {**run.data_facts, "split": cfg.dataset.get("split_file") or cfg.dataset.get("split")},
        "model": run.env.model_facts(),
        "test": test,
        "val": {"select_metric": cfg.train.select_metric, "best_epoch": int(best["epoch"]) + 1, "best": best["val"]},
        "timing": {
            "epochs": int(cfg.train.epochs),
            "train_s_per_epoch": train_s / max(len(run.epoch_seconds), 1),
            "train_images_per_s": images / train_s if train_s else None,
            "eval_s": eval_s,
            "total_s": time.perf_counter() - t_start,
        },
        "feature_cache": feature_cache_block(run.memo),
        "memory": {
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mb": torch.cuda.max_memory_allocated(run.device) / 2**20 if run.device.type == "cuda" else None,
        },
        "device": {
            **run.env.device_facts(),
            "runtime": OmegaConf.to_container(cfg.runtime, resolve=True),
        },
    }
    write_json(run.dir / "metrics.json", record)
    return record
