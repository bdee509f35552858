"""The training data order: one seeded permutation per epoch, cut into global batches.

Every process of a DDP run draws the same permutation and takes its contiguous shard of each global
batch of `train.batch_size` images, so N processes see exactly the batches one process would (and
`ddp.gather_rows` puts the shards back together in order). A resumed run starts after the batches
its mid-epoch checkpoint had done; the permutation and the per-(epoch, index) augmentation seeds do
not depend on where it started, so the rest of the epoch is the same as without the interruption.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def shard_sizes(batch: int, world: int) -> list[int]:
    """Sizes of the contiguous per-rank shards of a batch (the first `batch % world` get one more)."""
    return [batch // world + (r < batch % world) for r in range(world)]


class EpochBatches(Sampler[list[int]]):
    def __init__(
        self, n: int, batch_size: int, seed: int, epoch: int, skip: int = 0, rank: int = 0, world: int = 1
    ) -> None:
        self.n, self.batch_size, self.skip, self.rank, self.world = n, batch_size, skip, rank, world
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        self.order = torch.randperm(n, generator=gen).tolist()

    @property
    def num_batches(self) -> int:
        """Global batches in the whole epoch (the last one may be short: nothing is dropped)."""
        return -(-self.n // self.batch_size)

    def sizes(self, step: int) -> list[int]:
        """Per-rank shard sizes of global batch `step`."""
        return shard_sizes(min(self.batch_size, self.n - step * self.batch_size), self.world)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.skip, self.num_batches):
            batch = self.order[step * self.batch_size : (step + 1) * self.batch_size]
            sizes = self.sizes(step)
            start = sum(sizes[: self.rank])
            yield batch[start : start + sizes[self.rank]]

    def __len__(self) -> int:
        return self.num_batches - self.skip
