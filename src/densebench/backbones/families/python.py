"""`python`: the user's own model from `factory: my_package.my_module:build` (a function returning an nn.Module).

The module is adapted, not wrapped by hand: if it has timm's `forward_intermediates` it is used like
a timm ViT; otherwise it must follow DenseBench's small protocol (`forward_tokens(x)` returning one
(B, N, D) tensor per layer, plus `patch_size`, `embed_dim`, `num_prefix_tokens`, `mean`, `std`).
`factory_kwargs` are passed to the factory. The contract and a worked example: docs/your-model.md.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from densebench.backbones import BACKBONES
from densebench.backbones.base import Backbone
from densebench.backbones.families._user import (
    TimmConvention,
    TokensProtocol,
    UserBackbone,
)
from densebench.backbones.weights import first_line
from densebench.errors import ConfigError, DenseBenchError

PROTOCOL = ("patch_size", "embed_dim", "num_prefix_tokens")


def load_factory(spec: Any) -> Callable[..., Any]:
    """`pkg.module:function` → the function, or one line saying what to fix in model.factory."""
    if not spec or not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(f"model.factory={spec!r}: give 'package.module:function' (e.g. my_models.vit:build)")
    module_name, func_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"model.factory={spec}: cannot import {module_name} ({first_line(exc)}); put its folder on PYTHONPATH "
            "or install it, or fix model.factory"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything; shown as one line
        raise ConfigError(
            f"model.factory={spec}: importing {module_name} raised {type(exc).__name__}: {first_line(exc)}"
        ) from None
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise ConfigError(f"model.factory={spec}: {module_name} has no function {func_name}; fix model.factory")
    return factory


def build_factory_model(cfg: DictConfig) -> UserBackbone:
    """Call the factory and adapt what it returns: timm's forward_intermediates, else the small protocol."""
    factory = load_factory(cfg.get("factory"))
    kwargs = OmegaConf.to_container(cfg.factory_kwargs, resolve=True) if cfg.get("factory_kwargs") else {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"model.factory_kwargs must be a mapping of keyword arguments, not {type(kwargs).__name__}")
    try:
        model = factory(**{str(k): v for k, v in kwargs.items()})
    except DenseBenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything; shown as one line
        raise ConfigError(
            f"model.factory={cfg.factory}: the factory raised {type(exc).__name__}: {first_line(exc)}; "
            "fix the factory or model.factory_kwargs"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model.factory={cfg.factory}: the factory returned {type(model).__name__}, not a torch.nn.Module; "
            "return the model itself"
        )
    kind = FactoryTimm if hasattr(model, "forward_intermediates") else FactoryProtocol
    return kind(cfg, model, factory)


class _FactoryMixin:
    origin_key = "model.factory"

    def _record(self, cfg: DictConfig, model: nn.Module, factory: Callable[..., Any]) -> None:
        self._cfg = cfg
        self.model = model
        try:
            source = inspect.getsourcefile(factory)
            digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None
        except (OSError, TypeError):
            source, digest = None, None
        self._origin_record = {"factory": str(cfg.factory), "factory_file": source, "factory_file_sha256": digest}

    def origin_record(self) -> dict[str, Any]:
        return self._origin_record


class FactoryTimm(_FactoryMixin, TimmConvention):
    def __init__(self, cfg: DictConfig, model: nn.Module, factory: Callable[..., Any]) -> None:
        TimmConvention.__init__(self)
        self._record(cfg, model, factory)
        pretrained = getattr(model, "pretrained_cfg", None) or {}
        self._finish(
            cfg,
            self._timm_geometry(),
            getattr(model, "mean", None) or pretrained.get("mean"),
            getattr(model, "std", None) or pretrained.get("std"),
            getattr(model, "lora_targets", None),
        )


class FactoryProtocol(_FactoryMixin, TokensProtocol):
    def __init__(self, cfg: DictConfig, model: nn.Module, factory: Callable[..., Any]) -> None:
        TokensProtocol.__init__(self)
        self._record(cfg, model, factory)
        missing = [a for a in ("forward_tokens", *PROTOCOL) if not hasattr(model, a)]
        if missing:
            raise ConfigError(
                f"model.factory={cfg.factory}: {type(model).__name__} has neither forward_intermediates (timm) nor the "
                f"protocol's {', '.join(missing)}; see docs/your-model.md#the-contract"
            )
        geometry = {a: getattr(model, a) for a in PROTOCOL}
        self._finish(
            cfg,
            geometry,
            getattr(model, "mean", None),
            getattr(model, "std", None),
            getattr(model, "lora_targets", None),
        )


@BACKBONES.register("python")
def build_python(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    if arch:
        raise ConfigError(
            "model.arch is not used by family python; pass the factory's arguments in model.factory_kwargs"
        )
    return build_factory_model(cfg)
