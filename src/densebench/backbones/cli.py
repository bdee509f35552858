"""`densebench models` (what each backbone is) and `densebench doctor` (where its weights are).

Neither command downloads weights: sizes come from building each architecture on the meta
device, and the hub is asked for file metadata only, after one quick reachability probe so a
machine without network gets an honest answer in seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import argparse
import json
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from densebench.backbones.catalog import describe, load_model_config, model_names
from densebench.backbones.weights import (
    HUB_TIMEOUT_S,
    hub_cache_lookup,
    hub_unavailable_reason,
    model_page,
    probe_hub,
    token_state,
    weights_override,
)
from densebench.errors import ConfigError, DenseBenchError, WeightsError, print_error


def wide_console() -> Console:
    """Rich picks 80 columns when piped; these tables need more to stay readable in logs."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def human_count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def ordered_names() -> list[str]:
    """Pathology foundation models first (they have a published key), then demo configs."""
    configs = {name: load_model_config(name) for name in model_names()}
    return sorted(configs, key=lambda n: (configs[n].get("published_key") is None, n))


def model_selection(items: list[str], prog: str) -> tuple[list[str], list[str]]:
    """`model=A,B` and `model.key=value` arguments → (model names, overrides relative to `model.`)."""
    names: list[str] = []
    overrides: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{prog}: '{item}' is not key=value; use model=NAME or model.weights=PATH")
        if key == "model":
            names += [n for n in value.split(",") if n]
        elif key.startswith("model."):
            overrides.append(f"{key[len('model.') :]}={value}")
        else:
            raise ConfigError(f"{prog}: unknown option '{key}'; use model=NAME or model.weights=PATH")
    if overrides and len(names) != 1:
        raise ConfigError(f"{prog}: model.<key>=... overrides need exactly one model=NAME")
    return names, overrides


def models_main(argv: list[str], check: Callable[[list[str], bool], int] | None = None) -> int:
    """The catalogue table; with `--check`, `check` (adapters/check.py: it needs the adapters) checks models."""
    parser = argparse.ArgumentParser(
        prog="densebench models", description="List the backbones: sizes from a weightless full-size build."
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check models before training: build, a real forward on a non-square input, LoRA/DoRA "
        "targets per block; one line per problem naming the config key",
    )
    parser.add_argument(
        "selection",
        nargs="*",
        metavar="model=NAME[,NAME]",
        help="with --check: the model(s) to check, plus model.<key>=value overrides for one",
    )
    args = parser.parse_args(argv)
    if args.check:
        if check is None:
            raise ConfigError("densebench models --check runs through `densebench models` (adapters/check.py)")
        return check(args.selection, args.json)
    if args.selection:
        raise ConfigError("densebench models: model=... selects models for --check; add --check")
    rows, broken = [], []
    for name in ordered_names():
        try:
            rows.append(describe(load_model_config(name)))
        except DenseBenchError as exc:  # one user model that does not build must not hide the others
            broken.append(f"model {name} does not build: {exc} (densebench models --check model={name})")
    for line in broken:
        print_error(DenseBenchError(line))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    pfms = sum(r["published_key"] is not None for r in rows)
    table = Table(title=f"{pfms} pathology foundation models, {len(rows) - pfms} demo")
    for column in (
        "name",
        "display name",
        "family",
        "params",
        "dim",
        "patch",
        "prefix",
        "input",
        "licence",
        "gated",
        "weights found",
    ):
        table.add_column(column, justify="right" if column in ("params", "dim", "patch", "prefix", "input") else "left")
    for r in rows:
        size = f"{r['fixed_input_size']} (fixed)" if r["fixed_input_size"] else str(r["default_input_size"])
        where = f"{r['weights_local']['where']}: {r['weights_local']['path']}" if r["weights_local"] else "-"
        table.add_row(
            r["name"],
            r["display_name"],
            r["family"],
            human_count(r["params"]),
            str(r["embed_dim"]),
            str(r["patch_size"]),
            str(r["prefix_tokens"]),
            size,
            r["licence"] or "-",
            "yes" if r["gated"] else "no",
            where,
        )
    wide_console().print(table)
    return 0


def parse_doctor_args(argv: list[str]) -> tuple[argparse.Namespace, list[DictConfig]]:
    parser = argparse.ArgumentParser(
        prog="densebench doctor",
        description="Check where each backbone's weights are: model.weights, the Hugging Face cache, the hub.",
    )
    parser.add_argument(
        "selection",
        nargs="*",
        metavar="model=NAME[,NAME]",
        help="models to check (default: all); model.weights=PATH checks a local copy of one model",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-hub", action="store_true", help="do not contact the hub")
    parser.add_argument("--timeout", type=float, default=HUB_TIMEOUT_S, help="seconds to wait for the hub")
    args = parser.parse_args(argv)
    names, overrides = model_selection(args.selection, "doctor")
    return args, [load_model_config(n, overrides) for n in (names or ordered_names())]


def check_model(cfg: DictConfig, hub_reason: str | None, timeout: float) -> dict[str, Any]:
    """One model's weights: the local override, the HF cache, the hub; and what that means for a run."""
    row: dict[str, Any] = {"name": cfg.name, "gated": bool(cfg.gated), "page": model_page(cfg)}
    try:
        override = weights_override(cfg)
        row["model.weights"] = str(override) if override else "not set"
    except WeightsError as exc:
        override, row["model.weights"] = None, f"error: {str(exc).split(';')[0]}"
    cached = hub_cache_lookup(cfg)
    row["hf_cache"] = str(cached) if cached else "not cached"
    if not (cfg.get("hub") or {}).get("repo_id"):
        hub_ok, row["hub"] = False, "no hub repository"
    elif hub_reason is not None:
        hub_ok, row["hub"] = False, hub_reason
    else:
        status = probe_hub(cfg, timeout)
        hub_ok, row["hub"] = status.ok, ("downloadable: " if status.ok else "") + status.detail
    if override or cached:
        row["status"] = "ready (local)"
    elif hub_ok:
        row["status"] = "downloadable"
    elif not cfg.pretrained:
        row["status"] = "random init (pretrained=false)"
    else:
        row["status"] = "missing"
    return row


def doctor_main(argv: list[str]) -> int:
    args, configs = parse_doctor_args(argv)
    needs_hub = not args.no_hub and any((c.get("hub") or {}).get("repo_id") for c in configs)
    hub_reason = None
    if args.no_hub:
        hub_reason = "not checked (--no-hub)"
    elif needs_hub:
        hub_reason = hub_unavailable_reason(args.timeout)
    rows = [check_model(cfg, hub_reason, args.timeout) for cfg in configs]
    if args.json:
        print(json.dumps({"hf_token": token_state(), "models": rows}, indent=2))
        return 0
    table = Table(title=f"backbone weights (Hugging Face token: {token_state()})")
    for column in ("name", "status", "model.weights", "HF cache", "hub"):
        table.add_column(column, overflow="fold")
    style = {"ready (local)": "green", "downloadable": "cyan", "missing": "red"}
    for r in rows:
        status = f"[{style.get(r['status'], 'yellow')}]{r['status']}[/]"
        table.add_row(r["name"], status, r["model.weights"], r["hf_cache"], r["hub"])
    console = wide_console()
    console.print(table, highlight=False)
    missing = [r for r in rows if r["status"] == "missing"]
    if missing:
        console.print(
            f"{len(missing)} without weights: request access / download from each model's page "
            "(e.g. " + ", ".join(f"{r['name']}: {r['page']}" for r in missing[:2]) + "), then pass "
            "model.weights=PATH or put the files in the Hugging Face cache.",
            highlight=False,
        )
    return 0
