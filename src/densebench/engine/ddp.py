"""One run on N processes (`torchrun --nproc_per_node=N -m densebench run ...`) that computes what one
process computes on the same data, up to floating-point summation order.

- Data: each process takes its contiguous shard of every global batch of `train.batch_size` images
  from the same seeded permutation (sampler.py); `train.batch_size` stays the global batch.
- BatchNorm: the decoder's (and adapters') BatchNorm2d layers become `GlobalBatchNorm`, which
  normalises with the statistics of the global batch and gets their gradient through them. torch's
  SyncBatchNorm does the same on GPUs only; this one runs on any backend, so the gloo test on CPU
  exercises the code path GPUs run.
- Loss: logits and masks are gathered (differentiably), and each process evaluates the loss on the
  global batch exactly as one process would: a Dice loss over a batch is not the mean of per-shard
  Dice losses. The gather's backward sums the N processes' identical loss gradients, DDP averages
  over N, so each parameter gets the single-process gradient.
- Validation: images are dealt round-robin; per-image confusion matrices are placed into one
  (images, C, C) tensor and summed across processes (integers: exact).
- Test and outputs: only rank 0 writes files; it runs the test alone after training (so anything
  computed at test time has single-process semantics), the others end after the last epoch.
- Stops: ranks agree on a stop signal at every optimiser step (one tiny all-reduce).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from densebench.errors import ConfigError, DenseBenchError

T = TypeVar("T")


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def _export_submitit_env() -> None:
    """Under a multi-task submitit job (tasks_per_node=N), set torchrun's variables from SLURM's."""
    if "RANK" in os.environ or "SUBMITIT_FOLDER" not in os.environ:
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


@contextmanager
def process_group() -> Iterator[None]:
    """Join the process group described by torchrun's environment (WORLD_SIZE > 1); no-op otherwise."""
    _export_submitit_env()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def on_main(fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 only and give its result (or its failure) to every rank."""
    _, world = rank_world()
    if world == 1:
        return fn()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if is_main():
        try:
            payload[0] = ("ok", fn())
        except BaseException as exc:  # re-raised below, after the other ranks learned of it
            error = exc
            payload[0] = ("error", f"{type(exc).__name__}: {exc}")
    dist.broadcast_object_list(payload, src=0)
    if error is not None:
        raise error
    kind, value = payload[0]
    if kind == "error":
        raise DenseBenchError(f"rank 0 failed: {value}")
    return value


def agree(flag: bool) -> bool:
    """True on every rank if it is True on any rank."""
    if rank_world()[1] == 1:
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def check_batches(n_images: int, batch_size: int) -> None:
    """Every process needs at least one image of every global batch (the last one included)."""
    _, world = rank_world()
    last = n_images % batch_size or batch_size
    if world > 1 and min(batch_size, last) < world:
        raise ConfigError(
            f"{world} processes need at least {world} images in every batch, but {n_images} training images "
            f"in batches of train.batch_size={batch_size} leave a last batch of {last}; change train.batch_size "
            "or use fewer processes"
        )


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics (and their gradient) span the global batch of all ranks."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and rank_world()[1] > 1):
            return super().forward(x)
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # statistics in fp32 at least (autocast)
        var, mean = torch.var_mean(xf, dim=(0, 2, 3), unbiased=False)
        count = xf.new_tensor([xf.numel() / xf.shape[1]])
        stats = _Gather.apply(torch.cat([mean, var, count]))  # (world, 2C+1)
        c = mean.numel()
        n, means, variances = stats[:, 2 * c :], stats[:, :c], stats[:, c : 2 * c]
        total = n.sum()
        g_mean = (n * means).sum(0) / total
        g_var = (n * (variances + (means - g_mean) ** 2)).sum(0) / total
        if self.track_running_stats:
            assert (
                self.num_batches_tracked is not None and self.running_mean is not None and self.running_var is not None
            )
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(g_mean.to(self.running_mean.dtype), m)
                unbiased = g_var * (total / (total - 1).clamp(min=1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = (xf - g_mean[None, :, None, None]) * torch.rsqrt(g_var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d for a GlobalBatchNorm sharing its parameters and buffers (same state-dict keys)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.train(child.training)
            for key, value in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]:
                setattr(new, key, value)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def wrap(model: nn.Module) -> nn.Module:
    """The module to train with: DDP over a model with global BatchNorm, or the model itself."""
    if rank_world()[1] == 1:
        return model
    convert_batchnorm(model)
    device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    # static_graph: the set of parameters that get gradients never changes (e.g. blocks after the
    # last feature layer stay unused under full fine-tuning), and DDP learns it in the first step.
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, static_graph=True)


class _Gather(torch.autograd.Function):
    """(world, *x.shape): every rank's x. Backward: each rank's loss is the same global loss, so this
    rank's slice gets the sum of all ranks' gradients for it (an all_reduce)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        rank, world = rank_world()
        ctx.rank = rank
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank]


def gather_rows(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Concatenate every rank's rows (rank order, `sizes[r]` rows each), keeping the autograd graph."""
    if len(sizes) == 1:
        return x
    longest = max(sizes)
    if x.shape[0] < longest:
        x = torch.cat([x, x.new_zeros((longest - x.shape[0], *x.shape[1:]))])
    parts = _Gather.apply(x)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def share_of(n: int) -> list[int] | None:
    """This rank's items of n (round-robin), or None when single-process."""
    rank, world = rank_world()
    return None if world == 1 else list(range(rank, n, world))


def assemble(cms: Tensor | None, share: list[int] | None, n: int, num_classes: int) -> Tensor:
    """Per-image confusion matrices of all ranks in item order: placed by index, summed across ranks."""
    if share is None:
        assert cms is not None
        return cms
    full = torch.zeros(n, num_classes, num_classes, dtype=torch.int64, device=_collective_device())
    if cms is not None:
        full[share] = cms.to(full)
    dist.all_reduce(full)
    return full
