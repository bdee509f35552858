"""One set-up sequence for run, bench and the analyses (engine.setup.build_environment)."""

from __future__ import annotations

import pytest
import torch

from densebench.engine.setup import build_environment
from tests.conftest import FAST


def test_without_data_the_head_has_num_classes_outputs_and_no_splits_are_loaded(compose_cfg):
    env = build_environment(compose_cfg([*FAST, "device=cpu"]), data=False, num_classes=4)
    with torch.no_grad():
        logits = env.segmenter.eval()(torch.zeros(1, 3, 16, 16))
    assert env.data is None and logits.shape == (1, 4, 16, 16)
    with pytest.raises(RuntimeError, match="without data"):
        env.sample_loader()


def test_without_a_model_the_backbone_is_built_on_the_meta_device_only(compose_cfg):
    env = build_environment(compose_cfg([*FAST, "device=cpu"]), model=False)
    assert env.model is None and next(env.backbone.parameters()).device.type == "meta"
    assert env.input_size == 48  # the synthetic images' shorter side (dataset.min_side), on the patch-8 grid
    assert len(env.splits.splits["test"]) == 3


def test_model_facts_come_from_the_config_and_the_built_backbone(compose_cfg):
    env = build_environment(compose_cfg([*FAST, "device=cpu"]))
    facts = env.model_facts()
    assert (facts["name"], facts["variant"], facts["pretrained"]) == ("demo_vit", "tiny", False)
    assert (facts["patch_size"], facts["embed_dim"], facts["input_size"]) == (8, 32, 48)
    assert facts["params"] == env.segmenter.parameter_counts()
