"""Prediction galleries: image | ground truth | prediction, coloured by class, for a seeded choice of test images.

Written by every run into `<run_dir>/gallery/` (config `eval.gallery`):

    gallery/index.json              classes, colours, and per image: key, files, per-image Mean_Dice
    gallery/<NN>_<key>.jpg          the three panels side by side with titles and the class legend
    gallery/<NN>_<key>.image.jpg    the panels on their own (JPEG: small enough to embed in report.html)
    gallery/<NN>_<key>.truth.jpg
    gallery/<NN>_<key>.pred.jpg

The choice depends only on the test keys and `eval.gallery.seed`, so runs of different models on the
same split show the same images. Panels are resized to `eval.gallery.side` pixels on their longer side.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont

from densebench.data.select import select_indices
from densebench.data.palette import colourize, palette
from densebench.files import write_json
from densebench.metrics import confusion_matrix, summary

JPEG_QUALITY = 90
PANELS = ("image", "truth", "pred")
TITLES = {"image": "image", "truth": "ground truth", "pred": "prediction"}


class _RunLike(Protocol):
    """What of `engine.train.Run` a gallery needs (after `build()`, with the best weights loaded)."""

    cfg: DictConfig
    dir: Path
    eval_sets: dict[str, Any]
    data: Any
    predictor: Any
    normalize: Any
    device: torch.device

    @property
    def model(self) -> torch.nn.Module: ...


def _fit(array: np.ndarray, side: int, nearest: bool) -> np.ndarray:
    """Resized so the longer side is `side` pixels (small images are enlarged to stay legible)."""
    h, w = array.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(array).resize(size, resample))


def compose_panels(
    panels: list[np.ndarray], names: list[str], colours: np.ndarray, title: str, legend_ignored: bool
) -> Image.Image:
    """Panels side by side under their titles, the class legend below."""
    font = ImageFont.load_default(size=13)
    pad, head, swatch = 6, 20, 12
    h, w = panels[0].shape[:2]
    legend_items = [*names, "ignored"] if legend_ignored else list(names)
    legend_colours = [*map(tuple, colours[: len(names)].tolist()), (40, 40, 40)]
    width = len(panels) * (w + pad) + pad
    draw_probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    item_widths = [swatch + 4 + int(draw_probe.textlength(t, font=font)) + 12 for t in legend_items]
    rows, x = 1, pad
    for iw in item_widths:
        if x + iw > width and x > pad:
            rows, x = rows + 1, pad
        x += iw
    canvas = Image.new("RGB", (width, head * 2 + h + pad + rows * (swatch + 6) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 3), title, fill="black", font=font)
    for i, (panel, label) in enumerate(zip(panels, PANELS)):
        left = pad + i * (w + pad)
        draw.text((left, head + 2), TITLES[label], fill="black", font=font)
        canvas.paste(Image.fromarray(panel), (left, head * 2))
    x, y = pad, head * 2 + h + pad
    for text, colour, iw in zip(legend_items, legend_colours, item_widths):
        if x + iw > width and x > pad:
            x, y = pad, y + swatch + 6
        draw.rectangle([x, y, x + swatch, y + swatch], fill=colour, outline="black")
        draw.text((x + swatch + 4, y - 1), text, fill="black", font=font)
        x += iw
    return canvas


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[:80] or "image"


@torch.no_grad()
def save_gallery(run: _RunLike) -> list[dict[str, Any]]:
    """Write the gallery of a run's test split; returns the index entries ([] when eval.gallery.n is 0)."""
    spec = run.cfg.eval.gallery
    n = int(spec.n)
    if n <= 0:
        return []
    dataset = run.eval_sets["test"]
    source = run.data.source
    classes, ignore = list(source.classes), int(source.ignore_index)
    colours = palette(run.cfg.dataset, len(classes))
    out = run.dir / "gallery"
    out.mkdir(parents=True, exist_ok=True)
    side = int(spec.side)
    was_training = run.model.training
    run.model.eval()
    entries = []
    for rank, index in enumerate(select_indices([s.key for s in dataset.samples], n, int(spec.seed))):
        item, key = dataset[index], dataset.samples[index].key
        mask = item["mask"].to(run.device)
        probs = run.predictor(run.normalize(item["image"][None].to(run.device)))
        pred = probs.argmax(0)
        if pred.shape != mask.shape:  # resize mode predicts at s×s: show it at the image's size
            pred = F.interpolate(pred[None, None].float(), size=tuple(mask.shape), mode="nearest")[0, 0].long()
        dice = float(summary(confusion_matrix(pred, mask, len(classes), ignore))["Mean_Dice"])
        image = _fit(item["image"].permute(1, 2, 0).numpy(), side, nearest=False)
        truth = _fit(mask.cpu().numpy().astype(np.uint8), side, nearest=True)
        shown = _fit(pred.cpu().numpy().astype(np.uint8), side, nearest=True)
        panels = {
            "image": image,
            "truth": colourize(image, truth, colours, ignore),
            "pred": colourize(image, shown, colours, ignore),
        }
        stem = f"{rank:02d}_{_slug(key)}"
        files = {}
        for name, panel in panels.items():
            files[name] = f"{stem}.{name}.jpg"
            Image.fromarray(panel).save(out / files[name], quality=JPEG_QUALITY)
        title = f"{key} · Mean_Dice {dice:.3f}"
        compose_panels([panels[p] for p in PANELS], classes, colours, title, bool((mask == ignore).any())).save(
            out / f"{stem}.jpg", quality=JPEG_QUALITY
        )
        entries.append({"key": key, "file": f"{stem}.jpg", "panels": files, "Mean_Dice": dice})
    run.model.train(was_training)
    write_json(
        out / "index.json",
        {
            "classes": classes,
            "colors": colours[: len(classes)].tolist(),
            "ignore_index": ignore,
            "seed": int(spec.seed),
            "images": entries,
        },
    )
    return entries
