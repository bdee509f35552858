"""`densebench models --check model=NAME`: will this model work with every strategy? Answered before any training.

Builds the model on the meta device (geometry, parameter count; a user module's probe forward),
then with random weights on the CPU for one real forward on a non-square input that is not a
multiple of the patch size, and resolves the LoRA/DoRA target patterns against the module tree
(then injects LoRA with nonzero updates once: the output must change, or LoRA would train nothing).
Each problem is one line naming the config key to change; weights are located, never loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from densebench.backbones import Backbone, build_backbone
from densebench.backbones.catalog import build_on_meta, load_model_config
from densebench.backbones.cli import model_selection
from densebench.backbones.cli import models_main as catalogue
from densebench.backbones.weights import locate_local
from densebench.errors import ConfigError, DenseBenchError

#: adapter configs whose target patterns are checked (their `target_set` is read from configs/adapter/).
LOW_RANK = ("lora", "dora")


@dataclass
class CheckResult:
    name: str
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _adapter_cfg(name: str) -> DictConfig:
    from densebench.config import find_option

    path = find_option("adapter", name)
    if path is None:
        raise DenseBenchError(f"adapter config '{name}' not found (configs/adapter/)")
    cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig)
    return cfg


def low_rank_targets(backbone: Backbone, adapter: str) -> dict[str, Any]:
    """The Linear layers an adapter config targets: per-block names and counts (raises ConfigError)."""
    from densebench.adapters.strategies.lora import (
        count_per_block,
        target_regex,
        targeted_linears,
    )

    target_set = str(_adapter_cfg(adapter).target_set)
    regex = target_regex(backbone, target_set)
    matched = targeted_linears(backbone, regex, target_set)
    counts = count_per_block(backbone, sorted(matched), target_set)
    per_block = sorted(set(counts.values()))
    first_block = next(iter(counts))
    prefix = f"{first_block[0]}.{first_block[1]}."
    names = [n[len(prefix) :] for n in matched if n.startswith(prefix)]
    return {
        "target_set": target_set,
        "pattern": regex,
        "modules": len(matched),
        "blocks": len(counts),
        "per_block": per_block[0],
        "names_in_block": names,
    }


def decoder_layers(backbone: Backbone) -> str:
    """Which block's tokens the decoder receives (the last selected one, after the final norm)."""
    blocks = backbone.selected_blocks(backbone.num_blocks) if backbone.layers else [backbone.num_blocks - 1]
    listed = ", ".join(str(b) for b in blocks)
    return (
        f"block {blocks[-1]} of 0..{backbone.num_blocks - 1} (model.layers selects {listed})"
        if backbone.layers
        else f"block {blocks[-1]} (the last of {backbone.num_blocks}, after the final norm; set model.layers to change)"
    )


def check_model(cfg: DictConfig) -> CheckResult:
    result = CheckResult(str(cfg.get("name")))
    try:
        meta = build_on_meta(cfg)
        if cfg.get("layers") is not None:
            meta.layers = list(cfg.layers)
            meta.selected_blocks(meta.num_blocks)
    except DenseBenchError as exc:
        result.problems.append(str(exc))
        return result
    f = result.facts
    f.update(
        family=str(cfg.family),
        params=meta.num_params(),
        patch_size=meta.patch_size,
        embed_dim=meta.embed_dim,
        prefix_tokens=meta.num_prefix_tokens,
        blocks=meta.num_blocks,
        mean=list(meta.mean),
        std=list(meta.std),
        decoder=decoder_layers(meta),
        origin=meta.origin_record(),
    )
    try:
        local = locate_local(cfg) if cfg.get("pretrained", False) else None
        f["weights"] = (
            (f"{local[0]}: {local[1]}" if local else "not found locally (densebench doctor says where to get them)")
            if cfg.get("pretrained", False)
            else "random init (pretrained=false)"
        )
    except DenseBenchError as exc:
        result.problems.append(str(exc))
    result.problems += forward_problems(cfg, result)
    for adapter in LOW_RANK:
        try:
            f[adapter] = low_rank_targets(meta, adapter)
        except DenseBenchError as exc:
            result.problems.append(f"{adapter}: {exc}")
    return result


def forward_problems(cfg: DictConfig, result: CheckResult) -> list[str]:
    """A real forward with random weights on a non-square input that needs padding: (B, D, ceil(H/p), ceil(W/p))."""
    random = OmegaConf.merge(cfg, {"pretrained": False, "weights": None})
    assert isinstance(random, DictConfig)
    try:
        backbone = build_backbone(random).eval()
    except DenseBenchError as exc:
        return [str(exc)]
    p = backbone.patch_size
    fixed = cfg.get("fixed_input_size")
    h, w = (int(fixed), int(fixed)) if fixed else (2 * p + p // 2 + 1, 3 * p + 1)
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        try:
            maps = backbone(x)
        except Exception as exc:  # noqa: BLE001 - the module's own error: shown as one line with where it came from
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [f"model.family={cfg.family}: forward on a {h}x{w} image failed ({type(exc).__name__}: {text})"]
    want = (backbone.embed_dim, math.ceil(h / p), math.ceil(w / p))
    result.facts["forward"] = f"{h}x{w} image -> {len(maps)} map(s) of {tuple(maps[-1].shape[1:])}"
    problems = []
    if tuple(maps[-1].shape[1:]) != want:
        problems.append(
            f"model.family={cfg.family}: a {h}x{w} image gave a {tuple(maps[-1].shape[1:])} map, not {want}"
        )
    if not torch.isfinite(maps[-1]).all():
        problems.append(f"model.family={cfg.family}: the forward on random weights gave NaN or inf tokens")
    if not problems:
        problems += lora_effect_problems(backbone, x, maps[-1])
    return problems


def lora_effect_problems(backbone: Backbone, x: torch.Tensor, before: torch.Tensor) -> list[str]:
    """LoRA injected with nonzero B must change the output; otherwise its Linears never run (e.g. inside
    nn.MultiheadAttention, which reads `out_proj.weight` directly) and LoRA would silently train nothing."""
    from densebench.adapters import build_adapter

    cfg = _adapter_cfg("lora")
    try:
        adapter = build_adapter(backbone, cfg)
    except DenseBenchError:
        return []  # reported by low_rank_targets
    with torch.no_grad():
        for name, p in adapter.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(std=1.0)
        after = adapter.backbone(x)[-1]
    if torch.equal(after, before):
        return [
            f"lora: the Linear layers of target set '{cfg.target_set}' never change the output (they are not "
            f"called in the forward, e.g. inside nn.MultiheadAttention): LoRA would train nothing; "
            f"{backbone.lora_fix(str(cfg.target_set))}"
        ]
    return []


def render(result: CheckResult) -> list[str]:
    """The check as printable lines: facts first, then one `problem:` line each."""
    f = result.facts
    lines = [f"model {result.name}"]
    if f:
        origin = ", ".join(f"{k}={v}" for k, v in f["origin"].items() if v and not k.endswith("sha256"))
        lines += [
            f"  family         {f['family']}" + (f" ({origin})" if origin else ""),
            f"  parameters     {f['params']:,}",
            f"  patch size     {f['patch_size']}",
            f"  width          {f['embed_dim']}",
            f"  prefix tokens  {f['prefix_tokens']}",
            f"  blocks         {f['blocks']}",
            f"  normalisation  mean {f['mean']} std {f['std']}",
            f"  decoder takes  {f['decoder']}",
            f"  weights        {f.get('weights', '-')}",
        ]
        if "forward" in f:
            lines.append(f"  forward        {f['forward']}")
        for adapter in LOW_RANK:
            t = f.get(adapter)
            if t:
                lines.append(
                    f"  {adapter:<14} target_set {t['target_set']}: {t['per_block']} Linear per block x "
                    f"{t['blocks']} blocks = {t['modules']} ({', '.join(t['names_in_block'])})"
                )
    lines += [f"  problem: {p}" for p in result.problems]
    lines.append(
        "  ok: works with frozen, lora, dora, cnn, transformer and full"
        if not result.problems
        else f"  {len(result.problems)} problem(s)"
    )
    return lines


def check_main(selection: list[str], as_json: bool) -> int:
    """`--check`: one block per model, a `problem:` line per problem; exit 1 if any model has one."""
    names, overrides = model_selection(selection, "densebench models --check")
    if not names:
        raise ConfigError("densebench models --check: name the model, e.g. --check model=my_model")
    results = [check_model(load_model_config(n, overrides)) for n in names]
    if as_json:
        print(
            json.dumps(
                [{"name": r.name, "facts": r.facts, "problems": r.problems} for r in results], indent=2, default=str
            )
        )
    else:
        for result in results:
            print("\n".join(render(result)))
    return 1 if any(r.problems for r in results) else 0


def models_main(argv: list[str]) -> int:
    """`densebench models`: the catalogue (backbones/cli.py); `--check` is answered here, beside the adapters."""
    return catalogue(argv, check=check_main)
