"""Shared test helpers: tiny configs and checkpoints in each release's ORIGINAL key layout.

The original layouts are written here from the published facts (../shared/reference/backbones.md),
not derived from the code under test, so a wrong key mapping in the code fails the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from safetensors.torch import save_file
from torch import Tensor

from densebench.backbones import Backbone, build_backbone
from densebench.backbones.catalog import build_on_meta, load_model_config, model_names

ALL_MODELS = model_names()
PFMS = [n for n in ALL_MODELS if load_model_config(n).get("published_key")]

# Keys an original release holds outside the image trunk (other towers, poolers, heads), per model.
OTHER_TOWERS = {
    "conch": [
        "visual.attn_pool_contrast.query",
        "visual.ln_contrast.weight",
        "visual.proj_contrast",
        "text.token_embedding.weight",
        "text_decoder.ln_final.weight",
        "logit_scale",
    ],
    "conch_v1_5": ["attn_pool_contrast.query", "attn_pool_contrast.to_kv.weight", "ln_contrast.weight"],
    "phikon": ["pooler.dense.weight", "pooler.dense.bias"],
}
# How each model's test checkpoint is written: the formats releases use, spread over the models.
FORMATS = ("safetensors", "bin", "pth-wrapped")


def tiny_config(name: str, *overrides: str) -> DictConfig:
    return load_model_config(name, ["variant=tiny", "pretrained=false", *overrides])


@cache
def shared_tiny(name: str) -> Backbone:
    """One tiny random backbone per model for tests that only read it (never modify the result)."""
    return build_backbone(tiny_config(name)).eval()


@cache
def shared_full_on_meta(name: str) -> Backbone:
    """The full-size architecture on the meta device, built once per test session."""
    return build_on_meta(load_model_config(name))


def randomize_(module: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter so LayerScale/zero inits cannot hide a mis-loaded tensor."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)


def save_checkpoint(state: dict[str, Tensor], folder: Path, fmt: str) -> Path:
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    if fmt == "safetensors":
        path = folder / "model.safetensors"
        save_file(state, str(path))
    elif fmt == "bin":
        path = folder / "pytorch_model.bin"
        torch.save(state, path)
    else:
        path = folder / "checkpoint.pth"
        torch.save({"model": state, "epoch": 3, "optimizer": {"lr": 0.1}}, path)  # a training checkpoint
    return path


def beit3_original_state(cfg: DictConfig, seed: int = 0) -> dict[str, Tensor]:
    """A random MUSK checkpoint in torchscale names: `beit3.*` with both multiway branches, the text
    embedding and the contrastive heads (backbones.md §16)."""
    gen = torch.Generator().manual_seed(seed)
    arch = {**cfg.arch, **cfg.tiny}
    d, depth, p = arch["embed_dim"], arch["depth"], arch["patch_size"]
    ffn, grid = int(d * arch["mlp_ratio"]), (arch["img_size"] // p) ** 2

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen) * 0.2

    state = {
        "beit3.text_embed.weight": r(11, d),
        "beit3.vision_embed.proj.weight": r(d, 3, p, p),
        "beit3.vision_embed.proj.bias": r(d),
        "beit3.vision_embed.cls_token": r(1, 1, d),
        "beit3.vision_embed.mask_token": r(1, 1, d),
        "beit3.encoder.embed_positions.A.weight": r(grid + 3, d),
        "beit3.encoder.embed_positions.B.weight": r(16, d),
        "vision_head.weight": r(d, d),
        "language_head.weight": r(d, d),
        "logit_scale": r(1)[0],
    }
    shapes = {
        "self_attn.q_proj": (d, d),
        "self_attn.k_proj": (d, d),
        "self_attn.v_proj": (d, d),
        "self_attn.out_proj": (d, d),
        "self_attn.inner_attn_ln": None,
        "self_attn_layer_norm": None,
        "ffn.{b}.fc1": (ffn, d),
        "ffn.{b}.fc2": (d, ffn),
        "ffn.{b}.ffn_layernorm": ffn,
        "final_layer_norm": None,
    }
    for i in range(depth):
        for name, shape in shapes.items():
            for branch in "AB":
                key = f"beit3.encoder.layers.{i}." + (name.format(b=branch) if "{b}" in name else f"{name}.{branch}")
                if isinstance(shape, tuple):  # Linear
                    state[key + ".weight"], state[key + ".bias"] = r(*shape), r(shape[0])
                else:  # LayerNorm over `shape` (default: the width)
                    width = shape or d
                    state[key + ".weight"], state[key + ".bias"] = 1 + r(width), r(width)
    for branch in "AB":
        state[f"beit3.encoder.layer_norm.{branch}.weight"] = 1 + r(d)
        state[f"beit3.encoder.layer_norm.{branch}.bias"] = r(d)
    return state


def beit3_reference_tokens(state: dict[str, Tensor], x: Tensor, heads: int, eps: float) -> Tensor:
    """torchscale's BEiT-3 image path written out from its definition: pre-norm blocks with sub-LN in
    attention and MLP, learned positions from row 2, final LayerNorm; every module on branch A."""

    def g(key: str) -> Tensor:
        return state["beit3." + key]

    def ln(v: Tensor, key: str) -> Tensor:
        return F.layer_norm(v, v.shape[-1:], g(key + ".weight"), g(key + ".bias"), eps)

    def lin(v: Tensor, key: str) -> Tensor:
        return F.linear(v, g(key + ".weight"), g(key + ".bias"))

    p = g("vision_embed.proj.weight").shape[-1]
    t = F.conv2d(x, g("vision_embed.proj.weight"), g("vision_embed.proj.bias"), stride=p).flatten(2).transpose(1, 2)
    t = torch.cat([g("vision_embed.cls_token").expand(len(x), -1, -1), t], dim=1)
    t = t + g("encoder.embed_positions.A.weight")[2 : 2 + t.shape[1]]
    depth = len({k.split(".")[3] for k in state if k.startswith("beit3.encoder.layers.")})
    for i in range(depth):
        layer = f"encoder.layers.{i}."
        h = ln(t, layer + "self_attn_layer_norm.A")
        b, n, d = h.shape

        def split(z: Tensor) -> Tensor:
            return z.view(b, n, heads, d // heads).transpose(1, 2)

        q, k, v = (split(lin(h, layer + f"self_attn.{c}_proj.A")) for c in "qkv")
        attn = torch.softmax((q * (d // heads) ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(b, n, d)
        t = t + lin(ln(attn, layer + "self_attn.inner_attn_ln.A"), layer + "self_attn.out_proj.A")
        h = F.gelu(lin(ln(t, layer + "final_layer_norm.A"), layer + "ffn.A.fc1"))
        t = t + lin(ln(h, layer + "ffn.A.ffn_layernorm"), layer + "ffn.A.fc2")
    return ln(t, "encoder.layer_norm.A")


def original_checkpoint(name: str, cfg: DictConfig) -> tuple[dict[str, Tensor], Callable[[Tensor], Tensor]]:
    """(state dict in the release's key layout, function giving the tokens of the model it came from)."""
    if cfg.family == "beit3":
        state = beit3_original_state(cfg)
        arch = {**cfg.arch, **cfg.tiny}
        return state, lambda x: beit3_reference_tokens(state, x, arch["num_heads"], arch["norm_eps"])
    source: Backbone = build_backbone(cfg).eval()
    randomize_(source)
    prefix = cfg.get("checkpoint_prefix") or ""
    state = {prefix + k: v for k, v in source.weights_module.state_dict().items()}
    state.update({k: torch.randn(4) for k in OTHER_TOWERS.get(name, [])})
    return state, lambda x: source.forward_tokens(x)[-1]


def put_in_cache(cache: Path, repo_id: str, filename: str, state: dict[str, Tensor]) -> Path:
    """Lay a file out as huggingface_hub's cache does: refs/main -> snapshots/<commit>/<filename>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    fmt = "safetensors" if filename.endswith(".safetensors") else "bin"
    return save_checkpoint(state, snapshot, fmt).rename(snapshot / filename)
