"""Backbone contract, decoder geometry and the frozen/full adapters."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from densebench.adapters import build_adapter
from densebench.backbones import build_backbone
from densebench.decoders import ProgressiveDecoder
from densebench.model import Segmenter
from tests.conftest import REPO


def vit_cfg(patch: int, prefix_regs: int = 0, dim: int = 32):
    return OmegaConf.create(
        {
            "name": f"test_vit_p{patch}",
            "family": "timm_vit",
            "variant": "full",
            "pretrained": False,
            "weights": None,
            "layers": None,
            "arch": {
                "img_size": 64,
                "patch_size": patch,
                "embed_dim": dim,
                "depth": 2,
                "num_heads": 2,
                "reg_tokens": prefix_regs,
            },
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        }
    )


@pytest.mark.parametrize("patch", [8, 14, 16])
def test_backbone_returns_ceil_grid_for_sizes_that_are_not_patch_multiples(patch):
    backbone = build_backbone(vit_cfg(patch))
    maps = backbone(torch.randn(2, 3, 45, 70))
    assert maps[0].shape == (2, 32, -(-45 // patch), -(-70 // patch))


def test_prefix_token_count_is_read_from_the_model():
    assert build_backbone(vit_cfg(16, prefix_regs=4)).num_prefix_tokens == 5


def test_selected_layers_return_one_map_each():
    cfg = vit_cfg(16)
    cfg.layers = [0, 1]
    maps = build_backbone(cfg)(torch.randn(1, 3, 32, 48))
    assert [m.shape for m in maps] == [(1, 32, 2, 3)] * 2


@pytest.mark.parametrize("patch", [8, 14, 16])
def test_segmenter_logits_match_the_input_size_for_every_patch_size(patch):
    backbone = build_backbone(vit_cfg(patch))
    adapter = build_adapter(backbone, OmegaConf.create({"name": "frozen"}))
    model = Segmenter(adapter, ProgressiveDecoder(32, 3))
    assert model(torch.randn(1, 3, 50, 77)).shape == (1, 3, 50, 77)


def test_decoder_size_matches_the_paper_for_a_1024_wide_backbone():
    decoder = ProgressiveDecoder(1024, 2)
    body = sum(p.numel() for n, p in decoder.named_parameters() if not n.startswith("head."))
    assert body == pytest.approx(7.06e6, rel=0.005)  # models-and-protocol.md §2: 7.06 M for emb 1024


def test_frozen_backbone_builds_no_autograd_graph_and_stays_in_eval_mode():
    backbone = build_backbone(vit_cfg(16))
    adapter = build_adapter(backbone, OmegaConf.create({"name": "frozen"}))
    adapter.train()
    feats = adapter(torch.randn(1, 3, 32, 32))
    assert not backbone.training
    assert feats.map.grad_fn is None and not feats.map.requires_grad
    assert not any(p.requires_grad for p in backbone.parameters())


def test_full_adapter_trains_every_backbone_weight():
    backbone = build_backbone(vit_cfg(16))
    full = OmegaConf.merge(OmegaConf.load(REPO / "configs" / "adapter" / "full.yaml"), {"backbone_lr_mult": 0.1})
    build_adapter(backbone, full)
    assert all(p.requires_grad for p in backbone.parameters())


def test_frozen_checkpoint_holds_decoder_tensors_only():
    backbone = build_backbone(vit_cfg(16))
    model = Segmenter(build_adapter(backbone, OmegaConf.create({"name": "frozen"})), ProgressiveDecoder(32, 2))
    keys = model.trainable_state_dict().keys()
    assert keys and all(k.startswith("decoder.") for k in keys)
    assert any(k.endswith("running_mean") for k in keys)  # BatchNorm statistics travel with the weights


def test_parameter_counts_split_backbone_adapter_and_decoder():
    backbone = build_backbone(vit_cfg(16))
    model = Segmenter(build_adapter(backbone, OmegaConf.create({"name": "frozen"})), ProgressiveDecoder(32, 2))
    counts = model.parameter_counts()
    assert counts["backbone_total"] == backbone.num_params()
    assert counts["backbone_trainable"] == 0 and counts["adapter"] == 0
    assert counts["trainable_total"] == counts["decoder"]
