"""Finding a backbone's stack of transformer blocks without knowing its family.

timm (`blocks`), transformers (`encoder.layer`) and BEiT-3 models all hold their blocks as one
ModuleList/Sequential of identical modules. Reading that stack from the module tree lets
the LoRA injection check, gradient checkpointing and layer-wise LR decay work for every family
without a per-family or per-model table.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.checkpoint import checkpoint

from densebench.errors import ConfigError


def _is_block_stack(module: nn.Module) -> bool:
    """A ModuleList/Sequential of ≥1 composite modules of one class that each hold a Linear."""
    if not isinstance(module, (nn.ModuleList, nn.Sequential)) or len(module) == 0:
        return False
    children = list(module.children())
    if len({type(c) for c in children}) != 1 or isinstance(children[0], nn.Linear):
        return False
    return all(any(isinstance(m, nn.Linear) for m in c.modules()) for c in children)


def block_stacks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost block stacks in `module`, as (dotted path, stack) in registration order."""
    found: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, parent: nn.Module) -> None:
        for name, child in parent.named_children():
            path = f"{prefix}{name}"
            if _is_block_stack(child):
                found.append((path, child))
            else:
                visit(f"{path}.", child)

    visit("", module)
    return found


def block_of(name: str, stacks: list[tuple[str, nn.Module]]) -> tuple[str, str] | None:
    """(stack path, block name) holding the parameter/module `name`, or None outside every stack."""
    for path, _ in stacks:
        if name.startswith(f"{path}."):
            return path, name[len(path) + 1 :].split(".", 1)[0]
    return None


def single_stack(module: nn.Module, model_name: str, purpose: str) -> tuple[str, nn.Module]:
    stacks = block_stacks(module)
    if len(stacks) != 1:
        found = ", ".join(p for p, _ in stacks) or "none"
        raise ConfigError(
            f"model '{model_name}': {purpose} needs exactly one stack of transformer blocks, found {found}; "
            "turn the option off for this model"
        )
    return stacks[0]


def layer_ids(module: nn.Module, model_name: str) -> tuple[dict[str, int], int]:
    """Depth index of each parameter: 0 before the blocks, i+1 in block i, L+1 after; and L.

    "Before"/"after" follow registration order, which every family uses for embeddings → blocks → norm.
    """
    path, stack = single_stack(module, model_name, "adapter.layer_decay")
    index = {name: i for i, (name, _) in enumerate(stack.named_children())}
    depth = len(index)
    ids: dict[str, int] = {}
    seen_blocks = False
    for name, _ in module.named_parameters():
        where = block_of(name, [(path, stack)])
        if where is not None:
            ids[name] = index[where[1]] + 1
            seen_blocks = True
        else:
            ids[name] = depth + 1 if seen_blocks else 0
    return ids, depth


def checkpoint_min_tokens(cfg: DictConfig) -> int | None:
    """`adapter.grad_checkpointing` as the per-image token count from which blocks are recomputed in
    backward: true → 0 (always), false → None (never), auto → `adapter.checkpoint_min_tokens`.

    auto exists because recomputation costs a second forward (about +35% step time): below ~1024
    tokens (224² at patch 16) the saved activations are small beside the weights, above it they grow
    with tokens (and attention with tokens²) and dominate memory (issue 9)."""
    mode = cfg.grad_checkpointing
    if mode is True or mode is False:
        return 0 if mode else None
    if mode == "auto":
        return int(cfg.checkpoint_min_tokens)
    raise ConfigError(f"adapter.grad_checkpointing={mode}: expected true, false or auto")


def _checkpointed_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
    # Bound per instance (types.MethodType) so deepcopy/pickle rebind to the copy, unlike a closure.
    forward = type(self).forward
    tokens = args[0].shape[-2] if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 3 else None
    big_enough = tokens is None or tokens >= self.checkpoint_min_tokens
    if self.training and torch.is_grad_enabled() and big_enough:
        return checkpoint(forward, self, *args, use_reentrant=False, **kwargs)
    return forward(self, *args, **kwargs)


def checkpoint_blocks(module: nn.Module, model_name: str, min_tokens: int = 0) -> int:
    """Recompute each transformer block's activations in backward instead of storing them, for inputs
    of at least `min_tokens` tokens per image; returns L."""
    _, stack = single_stack(module, model_name, "adapter.grad_checkpointing")
    blocks: list[Any] = list(stack.children())  # an attribute and a bound forward are set on each
    for block in blocks:
        block.checkpoint_min_tokens = min_tokens
        block.forward = types.MethodType(_checkpointed_forward, block)
    return len(blocks)
