"""Training augmentations (albumentations) with every parameter pinned.

Library defaults change between albumentations releases (GaussNoise, CoarseDropout, ...); writing
each value here keeps results from drifting with the installed version. Geometric transforms fill
the label border with the ignore index, so padding never counts as background. Normalisation is not
here: the engine normalises on the device with the backbone's own mean/std.
"""

from __future__ import annotations

import albumentations as A
import cv2

from densebench.data.base import IGNORE_INDEX
from densebench.errors import ConfigError

_GEOM = dict(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX)


def _crop(size: int, scale: tuple[float, float]) -> A.BasicTransform:
    return A.RandomResizedCrop(size=(size, size), scale=scale, ratio=(0.75, 4 / 3), p=1.0)


def paper(size: int) -> list[A.BasicTransform]:
    """The paper's pipeline without weather effects (rain/snow/fog make no sense for histology)."""
    return [
        _crop(size, (0.5, 1.0)),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.1),
        A.RandomRotate90(p=0.3),
        A.Transpose(p=0.3),
        A.OneOf(
            [
                A.ElasticTransform(alpha=1.0, sigma=50.0, **_GEOM),
                A.GridDistortion(num_steps=5, distort_limit=(-0.3, 0.3), **_GEOM),
                A.OpticalDistortion(distort_limit=(-0.2, 0.2), **_GEOM),
            ],
            p=0.3,
        ),
        A.OneOf(
            [
                A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
                A.HueSaturationValue(hue_shift_limit=20, sat_shift_limit=30, val_shift_limit=20),
                A.RGBShift(r_shift_limit=25, g_shift_limit=25, b_shift_limit=25),
            ],
            p=0.5,
        ),
        A.OneOf(
            [
                A.GaussNoise(std_range=(0.02, 0.06), mean_range=(0.0, 0.0), per_channel=True),
                A.MultiplicativeNoise(multiplier=(0.9, 1.1), per_channel=True),
            ],
            p=0.3,
        ),
        A.OneOf(
            [A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 7)), A.MedianBlur(blur_limit=(3, 7))],
            p=0.2,
        ),
        A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.4),
        A.RandomGamma(gamma_limit=(70, 130), p=0.3),
        A.CoarseDropout(
            num_holes_range=(1, 4),
            hole_height_range=(0.05, 0.15),
            hole_width_range=(0.05, 0.15),
            fill=0,
            fill_mask=None,
            p=0.3,
        ),
    ]


def light(size: int) -> list[A.BasicTransform]:
    """Crops, flips/rotations and a mild colour jitter: a fast, low-variance alternative."""
    return [
        _crop(size, (0.5, 1.0)),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02, p=0.5),
    ]


def none(size: int) -> list[A.BasicTransform]:
    """Only the random crop to the input size (batches need a fixed size)."""
    return [_crop(size, (0.5, 1.0))]


PRESETS = {"paper": paper, "light": light, "none": none}


def build_train_transform(preset: str, size: int) -> A.Compose:
    if preset not in PRESETS:
        raise ConfigError(f"train.augment={preset} is not known; use one of {', '.join(PRESETS)}")
    return A.Compose(PRESETS[preset](size))
