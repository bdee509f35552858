"""Find and read a backbone's weights without ever unpickling arbitrary objects.

Precedence: `model.weights=PATH` (a file or a Hugging Face style folder), then the Hugging Face
cache (works offline), then the hub with the token huggingface_hub finds (HF_TOKEN or `hf auth
login`). The token itself is never read into a message or a log line here.

Every failure ends in one `WeightsError` line naming the model, where we looked, the model's page
and how to point `model.weights` at a local copy.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

import torch
from omegaconf import DictConfig
from torch import Tensor

from densebench.errors import WeightsError

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".torch", ".ckpt")
# Index files of sharded Hugging Face checkpoints, in order of preference.
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Wrappers some releases put around the flat state dict.
WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "state_dict_ema", "model_ema")
# Seconds to wait for the hub before reporting it unreachable (huggingface_hub itself retries for ~20 s).
HUB_TIMEOUT_S = 4.0


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint: safetensors directly, a shard index shard by shard, anything else with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; point model.weights at an existing file")
    if path.name.endswith(".index.json"):
        return read_sharded(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # truncated download, not a safetensors file
            raise WeightsError(f"cannot read {path} as safetensors ({first_line(exc)}); re-download it") from None
    try:
        with warnings.catch_warnings():  # torch's notes on the pickle protocol would break the one-line error
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the safe unpickler refuses arbitrary objects
        raise WeightsError(
            f"refusing to load {path}: it is not a plain tensor checkpoint ({first_line(exc)}); "
            "convert it to safetensors or a state dict of tensors"
        ) from None
    return unwrap_state_dict(obj, path)


def read_sharded(index: Path) -> dict[str, Tensor]:
    """Merge the shards a Hugging Face `*.index.json` lists (each read by `read_state_dict`)."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (ValueError, KeyError) as exc:
        raise WeightsError(f"{index} is not a shard index with a 'weight_map' ({first_line(exc)})") from None
    state: dict[str, Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        state.update(read_state_dict(index.parent / shard))
    return state


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unwrap_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    """Peel known wrapper dicts and DataParallel/compile prefixes off a loaded checkpoint."""
    while isinstance(obj, dict) and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:5])) if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(
            f"{path} does not hold a state dict of tensors (found: {keys}); "
            f"expected a flat dict or one under {'/'.join(WRAPPER_KEYS)}"
        )
    out = {}
    for key, value in obj.items():
        for prefix in ("module.", "_orig_mod."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def select_checkpoint_keys(state: dict[str, Tensor], cfg: DictConfig) -> dict[str, Tensor]:
    """Keep the part of an original checkpoint the dense path uses, as the model config declares it.

    `checkpoint_prefix` names the sub-module holding the image trunk (e.g. open_clip's
    `visual.trunk.`); it is stripped and keys outside it (text tower, poolers) are left out.
    `checkpoint_ignore` lists regexes of keys inside it that the image path never uses (e.g. MUSK's
    text-branch weights). Nothing else is dropped: whatever remains must match the model exactly.
    """
    prefix = cfg.get("checkpoint_prefix") or ""
    ignore = [re.compile(p) for p in (cfg.get("checkpoint_ignore") or [])]
    kept, outside, ignored = {}, 0, 0
    for key, value in state.items():
        if not key.startswith(prefix):
            outside += 1
            continue
        key = key[len(prefix) :]
        if any(p.fullmatch(key) for p in ignore):
            ignored += 1
            continue
        kept[key] = value
    if prefix and not kept and not ignored:
        raise WeightsError(
            f"model '{cfg.name}': no tensor of the checkpoint is under '{prefix}', where the official release keeps "
            "the image trunk; for a file holding the trunk alone pass model.checkpoint_prefix=null"
        )
    if outside or ignored:
        log.info(
            "model '%s': using %d tensors of the checkpoint; %d outside '%s', %d unused by the image path",
            cfg.name,
            len(kept),
            outside,
            prefix,
            ignored,
        )
    return kept


def find_in_folder(folder: Path, filenames: list[str]) -> Path | None:
    """Pick the weights of a Hugging Face style folder: configured names, shard indexes, then any weights file."""
    for name in [*filenames, *SHARD_INDEXES]:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    candidates.sort(key=lambda p: p.suffix != ".safetensors")
    return candidates[0] if candidates else None


def hub_filenames(cfg: DictConfig) -> list[str]:
    hub = cfg.get("hub") or DictConfig({})
    names = list(hub.get("filenames") or [])
    return names or ["model.safetensors", "pytorch_model.bin"]


def model_page(cfg: DictConfig) -> str | None:
    """Where a user requests access or downloads the weights."""
    if cfg.get("page"):
        return str(cfg.page)
    repo_id = (cfg.get("hub") or {}).get("repo_id")
    return f"https://huggingface.co/{repo_id}" if repo_id else None


def how_to_fix(cfg: DictConfig) -> str:
    page = model_page(cfg)
    src = f" from {page}" if page else ""
    get = f"download the weights{src}"
    if cfg.get("gated"):
        get = f"request access{src.replace(' from', ' at')} (gated repository) and set HF_TOKEN, or {get}"
    return f"{get} and pass model.weights=PATH (a weights file or a folder holding it), or use model.pretrained=false"


def weights_override(cfg: DictConfig) -> Path | None:
    """The file `model.weights` points at (a folder is searched), or an error if it points nowhere."""
    if not cfg.get("weights"):
        return None
    path = Path(str(cfg.weights)).expanduser()
    if path.is_dir():
        found = find_in_folder(path, hub_filenames(cfg))
        if found is None:
            raise WeightsError(
                f"model '{cfg.name}': model.weights={path} is a folder without a weights file "
                f"({', '.join(WEIGHT_SUFFIXES)} or a shard index)"
            )
        return found
    if not path.is_file():
        raise WeightsError(f"model '{cfg.name}': model.weights={path} does not exist; {how_to_fix(cfg)}")
    return path


def hub_cache_lookup(cfg: DictConfig) -> Path | None:
    """The configured file in the local Hugging Face cache, if present (no network)."""
    from huggingface_hub import try_to_load_from_cache

    hub = cfg.get("hub") or DictConfig({})
    if not hub.get("repo_id"):
        return None
    for filename in [*hub_filenames(cfg), *SHARD_INDEXES]:
        found = try_to_load_from_cache(hub.repo_id, filename, revision=hub.get("revision"))
        if isinstance(found, str):
            return Path(found)
    return None


def locate_local(cfg: DictConfig) -> tuple[str, Path] | None:
    """(`model.weights` | `hf-cache`, path) for weights available without the network, else None."""
    path = weights_override(cfg)
    if path is not None:
        return "model.weights", path
    cached = hub_cache_lookup(cfg)
    return ("hf-cache", cached) if cached is not None else None


def resolve_weights(cfg: DictConfig) -> Path:
    """Return a local weights file for `cfg` (a model config), downloading only as a last resort."""
    found = locate_local(cfg)
    if found is not None:
        return found[1]
    hub = cfg.get("hub") or DictConfig({})
    if not hub.get("repo_id"):
        raise WeightsError(f"model '{cfg.name}' has no hub repository and model.weights is not set; {how_to_fix(cfg)}")
    looked = f"looked in model.weights (not set), the Hugging Face cache ({hub.repo_id}: not cached)"
    reason = hub_unavailable_reason()
    if reason is not None:
        raise WeightsError(f"model '{cfg.name}': no weights found; {looked} and the hub ({reason}); {how_to_fix(cfg)}")
    return hub_download(cfg, looked)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")


def hub_unavailable_reason(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the hub cannot be asked (offline mode, no route), or None; decided within `timeout` seconds.

    huggingface_hub retries a failing request for ~20 s per file; one socket probe first keeps
    `doctor` and the no-weights error fast and honest on machines without network.
    """
    if hub_offline():
        return "not asked: HF_HUB_OFFLINE is set"
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    proxy = getproxies().get(url.scheme)
    if proxy and not proxy_bypass(url.hostname or ""):
        url = urlparse(proxy if "://" in proxy else f"http://{proxy}")  # requests go through the proxy
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"unreachable: {host}: {first_line(exc)}")

    thread = threading.Thread(target=probe, daemon=True)  # name resolution itself has no timeout
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"unreachable: no answer from {host} within {timeout:g} s"


def token_state() -> str:
    """Whether huggingface_hub has a token ('set' / 'not set'); never the token."""
    from huggingface_hub import get_token

    return "set" if get_token() else "not set"


def hub_error_reason(exc: Exception) -> str | None:
    """A short reason for a hub failure that settles the question for the whole repository, else None."""
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return f"gated and the token ({token_state()}) has no access"
    if isinstance(exc, RepositoryNotFoundError):
        return f"repository not found or not visible with the token ({token_state()})"
    return None


def hub_download(cfg: DictConfig, looked: str) -> Path:
    """Download the first configured file that exists; every failure becomes one message."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    hub = cfg.hub
    missing: list[str] = []
    for filename in hub_filenames(cfg):
        try:
            return Path(hf_hub_download(hub.repo_id, filename, revision=hub.get("revision")))
        except EntryNotFoundError:
            missing.append(filename)
        except Exception as exc:
            reason = hub_error_reason(exc) or first_line(exc)
            raise WeightsError(
                f"model '{cfg.name}': no weights found; {looked} and the hub ({hub.repo_id}: {reason}); "
                f"{how_to_fix(cfg)}"
            ) from None
    raise WeightsError(
        f"model '{cfg.name}': no weights found; {looked} and the hub ({hub.repo_id} has none of {', '.join(missing)}); "
        f"{how_to_fix(cfg)}"
    )


@dataclass
class HubStatus:
    ok: bool
    detail: str


def probe_hub(cfg: DictConfig, timeout: float = HUB_TIMEOUT_S) -> HubStatus:
    """Whether the configured weights file is downloadable with the current token (metadata only, no download)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import EntryNotFoundError

    hub = cfg.get("hub") or DictConfig({})
    if not hub.get("repo_id"):
        return HubStatus(False, "no hub repository")
    missing = []
    for filename in hub_filenames(cfg):
        url = hf_hub_url(hub.repo_id, filename, revision=hub.get("revision"))
        try:
            meta = get_hf_file_metadata(url, timeout=timeout)
        except EntryNotFoundError:
            missing.append(filename)
            continue
        except Exception as exc:
            return HubStatus(False, hub_error_reason(exc) or first_line(exc))
        size = f", {meta.size / 1e9:.2f} GB" if meta.size else ""
        return HubStatus(True, f"{hub.repo_id}/{filename}{size}")
    return HubStatus(False, f"{hub.repo_id} has none of {', '.join(missing)}")


def check_position_grid(
    cfg: DictConfig, key: str, file_patches: int, model_patches: int, patch: int, option: str
) -> None:
    """Fail with the size to configure when a checkpoint was trained on another square patch grid.

    Anything else (e.g. a file whose positions also cover register tokens) is left to the strict
    load, which names the mismatching shapes.
    """
    side, model_side = math.isqrt(file_patches), math.isqrt(model_patches)
    if file_patches == model_patches or side * side != file_patches:
        return
    raise WeightsError(
        f"model '{cfg.name}': the checkpoint's {key} covers a {side}x{side} patch grid but the model is "
        f"built for {model_side}x{model_side}; pass model.arch.{option}={side * patch} (the size the weights "
        "were trained at; inputs of any size still work)"
    )


def load_strict(module: torch.nn.Module, state_dict: dict[str, Tensor], what: str) -> None:
    """Load every key or fail naming a few missing/unexpected/mis-shaped ones."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        k = shapes[0]
        problems.append(
            f"{len(shapes)} with other shapes (e.g. {k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)})"
        )
    if problems:
        raise WeightsError(f"{what} does not match the architecture: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)
