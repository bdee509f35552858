"""Predict on plain images (PNG, JPEG, TIFF of any size) through the run's own test path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from densebench.data.io import read_image
from densebench.predict.trained import TrainedRun
from densebench.predict.writers import (
    area_rows,
    write_label_png,
    write_overlay,
    write_probabilities,
)


@dataclass(frozen=True)
class ImageOutputs:
    """Where one image's results go: `<out>/<stem>.png`, `.probs.npz`, `.overlay.jpg`."""

    labels: Path
    probabilities: Path | None
    overlay: Path | None

    @classmethod
    def for_input(cls, path: Path, out: Path, probabilities: bool, overlay: bool) -> ImageOutputs:
        stem = out / path.stem
        return cls(
            stem.with_name(f"{path.stem}.png"),
            stem.with_name(f"{path.stem}.probs.npz") if probabilities else None,
            stem.with_name(f"{path.stem}.overlay.jpg") if overlay else None,
        )

    def paths(self) -> list[Path]:
        return [p for p in (self.labels, self.probabilities, self.overlay) if p is not None]


def predict_image(
    run: TrainedRun, path: Path, outputs: ImageOutputs, overlay_quality: int, mpp: float | None
) -> list[dict]:
    """Writes the image's outputs; returns its rows of the class-area table."""
    image = read_image(path)
    probs = run.probabilities(image)
    labels = probs.argmax(0).to(torch.uint8).cpu().numpy()
    write_label_png(outputs.labels, labels, run.colours)
    if outputs.probabilities is not None:
        write_probabilities(outputs.probabilities, probs.cpu().numpy(), run.classes)
    if outputs.overlay is not None:
        write_overlay(outputs.overlay, image, labels, run.colours, run.ignore_index, overlay_quality)
    counts = np.bincount(labels.reshape(-1), minlength=run.num_classes)[: run.num_classes]
    return area_rows(path.name, counts, run.classes, mpp)
