"""Fixtures for the user's-own-model tests: a config folder, a factory module and a fake Hugging Face cache."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB_REPO = "my-lab/tiny-pfm"
# a tiny timm ViT, as its authors would publish it with timm's push_to_hf_hub
TIMM_CONFIG = {
    "architecture": "vit_small_patch16_224",
    "num_classes": 0,
    "num_features": 32,
    "model_args": {"img_size": 64, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2, "reg_tokens": 2},
    "pretrained_cfg": {
        "input_size": [3, 64, 64],
        "mean": [0.7, 0.6, 0.7],
        "std": [0.15, 0.2, 0.15],
        "classifier": "head",
        "num_classes": 0,
    },
}

FACTORY_MODULE = '''
"""A user's model in the small protocol: forward_tokens + patch_size, embed_dim, num_prefix_tokens, mean, std."""
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, spare=False):
        super().__init__()
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        if spare:
            self.spare = nn.Linear(dim, dim)  # never called: LoRA on it would do nothing

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj(torch.nn.functional.scaled_dot_product_attention(q, k, v))


class Block(nn.Module):
    def __init__(self, dim, spare=False):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, spare)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyPFM(nn.Module):
    patch_size, num_prefix_tokens = 8, 1
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    def __init__(self, dim=24, depth=2, extra_tokens=0, linear_patch=False, spare_linear=False):
        super().__init__()
        self.embed_dim, self.extra_tokens = dim, extra_tokens
        # a patch embedding as a Linear over flattened patches (some models do this) or as a strided conv
        self.patch = nn.Linear(3 * 64, dim) if linear_patch else nn.Conv2d(3, dim, 8, 8)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, spare_linear) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def embed(self, x):
        if isinstance(self.patch, nn.Linear):
            return self.patch(nn.functional.unfold(x, 8, stride=8).transpose(1, 2))
        return self.patch(x).flatten(2).transpose(1, 2)

    def forward_tokens(self, x):
        t = self.embed(x)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t, t[:, : self.extra_tokens]], 1)
        out = []
        for block in self.blocks:
            t = block(t)
            out.append(self.norm(t))
        return out


def build(dim=24, depth=2, extra_tokens=0, linear_patch=False, spare_linear=False):
    return TinyPFM(dim, depth, extra_tokens, linear_patch, spare_linear)


class NoNorm(TinyPFM):
    mean = std = None


def build_without_normalisation():
    return NoNorm()


class OneTensor(TinyPFM):
    def forward_tokens(self, x):
        return super().forward_tokens(x)[-1]


def build_one_tensor():
    return OneTensor()


def build_raises():
    raise RuntimeError("checkpoint /nowhere/ckpt.pt not found")


def build_wrong_type():
    return {"not": "a module"}
'''

PROTOCOL_YAML = """\
name: my_tiny
display_name: My tiny PFM
published_key: null
family: python
factory: my_pfm:build
factory_kwargs: {dim: 24, depth: 2}
mean: null          # null: the module's own mean/std
std: null
pretrained: false
weights: null
layers: null
"""

HUB_YAML = f"""\
name: my_hub
display_name: My hub PFM
published_key: null
family: timm_hub
timm_name: null
hub:
  repo_id: {HUB_REPO}
  filenames: [model.safetensors]
  revision: null
mean: null          # null: timm's pretrained config
std: null
pretrained: true
weights: null
layers: null
"""


def write_config_dir(root: Path) -> Path:
    """my_configs/model/{my_tiny,my_hub}.yaml and the factory module my_pfm.py (in root/pkg)."""
    (root / "my_configs" / "model").mkdir(parents=True)
    (root / "my_configs" / "model" / "my_tiny.yaml").write_text(PROTOCOL_YAML)
    (root / "my_configs" / "model" / "my_hub.yaml").write_text(HUB_YAML)
    (root / "pkg").mkdir()
    (root / "pkg" / "my_pfm.py").write_text(textwrap.dedent(FACTORY_MODULE))
    return root / "my_configs"


def fake_hf_cache(root: Path, seed: int = 0) -> tuple[Path, dict]:
    """A Hugging Face hub cache holding HUB_REPO as a download leaves it: blobs, snapshot links, refs/main.

    Returns (HF_HUB_CACHE folder, the state dict written).
    """
    import hashlib

    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(TIMM_CONFIG["architecture"], pretrained=False, num_classes=0, **TIMM_CONFIG["model_args"])
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    cache = root / "hf_cache"
    repo = cache / f"models--{HUB_REPO.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    tmp = root / "model.safetensors"
    save_file(state, str(tmp))
    files = {"config.json": json.dumps(TIMM_CONFIG).encode(), "model.safetensors": tmp.read_bytes()}
    tmp.unlink()
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    return cache, state


def user_env(root: Path, cache: Path | None = None) -> dict[str, str]:
    """Environment of a user's shell: their package on PYTHONPATH, an offline hub with the fake cache."""
    from tests.conftest import REPO

    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(root / "pkg")]), "HF_HUB_OFFLINE": "1"}
    if cache is not None:
        env["HF_HUB_CACHE"] = str(cache)
    return env


def use_config_dir(monkeypatch, root: Path) -> Path:
    """In this test process: the user's config folder on the search path and their package importable."""
    configs = write_config_dir(root)
    monkeypatch.setenv("DENSEBENCH_CONFIG_PATH", str(configs))
    monkeypatch.syspath_prepend(str(root / "pkg"))
    return configs
