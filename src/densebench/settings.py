"""Typed, validated settings: every value of the top level and of the train, eval, runtime and adapter
groups is checked once, where the config enters (`config.compose`, each `densebench run` and each
multirun cell), before a model is built or a file decoded.

The YAML files stay the only place defaults live: a rule names a key's type and range, never its
value, and a key the config does not hold is not checked (a group may leave it out). A bad value is
one `ConfigError` line naming the key, the value and what is allowed, e.g.
`eval.overlap=1.0 is out of range: must be a number in [0, 1)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from densebench.errors import ConfigError

_MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class Rule:
    """What one key accepts: `allowed` is the text the error shows (a function where it reads a module's
    own list, evaluated only when needed), `accepts` the test, `kind` how a rejected value is named."""

    allowed: str | Callable[[], str]
    accepts: Callable[[Any], bool]
    kind: str = "is not valid"

    def check(self, key: str, value: Any) -> None:
        if not self.accepts(value):
            allowed = self.allowed() if callable(self.allowed) else self.allowed
            raise ConfigError(f"{key}={_show(value)} {self.kind}: must be {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)  # NaN is no number here


def integer(low: int | None = None, optional: bool = False) -> Rule:
    text = "an integer" + (f" >= {low}" if low is not None else "") + (" or null" if optional else "")
    return Rule(text, lambda v: (optional and v is None) or (_is_int(v) and (low is None or v >= low)))


def number(
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> Rule:
    """A real number in the interval the bounds give (open or closed at each end)."""
    if low is not None and high is not None:
        text = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        text = "a number"
    text += " or null" if optional else ""

    def accepts(v: Any) -> bool:
        if optional and v is None:
            return True
        if not _is_number(v):
            return False
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    return Rule(text, accepts)


def choice(values: Sequence[Any] | Callable[[], Sequence[Any]]) -> Rule:
    """One of a fixed set (of the same type: `1` is not `true`); `values` may be a function so a module's
    own list is imported only when a config is checked."""

    def known() -> list[Any]:
        return list(values() if callable(values) else values)

    def accepts(v: Any) -> bool:
        return not isinstance(v, (DictConfig, ListConfig)) and any(v == o and type(v) is type(o) for o in known())

    return Rule(lambda: "one of " + ", ".join(map(_show, known())), accepts, "is not known")


FLAG = Rule("true or false", lambda v: isinstance(v, bool))


def _pair_of_betas(v: Any) -> bool:
    return isinstance(v, ListConfig) and len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v)


def _depths(v: Any) -> bool:
    return isinstance(v, ListConfig) and len(v) == 2 and all(_is_int(d) and d >= 1 for d in v)


def _width_factor(v: Any) -> bool:
    return _is_number(v) and v > 0 and float(64 * v).is_integer() and int(64 * v) % 32 == 0


def _losses() -> tuple[str, ...]:
    return ("dice", "ce", "dice_ce")  # engine/optim.py build_loss


def _optimizers() -> tuple[str, ...]:
    return ("adam", "adamw")  # engine/optim.py build_optimizer


def _augment_presets() -> list[str]:
    from densebench.data.transforms import PRESETS

    return list(PRESETS)


def _precisions() -> list[str]:
    from densebench.engine.setup import PRECISIONS

    return ["auto", *PRECISIONS]


def _metric_keys() -> tuple[str, ...]:
    from densebench.metrics import METRIC_KEYS

    return METRIC_KEYS


def _cpu_linear() -> tuple[str, ...]:
    from densebench.fastpath import CPU_LINEAR

    return CPU_LINEAR


# dotted key -> rule. Only keys the composed config holds are checked (a group may leave one out).
RULES: dict[str, Rule] = {
    "seed": integer(0),
    "input_size": integer(1, optional=True),
    "input_size_target": integer(1, optional=True),
    "force": FLAG,
    "progress": choice(("auto", "rich", "plain", "none")),
    "train.epochs": integer(1),
    "train.batch_size": integer(1),
    "train.accumulate": integer(1),
    "train.loss": choice(_losses),
    "train.optimizer": choice(_optimizers),
    "train.lr": number(0, low_open=True),
    "train.weight_decay": number(0),
    "train.betas": Rule("two numbers in [0, 1), e.g. [0.9,0.999]", _pair_of_betas),
    "train.warmup_epochs": integer(0),
    "train.min_lr": number(0),
    "train.clip_grad": number(0, low_open=True),
    "train.augment": choice(_augment_presets),
    "train.precision": choice(_precisions),
    "train.num_workers": integer(0),
    "train.worker_start": choice(("forkserver", "fork", "spawn")),
    "train.select_metric": choice(_metric_keys),
    "train.val_every": integer(1),
    "eval.mode": choice(("slide", "resize")),
    "eval.overlap": number(0, 1, high_open=True),
    "eval.window_batch": integer(0),
    "eval.blend": choice(("gaussian", "uniform")),
    "eval.bootstrap.n": integer(1),
    "eval.bootstrap.ci": number(0, 1, low_open=True, high_open=True),
    "eval.bootstrap.seed": integer(0),
    "eval.gallery.n": integer(0),
    "eval.gallery.seed": integer(0),
    "eval.gallery.side": integer(1),
    "eval.instance.enabled": FLAG,
    "eval.instance.method": choice(("components", "watershed")),
    "eval.instance.per_class": FLAG,
    "eval.instance.connectivity": choice((4, 8)),
    "eval.instance.min_size": integer(0),
    "eval.instance.watershed_h": number(0),
    "eval.instance.match_iou": number(0.5, 1, high_open=True),
    "eval.instance.detection_radius": number(0, low_open=True),
    "eval.instance.hausdorff": FLAG,
    "runtime.cpu_linear": choice(_cpu_linear),
    "runtime.channels_last": FLAG,
    # adapter groups: each key is checked where the chosen adapter has it
    "adapter.grad_checkpointing": choice((True, False, "auto")),
    "adapter.checkpoint_min_tokens": integer(0),
    "adapter.rank": integer(1),
    "adapter.alpha": number(0, low_open=True, optional=True),
    "adapter.dropout": number(0, 1, high_open=True),
    "adapter.use_dora": FLAG,
    "adapter.width_factor": Rule(
        "a number > 0 with 64 x width_factor a multiple of 32 (0.5, 1, 1.5, 2, ...)", _width_factor
    ),
    "adapter.depths": Rule("two integers >= 1, e.g. [3,4]", _depths),
    "adapter.depth": integer(1),
    "adapter.num_heads": integer(1, optional=True),
    "adapter.mlp_ratio": number(0, low_open=True),
    "adapter.init_values": number(0),
    "adapter.drop_path_rate": number(0, 1, high_open=True),
    "adapter.backbone_lr_mult": number(0, low_open=True),
    "adapter.layer_decay": number(0, 1, low_open=True),
}

_CUDA = re.compile(r"cuda(?::(\d+))?")


def check_device(device: Any) -> None:
    """auto | cpu | cuda | cuda:N, and a CUDA device only where one is visible."""
    text = _show(device)
    if text in ("auto", "cpu"):
        return
    match = _CUDA.fullmatch(text) if isinstance(device, str) else None
    if match is None:
        raise ConfigError(f"device={text} is not known; use auto, cpu, cuda or cuda:N")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"device={text} but no CUDA device is available; use device=cpu or device=auto")
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise ConfigError(f"device={text} but only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1})")


def check_precision(precision: Any, device: Any) -> None:
    """fp16 trains only on CUDA (its gradient scaler); bf16 and fp32 run anywhere."""
    if precision != "fp16":
        return
    import torch

    on_cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not on_cuda:
        raise ConfigError("train.precision=fp16 needs a CUDA device; use train.precision=fp32 or bf16 on CPU")


def _value(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{key} cannot be resolved: {first}") from None


def validate(cfg: DictConfig) -> DictConfig:
    """Check every rule against the composed config (in a fixed order: the first bad key is named);
    returns `cfg` unchanged."""
    for key, rule in RULES.items():
        value = _value(cfg, key)
        if value is not _MISSING:
            rule.check(key, value)
    device = _value(cfg, "device")
    if device is not _MISSING:
        check_device(device)
        precision = _value(cfg, "train.precision")
        if precision is not _MISSING:
            check_precision(precision, device)
    return cfg


def check_overrides(argv: list[str]) -> None:
    """Before Hydra starts: overrides that do not parse or name no key of the config are one line here
    (Hydra would print several). A single run is also validated now; in a multirun only the first
    cell is composed (each cell's values are validated when it runs, and a bad one is recorded as its
    failure while the others finish). Command lines with Hydra flags other than -m are left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from densebench.config import compose, hydra_message

    multirun = any(a in ("-m", "--multirun") for a in argv)
    args = [a for a in argv if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in args):
        return
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as exc:
        raise ConfigError(f"cannot parse the overrides {args}: {hydra_message(exc)}; write key=value") from None
    first: list[str] = []
    for override in parsed:
        if override.key_or_group.lstrip("+~").startswith("hydra"):
            continue
        if not override.is_sweep_override():
            first += [override.input_line] if override.input_line else []
            continue
        multirun = True
        try:
            value = next(iter(override.sweep_string_iterator()))
        except (HydraException, StopIteration):  # glob() needs Hydra's config loader: left to Hydra
            continue
        first.append(f"{override.get_key_element()}={value}")
    compose(first, validate=not multirun)
