"""`lora` and `dora`: low-rank updates of the backbone's Linear layers through peft; base weights frozen.

Which Linears are targeted is a per-family regex (`Backbone.lora_targets[target_set]`), so every
family (timm, transformers, BEiT-3) is covered without a model allowlist. The paper's own LoRA
silently did nothing on 6 of 17 backbones; here injection is counted per transformer block and
any block left without adapters fails the build. DoRA is peft's (`use_dora=True`): a learned
magnitude per output row of each weight, not the paper's one scalar per matrix.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from omegaconf import DictConfig
from torch import nn

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Adapter
from densebench.backbones.blocks import block_of, block_stacks, checkpoint_blocks, checkpoint_min_tokens
from densebench.adapters.strategies.frozen import freeze
from densebench.backbones.base import Backbone
from densebench.errors import ConfigError

#: Name fragment of every parameter peft adds (lora_A, lora_B, lora_magnitude_vector).
PEFT_PREFIX = "lora_"


def target_regex(backbone: Backbone, target_set: str) -> str:
    targets = backbone.lora_targets
    if target_set not in targets:
        known = ", ".join(sorted(targets)) or "none (the family defines no lora_targets)"
        raise ConfigError(
            f"model '{backbone.model_name}': adapter.target_set={target_set} is not defined for "
            f"{type(backbone).__name__}; known: {known}; or {backbone.lora_fix(target_set)}"
        )
    return targets[target_set]


def targeted_linears(backbone: Backbone, regex: str, target_set: str) -> dict[str, nn.Linear]:
    """The modules the regex selects (peft full-matches module paths); all must be Linear layers."""
    matched = {n: m for n, m in backbone.named_modules() if n and re.fullmatch(regex, n)}
    if not matched:
        raise ConfigError(
            f"model '{backbone.model_name}': LoRA target pattern {regex!r} matches no module of "
            f"{type(backbone).__name__}; {backbone.lora_fix(target_set)}"
        )
    other = sorted(n for n, m in matched.items() if not isinstance(m, nn.Linear))
    if other:
        raise ConfigError(
            f"model '{backbone.model_name}': LoRA target pattern {regex!r} selects non-Linear modules "
            f"(e.g. {other[0]}); {backbone.lora_fix(target_set)}"
        )
    return matched


def count_per_block(backbone: Backbone, names: list[str], target_set: str) -> Counter:
    """Count the targeted Linears per transformer block; fail unless every block has the same, nonzero count.

    Returns the per-block counts keyed by (stack path, block name).
    """
    name = backbone.model_name
    stacks = block_stacks(backbone)
    counts: Counter = Counter()
    for module_name in names:
        where = block_of(module_name, stacks)
        if where is None:
            raise ConfigError(
                f"model '{name}': LoRA target set '{target_set}' adapted {module_name}, which is outside the "
                f"transformer blocks (e.g. the patch embedding); {backbone.lora_fix(target_set)}"
            )
        counts[where] += 1
    used = [(path, stack) for path, stack in stacks if any(p == path for p, _ in counts)]
    if not used:
        raise ConfigError(
            f"model '{name}': LoRA target set '{target_set}' adapts no transformer block; "
            f"{backbone.lora_fix(target_set)}"
        )
    for path, stack in used:
        per_block = {block: counts[(path, block)] for block, _ in stack.named_children()}
        most = max(per_block.values())
        short = {b: c for b, c in per_block.items() if c < most}
        if short:
            block, count = next(iter(short.items()))
            raise ConfigError(
                f"model '{name}': LoRA target set '{target_set}' adapted {count} Linear modules in block "
                f"{path}.{block} but {most} in others ({len(short)} of {len(per_block)} blocks short); "
                f"{backbone.lora_fix(target_set)}"
            )
    return counts


def check_every_block_adapted(backbone: Backbone, target_set: str) -> Counter:
    """`count_per_block` over the Linears peft actually adapted."""
    from peft.tuners.lora import LoraLayer

    return count_per_block(backbone, [n for n, m in backbone.named_modules() if isinstance(m, LoraLayer)], target_set)


@ADAPTERS.register("lora")
@ADAPTERS.register("dora")
class LowRank(Adapter):
    """LoRA (`use_dora: false`) or DoRA (`use_dora: true`) injected in place into the backbone."""

    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        # peft pulls in transformers (seconds): import it only when a low-rank strategy is built, not
        # whenever the adapter registry loads this module.
        from peft import LoraConfig, inject_adapter_in_model

        super().__init__(backbone, cfg)
        regex = target_regex(backbone, cfg.target_set)
        targets = targeted_linears(backbone, regex, cfg.target_set)
        freeze(backbone)
        config = LoraConfig(
            r=int(cfg.rank),
            lora_alpha=int(cfg.alpha) if cfg.alpha is not None else int(cfg.rank),
            lora_dropout=float(cfg.dropout),
            target_modules=regex,
            use_dora=bool(cfg.use_dora),
            bias="none",
        )
        inject_adapter_in_model(config, backbone)
        #: adapted Linears per (block stack, block); every block has the same nonzero count.
        self.block_counts = check_every_block_adapted(backbone, cfg.target_set)
        if sum(self.block_counts.values()) != len(targets):
            raise ConfigError(
                f"model '{backbone.model_name}': peft adapted {sum(self.block_counts.values())} of the "
                f"{len(targets)} Linear modules selected by target set '{cfg.target_set}'"
            )
        min_tokens = checkpoint_min_tokens(cfg)
        if min_tokens is not None:
            checkpoint_blocks(backbone, backbone.model_name, min_tokens)

    def own_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if PEFT_PREFIX in n)
