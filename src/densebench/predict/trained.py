"""A finished run rebuilt for prediction: its saved config, backbone weights and best checkpoint.

The model is built exactly as `engine.train.Run.build` builds it (same seed before construction, so a
randomly initialised frozen backbone is the same one; the same weights resolution; the same
Predictor settings), so predicting a test image reproduces the run's own test prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from densebench.data.palette import palette
from densebench.engine import checkpoint
from densebench.engine.inference import Normalizer, Predictor
from densebench.engine.setup import (
    PRECISIONS,
    resolve_device,
    resolve_input_size,
    resolve_precision,
    seed_everything,
)
from densebench.errors import ConfigError, DataError
from densebench.files import read_json
from densebench.model import Segmenter, build_model
from densebench.runs.rundir import is_complete

OVERRIDABLE = ("eval.", "device")  # what a prediction may change of the run's config


@dataclass
class TrainedRun:
    dir: Path
    cfg: DictConfig
    classes: list[str]
    colours: np.ndarray  # (C, 3) uint8
    ignore_index: int
    model: Segmenter
    device: torch.device
    input_size: int
    normalize: Normalizer
    predictor: Predictor

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _normalized(self, image: np.ndarray) -> Tensor:
        """RGB uint8 (H, W, 3) → normalised (1, 3, H, W) on the run's device."""
        return self.normalize(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(self.device))

    @torch.no_grad()
    def probabilities(self, image: np.ndarray) -> Tensor:
        """(C, H, W) class probabilities of an RGB uint8 (H, W, 3) image through the test path."""
        probs = self.predictor(self._normalized(image))
        if self.predictor.mode == "resize":  # the paper's mode predicts s×s; outputs keep the image's size
            probs = F.interpolate(probs[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
        return probs

    @torch.no_grad()
    def window_sums(
        self, image: np.ndarray, boxes: list[tuple[int, int]], size: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """`Predictor.accumulate` over an RGB uint8 image padded to `size` (h, w) after normalisation, as
        the test path pads an image smaller than a window: one slide block's undivided window sums."""
        x = self._normalized(image)
        ph, pw = size[0] - image.shape[0], size[1] - image.shape[1]
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return self.predictor.accumulate(x, boxes)


def apply_overrides(cfg: DictConfig, overrides: list[str], config_file: Path) -> None:
    """KEY=VALUE on eval.* (and device): the settings a prediction may change; values parse as YAML."""
    for arg in overrides:
        if "=" not in arg:
            raise ConfigError(f"densebench predict: '{arg}' is not KEY=VALUE (eval.overlap=0.5, device=cpu, ...)")
        key, value = arg.split("=", 1)
        if not key.startswith(OVERRIDABLE):
            raise ConfigError(
                f"densebench predict: {key} is fixed by the trained run; only eval.* and device can change"
            )
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"densebench predict: {key} is not a key of {config_file}")
        OmegaConf.update(cfg, key, yaml.safe_load(value), merge=False)


def load_run(run_dir: Path, overrides: Sequence[str] = ()) -> TrainedRun:
    """The run's config, classes, palette and best weights; errors name the file that is wrong."""
    run_dir = Path(run_dir)
    config_file, metrics, best = run_dir / "config.yaml", run_dir / "metrics.json", run_dir / "checkpoints" / "best.pt"
    if not config_file.is_file():
        raise DataError(
            f"{config_file}: not found; RUN_DIR must be a run directory (<output_dir>/<dataset>/<model>/<adapter>/seedN)"
        )
    if not is_complete(run_dir):
        raise DataError(
            f"{metrics}: missing or not complete; the run has not finished (finish it with `densebench run`)"
        )
    if not best.is_file():
        raise DataError(f"{best}: not found; the run's best checkpoint is missing")
    cfg = OmegaConf.load(config_file)
    if not isinstance(cfg, DictConfig):
        raise DataError(f"{config_file}: not a run configuration (a YAML mapping)")
    apply_overrides(cfg, list(overrides), config_file)
    data = read_json(metrics)["data"]
    classes, n = list(data["class_names"]), int(data["num_classes"])
    colours = cfg.dataset.get("colors")
    if colours is not None and len(colours) != n:
        raise DataError(
            f"{config_file}: dataset.colors has {len(colours)} colours but the run was trained for {n} "
            "classes; give one colour per class"
        )
    device = resolve_device(str(cfg.device))
    seed_everything(int(cfg.seed))  # as Run.build: a randomly initialised backbone is rebuilt identically
    model = build_model(cfg, n).to(device)
    state = checkpoint.load(best, device)["model"]
    own = model.state_dict()
    for key, tensor in state.items():
        if key in own and own[key].shape != tensor.shape:
            raise DataError(
                f"{best}: tensor {key} has shape {tuple(tensor.shape)}, the model built for the "
                f"{n} classes of {metrics} needs {tuple(own[key].shape)}; the checkpoint belongs to another run"
            )
    try:
        model.load_trainable_state_dict(state)
    except KeyError as exc:
        raise DataError(f"{best}: {exc.args[0]}") from None
    model.eval()
    input_size = resolve_input_size(cfg, model.backbone)
    precision = resolve_precision(str(cfg.train.precision), device)
    ev = cfg.eval
    predictor = Predictor(
        model, input_size, ev.mode, float(ev.overlap), int(ev.window_batch), ev.blend, PRECISIONS[precision]
    )
    return TrainedRun(
        run_dir,
        cfg,
        classes,
        palette(cfg.dataset, n)[:n],
        int(data["ignore_index"]),
        model,
        device,
        input_size,
        Normalizer.for_backbone(model.backbone, device),
        predictor,
    )
