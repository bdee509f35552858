"""Percentile bootstrap over test images, vectorised: no Python loop over resamples or classes.

Each resample draws n images with replacement; its confusion matrix is the sum of theirs. With
W[b, i] = how often image i was drawn in resample b, all resampled matrices are W @ per-image
matrices: one matmul, then the batched metric code.
"""

from __future__ import annotations

import torch
from torch import Tensor

from densebench.metrics.segmentation import summary


def resample_weights(n_images: int, n_resamples: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    idx = torch.randint(0, n_images, (n_resamples, n_images), generator=gen)
    offsets = torch.arange(n_resamples).unsqueeze(1) * n_images
    counts = torch.bincount((idx + offsets).reshape(-1), minlength=n_resamples * n_images)
    return counts.reshape(n_resamples, n_images).to(device)


def bootstrap(
    per_image_cm: Tensor, n_resamples: int = 1000, seed: int = 0, ci: float = 0.95, chunk: int = 250
) -> dict[str, dict[str, float]]:
    """{metric: {mean, std, ci_lower, ci_upper}} from (N, C, C) per-image confusion matrices."""
    n, c, _ = per_image_cm.shape
    flat = per_image_cm.reshape(n, c * c).double()
    weights = resample_weights(n, n_resamples, seed, flat.device).double()
    values: dict[str, list[Tensor]] = {}
    for start in range(0, n_resamples, chunk):  # bounds memory at chunk x C x C
        cms = (weights[start : start + chunk] @ flat).reshape(-1, c, c)
        for key, v in summary(cms).items():
            values.setdefault(key, []).append(v)
    return {key: interval(torch.cat(parts), ci) for key, parts in values.items()}


def interval(values: Tensor, ci: float) -> dict[str, float]:
    """{mean, std, ci_lower, ci_upper} of resampled values (percentile interval); NaN resamples left out."""
    v = values[~torch.isnan(values)]
    if v.numel() == 0:
        return {"mean": float("nan"), "std": float("nan"), "ci_lower": float("nan"), "ci_upper": float("nan")}
    alpha = (1 - ci) / 2
    q = torch.quantile(v, torch.tensor([alpha, 1 - alpha], dtype=v.dtype, device=v.device))
    return {
        "mean": v.mean().item(),
        "std": v.std(unbiased=True).item() if v.numel() > 1 else 0.0,
        "ci_lower": q[0].item(),
        "ci_upper": q[1].item(),
    }
