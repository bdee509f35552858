"""Sliding-window inference: coverage, padding and blending."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from densebench.engine.inference import Predictor, window_starts


class Pointwise(nn.Module):
    """Per-pixel logits from the input colours: the whole-image answer is known exactly."""

    def forward(self, x):
        return torch.stack([x[:, 0] * 3, x[:, 1] * 3, -x[:, 2]], dim=1)


@pytest.mark.parametrize("length,window,overlap", [(100, 32, 0.25), (64, 64, 0.5), (65, 64, 0.2), (20, 32, 0.5)])
def test_windows_cover_every_pixel_and_stay_inside(length, window, overlap):
    starts = window_starts(length, window, overlap)
    covered = torch.zeros(max(length, window), dtype=torch.bool)
    for s in starts:
        covered[s : s + window] = True
    assert bool(covered[:length].all())
    assert all(s + window <= max(length, window) for s in starts)


@pytest.mark.parametrize("blend", ["gaussian", "uniform"])
@pytest.mark.parametrize("size", [(70, 90), (20, 25)])  # larger than and smaller than the window
def test_sliding_window_reproduces_whole_image_prediction_of_a_pointwise_model(blend, size):
    image = torch.randn(1, 3, *size)
    predictor = Predictor(Pointwise(), window=32, mode="slide", overlap=0.5, window_batch=3, blend=blend)
    expected = Pointwise()(image).softmax(1)[0]
    assert torch.allclose(predictor(image), expected, atol=1e-5)


def test_resize_mode_predicts_at_the_input_size():
    predictor = Predictor(Pointwise(), window=32, mode="resize")
    assert predictor(torch.randn(1, 3, 50, 70)).shape == (3, 32, 32)
