"""Torch datasets over a source's samples: seeded per (epoch, index) augmentation, uint8 tensors."""

from __future__ import annotations

import multiprocessing
from typing import Any
from collections.abc import Callable, Sequence
from multiprocessing.context import BaseContext

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from densebench.data.base import Record, Sample
from densebench.errors import ConfigError

# What a loader worker needs to unpickle a dataset, imported once in the fork server, not per worker.
WORKER_PRELOAD = ["densebench.data.dataset", "densebench.data.cache", "densebench.data.transforms"]


def worker_context(method: str) -> BaseContext:
    """How loader workers start (`train.worker_start`).

    forkserver (default where available): workers fork from a small server process started once, so
    they share no pages with the trainer. With `fork`, every page the training step writes while
    workers are alive is first copied (copy-on-write), on every epoch's new workers: +28% step time
    for UNI LoRA on a 2-vCPU machine (docs/performance.md). It also keeps CUDA state out of workers.
    """
    methods = multiprocessing.get_all_start_methods()
    if method not in methods:
        raise ConfigError(f"train.worker_start={method}: this platform offers {', '.join(methods)}")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


class SegmentationDataset(Dataset):
    """Yields {"image": uint8 (3,H,W), "mask": int64 (H,W), "index": int}, plus "instances" (int32 (H,W))
    when the record has an instance map and there is no transform (evaluation datasets: instance
    scoring needs ids aligned with the untouched mask; training never reads them).

    The augmentation RNG is reseeded from (seed, epoch, index) for every item, so the data a step
    sees does not depend on worker count or on whether the run was resumed.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        load: Callable[[Sample], Record],
        transform: A.Compose | None = None,
        seed: int = 0,
    ) -> None:
        self.samples = list(samples)
        self.load = load
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.load(self.samples[index])
        image, mask = record.image, record.mask
        if self.transform is not None:
            item_seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
            self.transform.set_random_seed(item_seed)
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
            "index": index,
        }
        if record.instances is not None and self.transform is None:
            item["instances"] = torch.from_numpy(np.ascontiguousarray(record.instances, dtype=np.int32))
        return item
