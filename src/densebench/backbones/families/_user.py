"""What the families for the user's own models (`timm_hub`, `python`) share.

A user's module is not known in advance, so everything the pipeline needs is read from it and
checked once, when it is built: geometry (patch size, width, prefix tokens, blocks), normalisation
(the YAML's `mean`/`std` win over the module's), LoRA target patterns (the YAML's `lora_targets`
win over the module's attribute, which wins over patterns read from its block stack), and one probe
forward on a non-square grid of patches that must give one token per patch plus the prefix tokens.
Every problem is one `ConfigError` naming the config key to change (docs/your-model.md).
"""

from __future__ import annotations

from abc import abstractmethod

import re
from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from densebench.backbones.base import Backbone
from densebench.errors import ConfigError

#: Probe grid (rows, columns) of patches: non-square, so a transposed token order cannot pass unnoticed.
PROBE_GRID = (2, 3)
#: Within a block, a Linear whose path has a part holding one of these words is an attention projection,
#: else an MLP layer; anything else (e.g. a bare `proj`) only joins `all_linear`.
_ATTENTION_WORDS = ("attn", "attention", "qkv", "query", "key", "value", "q_proj", "k_proj", "v_proj", "o_proj")
_MLP_WORDS = ("mlp", "ffn", "fc", "feed_forward", "intermediate", "output", "gate_proj", "up_proj", "down_proj")


def _square(value: Any, what: str, key: str) -> int:
    """An int patch size from an int or a (h, w) pair of equal sides."""
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ConfigError(f"{key}: the model's {what} is {tuple(value)}; DenseBench needs square patches")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: the model's {what} is {value!r}; it must be a positive int")
    return value


def block_linears(module: nn.Module, prefix: str = "model") -> dict[str, list[str]]:
    """Linear modules of every block of the module's one block stack, by role: block path → names.

    Returns {"blocks": [regex of the stack path], "attn": [...], "mlp": [...], "other": [...]}, names
    relative to a block, in module order.
    """
    from densebench.backbones.blocks import block_stacks

    stacks = block_stacks(module)
    if len(stacks) != 1:
        return {}
    path, stack = stacks[0]
    first = next(iter(stack.children()))
    roles: dict[str, list[str]] = {
        "blocks": [f"{prefix}.{path}" if prefix else path],
        "attn": [],
        "mlp": [],
        "other": [],
    }
    # nn.MultiheadAttention reads its out_proj weight directly, never calling the Linear: LoRA there does nothing
    unused = {
        f"{n}.out_proj" if n else "out_proj" for n, m in first.named_modules() if isinstance(m, nn.MultiheadAttention)
    }
    for name, child in first.named_modules():
        if not isinstance(child, nn.Linear) or name in unused:
            continue
        parts = name.split(".")
        role = (
            "attn"
            if any(w in p for p in parts for w in _ATTENTION_WORDS)
            else "mlp"
            if any(w in p for p in parts for w in _MLP_WORDS)
            else "other"
        )
        roles[role].append(name)
    return roles


def infer_lora_targets(module: nn.Module, prefix: str = "model") -> dict[str, str]:
    """`attn`, `attn_mlp`, `all_linear` regexes from the Linear layers of the first block of the stack."""
    roles = block_linears(module, prefix)
    if not roles:
        return {}
    blocks = re.escape(roles["blocks"][0]) + r"\.\d+"

    def pattern(names: list[str]) -> str | None:
        return rf"{blocks}\.({'|'.join(re.escape(n) for n in names)})" if names else None

    out = {
        "attn": pattern(roles["attn"]),
        "attn_mlp": pattern(roles["attn"] + roles["mlp"]),
        "all_linear": pattern(roles["attn"] + roles["mlp"] + roles["other"]),
    }
    return {k: v for k, v in out.items() if v is not None}


class UserBackbone(Backbone):
    """A user module as `self.model`; subclasses call `_finish` once geometry and forward are known."""

    model: nn.Module
    _cfg: DictConfig
    #: the config key that names the model's origin, quoted in every error about the module itself.
    origin_key: str = "model.family"

    @property
    def origin_text(self) -> str:
        return f"{self.origin_key}={OmegaConf.select(self._cfg, self.origin_key.removeprefix('model.'))}"

    @property
    def weights_module(self) -> nn.Module:
        return self.model

    def lora_fix(self, target_set: str) -> str:
        blocks = block_linears(self.model)
        example = (
            f"{blocks['blocks'][0]}.0.{(blocks['attn'] or blocks['other'] or ['qkv'])[0]}"
            if blocks
            else "model.blocks.0.attn.qkv"
        )
        return f"set model.lora_targets.{target_set} (a regex over module paths such as {example})"

    def _finish(
        self, cfg: DictConfig, geometry: dict[str, Any], mean: Any, std: Any, module_targets: dict[str, str] | None
    ) -> None:
        """Set geometry, normalisation and LoRA targets, then probe a forward on a non-square grid."""
        if geometry.get("num_blocks") is not None:
            self.num_blocks = int(geometry["num_blocks"])
        self.patch_size = _square(geometry["patch_size"], "patch size", self.origin_text)
        self.embed_dim = int(geometry["embed_dim"])
        self.num_prefix_tokens = int(geometry["num_prefix_tokens"])
        self.mean = self._normalisation(cfg, "mean", mean)
        self.std = self._normalisation(cfg, "std", std)
        yaml_targets = cfg.get("lora_targets")
        if yaml_targets:
            self.lora_targets = {str(k): str(v) for k, v in yaml_targets.items()}
        elif module_targets:
            self.lora_targets = {k: rf"model\.{v}" for k, v in module_targets.items()}
        else:
            self.lora_targets = infer_lora_targets(self.model)
        count = self.probe()
        if geometry.get("num_blocks") is None:
            self.num_blocks = count

    def _normalisation(self, cfg: DictConfig, key: str, from_model: Any) -> tuple[float, float, float]:
        value = cfg.get(key)
        if value is None:
            value = from_model
        if value is None:
            raise ConfigError(
                f"model.{key}: normalisation missing; {self.origin_text} does not publish its {key}, so set "
                f"model.mean and model.std (RGB, 0-1 scale, e.g. [0.485, 0.456, 0.406] / [0.229, 0.224, 0.225])"
            )
        value = [float(v) for v in value]
        if len(value) != 3:
            raise ConfigError(f"model.{key}={value}: give three values (R, G, B)")
        return (value[0], value[1], value[2])

    @abstractmethod
    def all_tokens(self, x: Tensor) -> Sequence[Any]:
        """The module's raw output for the probe: one (B, N, D) tensor per layer."""

    def probe(self) -> int:
        """One forward on a (2p, 3p) image: each output must be (1, prefix + 6, D). Returns the layer count.

        On the meta device (weightless builds) only shapes flow, so the check costs nothing there.
        """
        h, w = PROBE_GRID
        p = self.patch_size
        device = next((t.device for t in self.model.parameters()), torch.device("cpu"))
        dtype = next((t.dtype for t in self.model.parameters() if t.is_floating_point()), torch.float32)
        x = torch.zeros(1, 3, h * p, w * p, device=device, dtype=dtype)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.all_tokens(x)
        except ConfigError:
            raise
        except NotImplementedError:
            if device.type == "meta":  # an op without a meta kernel: the real build checks it
                return int(getattr(self, "num_blocks", 0) or 1)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is one line
            raise ConfigError(
                f"{self.origin_text}: the model's forward failed on a {h * p}x{w * p} input "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                "it must accept any height and width that are multiples of its patch size"
            ) from None
        finally:
            self.model.train(was_training)
        if not isinstance(out, (list, tuple)) or not out or not all(isinstance(t, Tensor) for t in out):
            raise ConfigError(
                f"{self.origin_text}: the output is not a token map ({type(out).__name__}); return a list with one "
                "(B, N, D) tensor per layer (docs/your-model.md#the-contract)"
            )
        expected = self.num_prefix_tokens + h * w
        for i, t in enumerate(out):
            if t.dim() != 3 or t.shape[-1] != self.embed_dim:
                raise ConfigError(
                    f"{self.origin_text}: layer {i} output has shape {tuple(t.shape)}, not a token map (B, N, D={self.embed_dim}); "
                    "return (B, N, D) tokens per layer (docs/your-model.md#the-contract)"
                )
            if t.shape[1] != expected:
                raise ConfigError(
                    f"{self.origin_text}: for a {h * p}x{w * p} input ({h}x{w} patches of {p}px) layer {i} has "
                    f"{t.shape[1]} tokens, not num_prefix_tokens + {h * w} = {expected}; the tokens do not fit "
                    "the grid: check the module's patch_size and num_prefix_tokens"
                )
        return len(out)


class TimmConvention(UserBackbone):
    """A module with timm's `forward_intermediates` (patch tokens + prefix tokens per selected block)."""

    def _timm_geometry(self) -> dict[str, Any]:
        m: Any = self.model  # a user's module: its attributes are checked below, not typed
        patch = getattr(m, "patch_size", None)
        if patch is None and hasattr(m, "patch_embed"):
            patch = m.patch_embed.patch_size
        blocks: Any = getattr(m, "blocks", None)
        missing = [
            name
            for name, v in (
                ("patch_size or patch_embed.patch_size", patch),
                ("embed_dim", getattr(m, "embed_dim", None)),
                ("num_prefix_tokens", getattr(m, "num_prefix_tokens", None)),
                ("blocks", blocks),
            )
            if v is None
        ]
        if missing:
            raise ConfigError(
                f"{self.origin_text}: {type(m).__name__} has forward_intermediates but no {', '.join(missing)}; "
                "DenseBench needs a patch-token transformer (docs/your-model.md#the-contract)"
            )
        return {
            "patch_size": patch,
            "embed_dim": m.embed_dim,
            "num_prefix_tokens": m.num_prefix_tokens,
            "num_blocks": len(blocks),
        }

    def _intermediates(self, x: Tensor, indices: list[int]) -> list[Tensor]:
        model: Any = self.model
        inter = model.forward_intermediates(
            x,
            indices=indices,
            norm=True,
            output_fmt="NLC",
            intermediates_only=True,
            return_prefix_tokens=True,
        )
        return [patches if prefix is None else torch.cat([prefix, patches], dim=1) for patches, prefix in inter]

    def all_tokens(self, x: Tensor) -> Sequence[Any]:
        return self._intermediates(x, [self.num_blocks - 1])

    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        return self._intermediates(x, self.selected_blocks(self.num_blocks) if self.layers else [self.num_blocks - 1])


class TokensProtocol(UserBackbone):
    """A module with DenseBench's small protocol: `forward_tokens(x)` → one (B, N, D) tensor per layer,
    and attributes `patch_size`, `embed_dim`, `num_prefix_tokens`, `mean`, `std`."""

    def all_tokens(self, x: Tensor) -> Sequence[Any]:
        model: Any = self.model
        return model.forward_tokens(x)

    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        tokens = self.all_tokens(x)
        if self.layers is None:
            return [tokens[-1]]
        return [tokens[i] for i in self.selected_blocks(len(tokens))]
