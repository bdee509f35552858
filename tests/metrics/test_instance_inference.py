"""The evaluation loop hands each prediction, target and instance map to the instance hook."""

from __future__ import annotations

import pytest
import torch

from densebench.engine.inference import Normalizer, Predictor, evaluate
from tests.core.test_inference import Pointwise


def items(n=2, h=24, w=40):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        inst = torch.zeros(1, h, w, dtype=torch.int32)
        inst[0, 2:10, 3:15], inst[0, 12:20, 20:36] = 1, 2
        yield {
            "image": torch.randint(0, 255, (1, 3, h, w), generator=g, dtype=torch.uint8),
            "mask": (inst > 0).long(),
            "instances": inst,
            "index": torch.tensor([i]),
        }


@pytest.mark.parametrize("mode,shape", [("slide", (24, 40)), ("resize", (32, 32))])
def test_the_hook_sees_every_image_at_the_scored_resolution(mode, shape):
    seen = []
    norm = Normalizer(torch.zeros(1, 3, 1, 1), torch.full((1, 3, 1, 1), 255.0))
    cms = evaluate(
        Pointwise(),
        items(),
        Predictor(Pointwise(), 32, mode),
        norm,
        3,
        255,
        torch.device("cpu"),
        on_prediction=lambda p, t, i: seen.append((p, t, i)),
    )
    assert len(seen) == 2 and cms.shape == (2, 3, 3)
    for pred, target, inst in seen:
        assert pred.shape == target.shape == inst.shape == shape
        assert set(inst.unique().tolist()) == {0, 1, 2}  # ids survive nearest-neighbour resizing
        assert torch.equal(inst > 0, target > 0)


def test_without_a_hook_instances_are_ignored():
    norm = Normalizer(torch.zeros(1, 3, 1, 1), torch.full((1, 3, 1, 1), 255.0))
    cms = evaluate(Pointwise(), items(), Predictor(Pointwise(), 32, "slide"), norm, 3, 255, torch.device("cpu"))
    assert int(cms.sum()) == 2 * 24 * 40


def test_evaluation_datasets_yield_instance_maps_and_training_datasets_do_not():
    import albumentations as A
    import numpy as np

    from densebench.data.base import Record, Sample
    from densebench.data.dataset import SegmentationDataset

    inst = np.zeros((8, 8), np.int32)
    inst[1:4, 1:4] = 7
    record = Record(np.zeros((8, 8, 3), np.uint8), (inst > 0).astype(np.uint8), inst)
    samples = [Sample("s0")]
    item = SegmentationDataset(samples, lambda s: record)[0]
    assert item["instances"].dtype == torch.int32 and int(item["instances"].max()) == 7
    train_item = SegmentationDataset(samples, lambda s: record, A.Compose([A.HorizontalFlip(p=1.0)]))[0]
    assert "instances" not in train_item
    plain = SegmentationDataset(samples, lambda s: Record(record.image, record.mask))[0]
    assert "instances" not in plain
