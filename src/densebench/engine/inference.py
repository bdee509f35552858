"""Whole-image prediction (sliding window or the paper's resize mode) and per-image confusion matrices.

Sliding window runs at native resolution: windows of the input size, sub-batched so memory is
bounded, blended with Gaussian (or uniform) weights on the device; images smaller than a window are
padded and cropped back. Resize mode reproduces the paper: image and label squashed to s×s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densebench.metrics import confusion_matrix


@dataclass
class Normalizer:
    """uint8 (B,3,H,W) on any device → float normalised with the backbone's mean/std."""

    mean: Tensor
    std: Tensor

    @classmethod
    def for_backbone(cls, backbone: nn.Module, device: torch.device) -> "Normalizer":
        mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1) * 255
        std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1) * 255
        return cls(mean, std)

    def __call__(self, images: Tensor) -> Tensor:
        return (images.float() - self.mean) / self.std


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Window offsets covering [0, length): stride window·(1-overlap), last window flush with the end."""
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def blend_weights(window: int, mode: str, device: torch.device) -> Tensor:
    if mode == "uniform":
        return torch.ones(window, window, device=device)
    if mode != "gaussian":
        raise ValueError(f"eval.blend={mode} is not known; use gaussian or uniform")
    coords = torch.arange(window, device=device, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-0.5 * (coords / (window / 8)) ** 2)
    w = torch.outer(g, g)
    w = w / w.max()
    return w.clamp(min=1e-3)  # borders still count where only one window covers a pixel


class Predictor:
    """Turns a normalised image (1,3,H,W) into class probabilities (C,H,W)."""

    def __init__(
        self,
        model: nn.Module,
        window: int,
        mode: str = "slide",
        overlap: float = 0.25,
        window_batch: int = 8,
        blend: str = "gaussian",
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.window = window
        self.mode = mode
        self.overlap = overlap
        self.window_batch = window_batch
        self.blend = blend
        self.autocast_dtype = autocast_dtype

    def _forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            return self.model(x).float().softmax(1)

    @torch.no_grad()
    def slide(self, image: Tensor) -> Tensor:
        _, _, h, w = image.shape
        win = self.window
        ph, pw = max(0, win - h), max(0, win - w)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph))
        H, W = image.shape[-2:]
        boxes = [(y, x) for y in window_starts(H, win, self.overlap) for x in window_starts(W, win, self.overlap)]
        probs, norm = self.accumulate(image, boxes)
        return (probs / norm)[:, :h, :w]

    @torch.no_grad()
    def accumulate(self, image: Tensor, boxes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """Blend-weighted class probabilities (C,H,W) and weights (H,W) of the windows whose top-left
        corners are `boxes`, summed over (1,3,H,W) `image`: the sliding window before its division,
        so a slide's blocks can add up the windows that reach across their borders."""
        win = self.window
        H, W = image.shape[-2:]
        weights = blend_weights(win, self.blend, image.device)
        probs = None
        norm = torch.zeros(H, W, device=image.device)
        step = self.window_batch if self.window_batch > 0 else len(boxes)  # <= 0: all at once (paper code)
        for i in range(0, len(boxes), step):
            chunk = boxes[i : i + step]
            crops = torch.cat([image[..., y : y + win, x : x + win] for y, x in chunk])
            out = self._forward(crops)
            if probs is None:
                probs = torch.zeros(out.shape[1], H, W, device=image.device)
            for (y, x), p in zip(chunk, out):
                probs[:, y : y + win, x : x + win] += p * weights
                norm[y : y + win, x : x + win] += weights
        assert probs is not None  # at least one window
        return probs, norm

    @torch.no_grad()
    def resize(self, image: Tensor) -> Tensor:
        s = self.window
        small = F.interpolate(image, size=(s, s), mode="bilinear", align_corners=False)
        return self._forward(small)[0]

    def __call__(self, image: Tensor) -> Tensor:
        if self.mode == "slide":
            return self.slide(image)
        if self.mode == "resize":
            return self.resize(image)
        raise ValueError(f"eval.mode={self.mode} is not known; use slide or resize")


def _resized(label: Tensor, size: int) -> Tensor:
    """A label map squashed to size×size by nearest neighbour (the paper's resize mode)."""
    return F.interpolate(label[None, None].double(), size=(size, size), mode="nearest")[0, 0].long()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    items: Iterable[dict],
    predictor: Predictor,
    normalize: Normalizer,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    on_item=None,
    on_prediction: Callable[[Tensor, Tensor, Tensor | None], None] | None = None,
    item_scope: Callable[[int], AbstractContextManager] | None = None,
) -> Tensor:
    """(N, C, C) confusion matrices, one per image, computed on `device`.

    `item_scope(index)` wraps each image's prediction (the feature memo numbers its windows there).

    `on_prediction(pred, target, instances)` sees each image's predicted class map, its target and
    the item's instance map (None when absent), all at the scored resolution: instance scoring
    rides on the same forward pass.
    """
    was_training = model.training
    model.eval()
    cms = []
    for item in items:
        image = normalize(item["image"].to(device, non_blocking=True))
        target = item["mask"].to(device)[0]
        instances = item["instances"][0] if on_prediction is not None and "instances" in item else None
        with nullcontext() if item_scope is None else item_scope(int(item["index"])):
            probs = predictor(image)
        if predictor.mode == "resize":
            target = _resized(target, predictor.window)
            instances = None if instances is None else _resized(instances, predictor.window)
        pred = probs.argmax(0)
        cms.append(confusion_matrix(pred, target, num_classes, ignore_index))
        if on_prediction is not None:
            on_prediction(pred, target, instances)
        if on_item is not None:
            on_item()
    model.train(was_training)
    return torch.stack(cms)
