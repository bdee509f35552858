"""Find and read a backbone's weights without ever unpickling arbitrary objects.

Precedence: `model.weights=PATH` (a file or a Hugging Face style folder), then the Hugging Face
cache (works offline), then the hub with a token from the environment. The token is never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from densebench.errors import WeightsError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".torch", ".ckpt")
# Wrappers some releases put around the flat state dict.
WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "state_dict_ema", "model_ema")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint file: safetensors directly, anything else with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; point model.weights at an existing file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the safe unpickler refuses arbitrary objects
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"refusing to load {path}: it is not a plain tensor checkpoint ({first}); "
            "convert it to safetensors or a state dict of tensors"
        ) from None
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    """Peel known wrapper dicts and DataParallel/compile prefixes off a loaded checkpoint."""
    while isinstance(obj, dict) and not any(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    out = {}
    for key, value in obj.items():
        for prefix in ("module.", "_orig_mod."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def find_in_folder(folder: Path, filenames: list[str]) -> Path | None:
    """Pick the weights file of a Hugging Face style folder (preferring the configured names, then safetensors)."""
    for name in filenames:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    candidates.sort(key=lambda p: p.suffix != ".safetensors")
    return candidates[0] if candidates else None


def hub_filenames(cfg: DictConfig) -> list[str]:
    hub = cfg.get("hub") or {}
    names = list(hub.get("filenames") or [])
    return names or ["model.safetensors", "pytorch_model.bin"]


def resolve_weights(cfg: DictConfig) -> Path:
    """Return a local weights file for `cfg` (a model config), downloading only as a last resort."""
    name = cfg.name
    hub = cfg.get("hub") or {}
    repo_id = hub.get("repo_id")
    how_to = (
        f"download it (see https://huggingface.co/{repo_id}) and pass model.weights=PATH"
        if repo_id
        else "pass model.weights=PATH"
    )
    if cfg.get("weights"):
        path = Path(str(cfg.weights)).expanduser()
        if path.is_dir():
            found = find_in_folder(path, hub_filenames(cfg))
            if found is None:
                raise WeightsError(f"model '{name}': no weights file ({', '.join(WEIGHT_SUFFIXES)}) in {path}")
            return found
        if not path.is_file():
            raise WeightsError(f"model '{name}': model.weights={path} does not exist; {how_to}")
        return path
    if not repo_id:
        raise WeightsError(f"model '{name}' has no hub repository; {how_to} or model.pretrained=false")
    cached = hub_cache_lookup(repo_id, hub_filenames(cfg), hub.get("revision"))
    if cached is not None:
        return cached
    return hub_download(name, repo_id, hub_filenames(cfg), hub.get("revision"), how_to)


def hub_cache_lookup(repo_id: str, filenames: list[str], revision: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(found, str):
            return Path(found)
    return None


def hub_download(name: str, repo_id: str, filenames: list[str], revision: str | None, how_to: str) -> Path:
    """Download from the hub; every failure becomes one message saying where we looked and what to do."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise WeightsError(
            f"model '{name}': weights not in the Hugging Face cache for {repo_id} and HF_HUB_OFFLINE is set; {how_to}"
        )
    last: Exception | None = None
    for filename in filenames:
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision))
        except GatedRepoError:
            raise WeightsError(
                f"model '{name}': {repo_id} is gated and this token has no access; request access at "
                f"https://huggingface.co/{repo_id}, set HF_TOKEN, or pass model.weights=PATH"
            ) from None
        except RepositoryNotFoundError:
            raise WeightsError(
                f"model '{name}': hub repository {repo_id} not found or not visible with this token; {how_to}"
            ) from None
        except Exception as exc:  # missing file, no network: try the next candidate name
            last = exc
    reason = type(last).__name__ if last else "not found"
    raise WeightsError(
        f"model '{name}': could not get weights from the hub ({repo_id}: {reason}); "
        f"looked in model.weights, the Hugging Face cache and the hub; {how_to}"
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
