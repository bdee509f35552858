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


def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    # Bound per instance (types.MethodType) so deepcopy/pickle rebind to the copy, unlike a closure.
    forward = type(self).forward
    if self.training and torch.is_grad_enabled():
        return checkpoint(forward, self, *args, use_reentrant=False, **kwargs)
    return forward(self, *args, **kwargs)


def checkpoint_blocks(module: nn.Module, model_name: str) -> int:
    """Recompute each transformer block's activations in backward instead of storing them; returns L."""
    _, stack = single_stack(module, model_name, "adapter.grad_checkpointing")
    for block in stack.children():
        block.forward = types.MethodType(_checkpointed_forward, block)
    return len(stack)
