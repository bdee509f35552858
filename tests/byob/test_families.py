"""`python` and `timm_hub` families: geometry read from the module, normalisation, LoRA targets, strict weights."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from densebench.errors import ConfigError, WeightsError
from tests.byob.support import fake_hf_cache, use_config_dir, user_env, write_config_dir


def build(name, *overrides):
    from densebench.backbones import build_backbone
    from densebench.backbones.catalog import load_model_config

    return build_backbone(load_model_config(name, list(overrides)))


def test_a_protocol_module_gives_maps_on_a_non_square_input_needing_padding(tmp_path, monkeypatch):
    use_config_dir(monkeypatch, tmp_path)
    backbone = build("my_tiny")
    assert (backbone.patch_size, backbone.embed_dim, backbone.num_prefix_tokens, backbone.num_blocks) == (8, 24, 1, 2)
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.std == (0.25, 0.25, 0.25)
    (tokens,) = backbone(torch.rand(2, 3, 41, 57))
    assert tokens.shape == (2, 24, 6, 8)


def test_model_layers_index_the_protocol_s_per_layer_outputs(tmp_path, monkeypatch):
    use_config_dir(monkeypatch, tmp_path)
    backbone = build("my_tiny", "factory_kwargs.depth=3", "layers=[0,-1]")
    x = torch.rand(1, 3, 16, 24)
    first, last = backbone(x)
    every = backbone.model.forward_tokens(x)
    assert torch.equal(backbone.tokens_to_map(every[0], (2, 3)), first)
    assert torch.equal(backbone.tokens_to_map(every[2], (2, 3)), last)


def test_a_factory_returning_a_timm_model_is_used_through_forward_intermediates(tmp_path, monkeypatch):
    configs = use_config_dir(monkeypatch, tmp_path)
    (tmp_path / "pkg" / "my_timm.py").write_text(
        "from timm.models.vision_transformer import VisionTransformer\n"
        "def build():\n"
        "    return VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=3, num_heads=2, num_classes=0,"
        " reg_tokens=1, dynamic_img_size=True)\n"
    )
    (configs / "model" / "my_timm.yaml").write_text(
        "name: my_timm\nfamily: python\nfactory: my_timm:build\nmean: [0.1, 0.2, 0.3]\nstd: [0.4, 0.5, 0.6]\n"
    )
    backbone = build("my_timm")
    assert (backbone.patch_size, backbone.embed_dim, backbone.num_prefix_tokens, backbone.num_blocks) == (16, 32, 2, 3)
    assert backbone.mean == (0.1, 0.2, 0.3)  # the YAML's, as no pretrained config says otherwise
    assert backbone(torch.rand(1, 3, 40, 70))[0].shape == (1, 32, 3, 5)
    assert backbone.lora_targets["attn"] == r"model\.blocks\.\d+\.(attn\.qkv|attn\.proj)"


def test_yaml_normalisation_wins_over_the_module_s(tmp_path, monkeypatch):
    use_config_dir(monkeypatch, tmp_path)
    backbone = build("my_tiny", "mean=[0.1,0.1,0.1]", "std=[0.2,0.2,0.2]")
    assert backbone.mean == (0.1, 0.1, 0.1) and backbone.std == (0.2, 0.2, 0.2)


def test_lora_targets_are_read_from_the_block_stack(tmp_path, monkeypatch):
    use_config_dir(monkeypatch, tmp_path)
    targets = build("my_tiny").lora_targets
    assert targets["attn"] == r"model\.blocks\.\d+\.(attn\.qkv|attn\.proj)"
    assert targets["attn_mlp"] == r"model\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.0|mlp\.2)"


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("my_pfm:build_raises", r"model\.factory=my_pfm:build_raises: the factory raised RuntimeError: checkpoint"),
        (
            "my_pfm:build_wrong_type",
            r"model\.factory=my_pfm:build_wrong_type: the factory returned dict, not a torch\.nn\.Module",
        ),
        ("my_pfm:nothing", r"model\.factory=my_pfm:nothing: my_pfm has no function nothing"),
        ("not_there.mod:build", r"model\.factory=not_there\.mod:build: cannot import not_there\.mod"),
    ],
)
def test_bad_factories_are_one_config_error_naming_model_factory(tmp_path, monkeypatch, factory, message):
    use_config_dir(monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match=message):
        build("my_tiny", f"factory={factory}", "factory_kwargs=null")


def test_a_timm_hub_model_with_an_explicit_weights_file_loads_strictly(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    configs = use_config_dir(monkeypatch, tmp_path)
    (configs / "model" / "named.yaml").write_text(
        "name: named\nfamily: timm_hub\ntimm_name: vit_small_patch16_224\n"
        "arch: {img_size: 32, embed_dim: 32, depth: 2, num_heads: 2}\npretrained: true\nweights: null\n"
    )
    source = timm.create_model("vit_small_patch16_224", num_classes=0, img_size=32, embed_dim=32, depth=2, num_heads=2)
    state = source.state_dict()
    save_file(state, str(tmp_path / "w.safetensors"))
    backbone = build("named", f"weights={tmp_path / 'w.safetensors'}")
    assert all(torch.equal(v, backbone.model.state_dict()[k]) for k, v in state.items())
    assert backbone.mean == tuple(source.pretrained_cfg["mean"])  # timm's pretrained config
    del state["blocks.1.attn.qkv.weight"]
    save_file(state, str(tmp_path / "short.safetensors"))
    with pytest.raises(WeightsError, match=r"1 missing \(e\.g\. blocks\.1\.attn\.qkv\.weight\)"):
        build("named", f"weights={tmp_path / 'short.safetensors'}")


def test_timm_hub_reads_config_and_weights_from_an_offline_hugging_face_cache(tmp_path):
    """In a fresh process: huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE when it is imported."""
    configs = write_config_dir(tmp_path)
    cache, state = fake_hf_cache(tmp_path)
    script = (
        "import json, torch\n"
        "from densebench.backbones import build_backbone\n"
        "from densebench.backbones.catalog import load_model_config\n"
        "b = build_backbone(load_model_config('my_hub'))\n"
        "own = b.model.state_dict()\n"
        "print(json.dumps({'equal': sorted(k for k in own if torch.equal(own[k], torch.load('"
        f"{tmp_path / 'state.pt'}', weights_only=True)[k])), 'origin': b.origin, 'mean': b.mean,"
        " 'geometry': [b.patch_size, b.embed_dim, b.num_prefix_tokens, b.num_blocks]}))\n"
    )
    torch.save(state, tmp_path / "state.pt")
    env = {**user_env(tmp_path, cache), "DENSEBENCH_CONFIG_PATH": str(configs)}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**__import__("os").environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["equal"] == sorted(state)
    assert out["geometry"] == [16, 32, 3, 2] and out["mean"] == [0.7, 0.6, 0.7]
    assert out["origin"]["hub_id"] == "hf-hub:my-lab/tiny-pfm"
    assert out["origin"]["weights_file"].startswith(str(cache / "models--my-lab--tiny-pfm" / "snapshots"))


def test_pretrained_weights_load_strictly_into_the_factory_s_module(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    use_config_dir(monkeypatch, tmp_path)
    import my_pfm

    torch.manual_seed(3)
    state = my_pfm.build().state_dict()
    save_file(state, str(tmp_path / "mine.safetensors"))
    backbone = build("my_tiny", "pretrained=true", f"weights={tmp_path / 'mine.safetensors'}")
    assert all(torch.equal(v, backbone.model.state_dict()[k]) for k, v in state.items())
    assert backbone.origin["weights_file"] == str(tmp_path / "mine.safetensors")
    assert len(backbone.origin["weights_sha256"]) == 64
