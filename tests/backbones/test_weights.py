"""Original checkpoints load through `build_backbone(model.weights=...)` strictly and reproduce their model."""

from __future__ import annotations

import re

import pytest
import torch

from densebench.backbones import build_backbone
from densebench.backbones.weights import locate_local, read_state_dict, resolve_weights
from densebench.errors import WeightsError

from tests.backbones.support import (
    FORMATS,
    PFMS,
    original_checkpoint,
    put_in_cache,
    save_checkpoint,
    tiny_config,
)


def _input(cfg, backbone) -> torch.Tensor:
    p = backbone.patch_size
    torch.manual_seed(1)
    if cfg.family == "beit3":  # the written-out reference uses the trained position grid as it is
        side = {**cfg.arch, **cfg.tiny}["img_size"]
        return torch.randn(2, 3, side, side)
    return torch.randn(2, 3, 2 * p, 3 * p)


@pytest.mark.parametrize("name", PFMS)
def test_original_checkpoint_loads_strictly_and_reproduces_the_source_model(name, tmp_path):
    cfg = tiny_config(name)
    state, reference = original_checkpoint(name, cfg)
    path = save_checkpoint(state, tmp_path, FORMATS[PFMS.index(name) % len(FORMATS)])
    loaded = build_backbone(tiny_config(name, "pretrained=true", f"weights={path}")).eval()
    x = _input(cfg, loaded)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_tokens(x)[-1], reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", PFMS)
def test_checkpoint_with_a_missing_key_fails_naming_it(name, tmp_path):
    cfg = tiny_config(name)
    state, _ = original_checkpoint(name, cfg)
    prefix = cfg.get("checkpoint_prefix") or ""
    victim = next(k for k in state if k.startswith(prefix) and re.search(r"\.1\..*weight$", k) and ".B." not in k)
    del state[victim]
    path = save_checkpoint(state, tmp_path, "safetensors")
    with pytest.raises(WeightsError, match=r"1 missing \(e\.g\. ") as err:
        build_backbone(tiny_config(name, "pretrained=true", f"weights={path}"))
    assert name in str(err.value) and str(path) in str(err.value)


def test_checkpoint_with_an_extra_key_fails_as_unexpected(tmp_path):
    state, _ = original_checkpoint("uni", tiny_config("uni"))
    state["head.weight"] = torch.zeros(3, 32)
    path = save_checkpoint(state, tmp_path, "bin")
    with pytest.raises(WeightsError, match=r"1 unexpected \(e\.g\. head\.weight\)"):
        build_backbone(tiny_config("uni", "pretrained=true", f"weights={path}"))


class Payload:
    """Stands for any object a malicious pickle could construct."""


def test_pickle_holding_an_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(WeightsError, match="refusing to load"):
        read_state_dict(path)


def test_checkpoint_trained_at_another_resolution_says_which_size_to_set(tmp_path):
    source = build_backbone(tiny_config("uni", "tiny.img_size=448"))
    path = save_checkpoint(source.weights_module.state_dict(), tmp_path, "safetensors")
    with pytest.raises(WeightsError, match=r"28x28 patch grid .* model.arch.img_size=448"):
        build_backbone(tiny_config("uni", "pretrained=true", f"weights={path}"))


def test_musk_positions_of_another_resolution_say_which_size_to_set(tmp_path):
    state, _ = original_checkpoint("musk", tiny_config("musk", "tiny.img_size=64"))
    path = save_checkpoint(state, tmp_path, "safetensors")
    with pytest.raises(WeightsError, match=r"4x4 patch grid .* model.arch.img_size=64"):
        build_backbone(tiny_config("musk", "pretrained=true", f"weights={path}"))


def test_musk_image_path_matches_torchscale_beit3(tmp_path):
    pytest.importorskip("torchscale", reason="torchscale is optional (pip install --no-deps torchscale fairscale)")
    from torchscale.architecture.config import EncoderConfig
    from torchscale.model.BEiT3 import BEiT3

    args = EncoderConfig(
        img_size=64,
        patch_size=16,
        vocab_size=11,
        multiway=True,
        layernorm_embedding=False,
        normalize_output=True,
        no_output_layer=True,
        encoder_embed_dim=32,
        encoder_attention_heads=2,
        encoder_ffn_embed_dim=128,
        encoder_layers=2,
    )
    ref = BEiT3(args).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    path = save_checkpoint({f"beit3.{k}": v for k, v in ref.state_dict().items()}, tmp_path, "safetensors")
    loaded = build_backbone(tiny_config("musk", "tiny.img_size=64", "pretrained=true", f"weights={path}")).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_tokens(x)[0], ref(visual_tokens=x)["encoder_out"])


# transformers 5.x names of the same tensors (read off transformers 5.24's module trees).
def _to_v5(state: dict, vit: bool) -> dict:
    out = {}
    for key, value in state.items():
        if vit:
            key = re.sub(r"^encoder\.layer\.(\d+)\.", r"layers.\1.", key)
            key = re.sub(r"\.intermediate\.dense\.", ".mlp.fc1.", key)
            key = re.sub(r"(layers\.\d+)\.output\.dense\.", r"\1.mlp.fc2.", key)
        key = re.sub(r"\.attention\.attention\.(query|key|value)\.", lambda m: f".attention.{m.group(1)[0]}_proj.", key)
        key = key.replace(".attention.output.dense.", ".attention.o_proj.")
        if ".mlp.weights_in." in key:
            gate, up = value.chunk(2, dim=0)
            out[key.replace("weights_in", "gate_proj")] = gate
            out[key.replace("weights_in", "up_proj")] = up
            continue
        out[key.replace(".mlp.weights_out.", ".mlp.down_proj.")] = value
    return out


@pytest.mark.parametrize("name", ["phikon", "phikon_v2", "midnight12k", "hibou_l"])
def test_checkpoint_resaved_by_transformers_5_loads_too(name, tmp_path):
    cfg = tiny_config(name)
    state, reference = original_checkpoint(name, cfg)
    v5 = _to_v5(state, vit=cfg.family == "hf_vit")
    assert set(v5) != set(state)
    path = save_checkpoint(v5, tmp_path, "safetensors")
    loaded = build_backbone(tiny_config(name, "pretrained=true", f"weights={path}")).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_tokens(x)[-1], reference(x), rtol=1e-4, atol=1e-4)


def test_hugging_face_folder_with_sharded_safetensors_loads(tmp_path):
    import json

    from safetensors.torch import save_file

    state, reference = original_checkpoint("phikon_v2", tiny_config("phikon_v2"))
    keys = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    for shard, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(tmp_path / shard))
    index = {"weight_map": {k: shard for shard, names in shards.items() for k in names}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text("{}")
    loaded = build_backbone(tiny_config("phikon_v2", "pretrained=true", f"weights={tmp_path}")).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_tokens(x)[-1], reference(x))


def test_weights_in_the_hugging_face_cache_are_found_offline(offline_hf_cache):
    state, reference = original_checkpoint("uni", tiny_config("uni"))
    put_in_cache(offline_hf_cache, "MahmoodLab/UNI", "pytorch_model.bin", state)
    cfg = tiny_config("uni", "pretrained=true")
    where, path = locate_local(cfg)
    assert where == "hf-cache" and path == resolve_weights(cfg)
    loaded = build_backbone(tiny_config("uni", "pretrained=true", f"weights={path}")).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_tokens(x)[-1], reference(x))


def test_model_weights_override_wins_over_the_cache(offline_hf_cache, tmp_path):
    state, _ = original_checkpoint("uni", tiny_config("uni"))
    put_in_cache(offline_hf_cache, "MahmoodLab/UNI", "pytorch_model.bin", state)
    own = save_checkpoint(state, tmp_path, "safetensors")
    assert locate_local(tiny_config("uni", f"weights={own}")) == ("model.weights", own)


def test_no_weights_offline_is_one_message_naming_model_places_page_and_fix(offline_hf_cache):
    with pytest.raises(WeightsError) as err:
        build_backbone(load_full("uni"))
    message = str(err.value)
    assert "\n" not in message
    for part in (
        "model 'uni'",
        "model.weights (not set)",
        "Hugging Face cache",
        "HF_HUB_OFFLINE",
        "https://huggingface.co/MahmoodLab/UNI",
        "gated",
        "model.weights=PATH",
    ):
        assert part in message


def test_unreachable_hub_is_reported_quickly_instead_of_retried(offline_hf_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(WeightsError, match=r"the hub \(unreachable: 127\.0\.0\.1"):
        resolve_weights(load_full("phikon"))


def test_missing_override_file_names_it(tmp_path):
    with pytest.raises(WeightsError, match=r"model.weights=.*nope.safetensors does not exist"):
        resolve_weights(load_full("phikon", f"weights={tmp_path / 'nope.safetensors'}"))


def load_full(name: str, *overrides: str):
    from densebench.backbones.catalog import load_model_config

    return load_model_config(name, list(overrides))


def test_trunk_only_file_for_a_prefixed_release_says_how_to_load_it(tmp_path):
    state, reference = original_checkpoint("conch", tiny_config("conch"))
    trunk = {k.removeprefix("visual.trunk."): v for k, v in state.items() if k.startswith("visual.trunk.")}
    path = save_checkpoint(trunk, tmp_path, "safetensors")
    with pytest.raises(WeightsError, match="model.checkpoint_prefix=null"):
        build_backbone(tiny_config("conch", "pretrained=true", f"weights={path}"))
    loaded = build_backbone(tiny_config("conch", "pretrained=true", f"weights={path}", "checkpoint_prefix=null"))
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().forward_tokens(x)[-1], reference(x))
