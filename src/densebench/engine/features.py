"""Reuse of frozen-backbone features: compute a window's backbone output once, not every epoch.

With a frozen backbone (the `frozen`, `cnn` and `transformer` strategies) the backbone maps a given
input to the same output every time, so validation windows — identical every epoch — need the
backbone only once per run; afterwards each validation is decoder-only (plus the trainable CNN
branch or adapter blocks, which still run). The adapter asks `FeatureMemo` for the backbone output of
its batch; the memo answers from its store when the batch's keys are known and computes otherwise.

Exactness: an evaluation call is stored whole or not at all, so a later epoch either reuses every
window of a call (the very tensors the backbone returned, in its own dtype) or recomputes the call
with the same batch as before: the metrics equal the uncached ones bit for bit. Each entry also keeps
a hash of the input it was computed from; a different input under the same key is recomputed, never
answered from the store.

Stores: `memory` (this process, up to `max_gb`; later windows are simply recomputed) or `disk`
(`<run_dir>/features/<key>/`, one safetensors file per image, reused by a resumed run). The disk key
hashes the backbone's weights, the input size, the evaluation settings, the precision, the training
views' settings and the data's fingerprint; directories with any other key are removed when a run
opens its store, so a changed setting can never read stale features.

Training views (`train.feature_cache=views:K`, a protocol change): each training image gets K fixed
augmented views (view v is the augmentation the uncached protocol draws in epoch v), the epoch shows
every image in one of them (each view once every K epochs, at a per-image phase), and the backbone
output of a view is computed the first time it is shown.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save
from torch import Tensor

from densebench.data.cache import config_digest, fingerprint
from densebench.data.dataset import SegmentationDataset
from densebench.errors import ConfigError
from densebench.files import write_atomic

Key = tuple[Any, ...]


def parse_views(value: Any) -> int | None:
    """`train.feature_cache`: null/off → None; `views:K` → K (K ≥ 1)."""
    if value in (None, False, "off", "none", "null"):
        return None
    match = re.fullmatch(r"views:(\d+)", str(value).strip())
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"train.feature_cache={value}: use null (off) or views:K with K >= 1, e.g. views:4")
    return int(match.group(1))


def input_digest(x: Tensor) -> bytes:
    """Hash of one input (the guard against answering a different input from the store)."""
    return hashlib.blake2b(x.detach().contiguous().cpu().numpy().tobytes(), digest_size=16).digest()


def weights_digest(module: torch.nn.Module) -> str:
    """Hash of every parameter and buffer (names, shapes, dtypes, values) of a module."""
    h = hashlib.sha256()
    for name, t in sorted({**dict(module.named_parameters()), **dict(module.named_buffers())}.items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}\0{tuple(t.shape)}\0{t.dtype}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def data_digest(source: Any, splits: dict[str, list]) -> str:
    """Fingerprint of every sample of every split (decode config, keys, file path/size/mtime)."""
    digest = config_digest(source)
    return hashlib.sha256(
        json.dumps({k: [fingerprint(s, digest) for s in v] for k, v in sorted(splits.items())}).encode()
    ).hexdigest()


class FeatureMemo:
    """Backbone outputs keyed by (group, index) — group = (split, sample key) for evaluation windows,
    numbered in the order the predictor runs them, or ("train", sample key, view) for training views."""

    def __init__(
        self,
        store: str = "memory",
        max_gb: float = 4.0,
        root: Path | None = None,
        evaluation: bool = True,
        views: int | None = None,
    ) -> None:
        if store not in ("memory", "disk"):
            raise ConfigError(f"eval.feature_cache.store={store}: use memory, disk or off")
        if store == "disk" and root is None:
            raise ValueError("a disk store needs its directory")
        self.store, self.root = store, root
        self.evaluation, self.views = evaluation, views  # what the engine reuses: eval windows, training views
        self.max_bytes = int(float(max_gb) * 2**30)
        self.groups: dict[tuple, dict[int, tuple[bytes, Tensor]]] = {}
        self._dirty: set[tuple] = set()
        self.bytes = 0
        self.hits = self.misses = self.recomputed = 0
        self._group: tuple | None = None  # evaluation: the image being predicted
        self._next = 0
        self._keys: list[Key] | None = None  # training: this batch's (group, index) keys

    # ----- scopes: which keys the next backbone calls belong to --------------------------------
    @contextmanager
    def image(self, split: str, sample_key: str) -> Iterator[None]:
        """Backbone calls inside belong to this image's windows, numbered in call order."""
        self._group, self._next = (split, sample_key), 0
        try:
            yield
        finally:
            group, self._group = self._group, None
            self._release(group)

    @contextmanager
    def views_of(self, keys: list[tuple]) -> Iterator[None]:
        """The next backbone call is this batch of training views, one group per sample."""
        self._keys = [(k, 0) for k in keys]
        try:
            yield
        finally:
            self._keys = None
            for group in keys:
                self._release(group)

    # ----- the adapter's entry point -----------------------------------------------------------
    def __call__(self, x: Tensor, compute: Callable[[Tensor], Tensor]) -> Tensor:
        """`compute(x)`, or the stored outputs of the batch's keys where the same input was seen."""
        keys = self._take(len(x))
        if keys is None:
            return compute(x)
        digests = [input_digest(s) for s in x]
        found = [self._get(k, d) for k, d in zip(keys, digests)]
        missing = [i for i, f in enumerate(found) if f is None]
        self.hits += len(x) - len(missing)
        self.misses += len(missing)
        if not missing:
            return torch.stack(found).to(x.device)  # type: ignore[arg-type]
        out = compute(x if len(missing) == len(x) else x[missing]).detach().clone()
        size = out.element_size() * out.numel()
        if self.bytes + size <= self.max_bytes or self.store == "disk":  # a call is stored whole or not at all
            for j, i in enumerate(missing):
                self._put(keys[i], digests[i], out[j])
        if len(missing) == len(x):
            return out
        for j, i in enumerate(missing):
            found[i] = out[j].cpu()
        return torch.stack(found).to(x.device)  # type: ignore[arg-type]

    def _take(self, n: int) -> list[Key] | None:
        if self._keys is not None:
            keys, self._keys = self._keys, None
            if len(keys) != n:
                raise RuntimeError(f"feature memo: {len(keys)} view keys for a batch of {n}")
            return keys
        if self._group is None:
            return None
        start, self._next = self._next, self._next + n
        return [(self._group, i) for i in range(start, start + n)]

    def _get(self, key: Key, digest: bytes) -> Tensor | None:
        group, index = key
        entries = self._load(group)
        entry = entries.get(index)
        if entry is None:
            return None
        if entry[0] != digest:  # same key, different input: never answer it from the store
            self.recomputed += 1
            del entries[index]
            return None
        return entry[1]

    def _put(self, key: Key, digest: bytes, value: Tensor) -> None:
        group, index = key
        entries = self._load(group)
        entries[index] = (digest, value.cpu())  # host memory: the device keeps its room for training
        self.bytes += value.element_size() * value.numel()
        self._dirty.add(group)

    # ----- backing store -----------------------------------------------------------------------
    def _path(self, group: tuple) -> Path:
        assert self.root is not None
        name = hashlib.sha1(json.dumps(list(group)).encode()).hexdigest()[:20]
        return self.root / str(group[0]) / f"{name}.safetensors"

    def _load(self, group: tuple) -> dict[int, tuple[bytes, Tensor]]:
        if group in self.groups:
            return self.groups[group]
        entries: dict[int, tuple[bytes, Tensor]] = {}
        if self.store == "disk":
            path = self._path(group)
            if path.is_file():
                tensors = load_file(str(path))
                for name, t in tensors.items():
                    if name.startswith("t"):
                        entries[int(name[1:])] = (tensors["d" + name[1:]].numpy().tobytes(), t)
                        self.bytes += t.element_size() * t.numel()
        self.groups[group] = entries
        return entries

    def _release(self, group: tuple | None) -> None:
        """End of an image / view: write it if new (disk) and drop it from memory (disk only)."""
        if group is None or self.store != "disk":
            return
        entries = self.groups.pop(group, {})
        if group in self._dirty:
            self._dirty.discard(group)
            tensors = {}
            for index, (digest, t) in entries.items():
                tensors[f"t{index}"] = t.contiguous()
                tensors[f"d{index}"] = torch.from_numpy(np.frombuffer(digest, dtype=np.uint8).copy())
            write_atomic(self._path(group), save(tensors), durable=False)
        self.bytes -= sum(t.element_size() * t.numel() for _, t in entries.values())

    def stats(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "hits": self.hits,
            "misses": self.misses,
            "recomputed": self.recomputed,
            "stored_mb": self.bytes / 2**20 if self.store == "memory" else None,
        }


def open_memo(
    cfg: DictConfig, run_dir: Path, model: Any, data: Any, input_size: int, precision: str
) -> FeatureMemo | None:
    """The run's memo, attached to its adapter, or None (off, or a strategy whose backbone trains)."""
    settings = cfg.eval.get("feature_cache") or {}
    store = str(settings.get("store", "off"))
    views = parse_views(cfg.train.get("feature_cache"))
    adapter = model.adapter
    if store == "off" and views is None:
        return None
    if not getattr(adapter, "reuses_features", False):
        if views is not None:
            raise ConfigError(
                f"train.feature_cache={cfg.train.feature_cache}: adapter '{cfg.adapter.name}' trains "
                "its backbone, so its features cannot be reused; use a frozen, cnn or transformer adapter"
            )
        return None
    root = None
    if store == "disk":
        key = {
            "weights": weights_digest(adapter.backbone),
            "adapter": cfg.adapter.name,
            "input_size": input_size,
            "precision": precision,
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "eval": {
                k: OmegaConf.to_container(cfg.eval[k], resolve=True)
                if OmegaConf.is_config(cfg.eval[k])
                else cfg.eval[k]
                for k in ("mode", "overlap", "window_batch", "blend")
            },
            "views": views,
            "augment": cfg.train.augment,
            "seed": int(cfg.seed),
            "data": data_digest(data.source, data.splits),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        base = run_dir / "features"
        for old in base.glob("*") if base.is_dir() else []:
            if old.name != digest:  # another backbone, size, setting or data: never read again
                shutil.rmtree(old, ignore_errors=True)
        root = base / digest
        root.mkdir(parents=True, exist_ok=True)
        (root / "key.json").write_text(json.dumps(key, indent=2, sort_keys=True, default=str))
    memo = FeatureMemo(
        store if store != "off" else "memory",
        float(settings.get("max_gb", 4.0)),
        root,
        evaluation=store != "off",
        views=views,
    )
    adapter.memo = memo
    return memo


def view_of(seed: int, epoch: int, index: int, views: int) -> int:
    """The view an image shows in an epoch: each of the K views once every K epochs, phase per image."""
    phase = int(np.random.SeedSequence([seed, index, 0x5EED]).generate_state(1)[0]) % views
    return (epoch + phase) % views


class ViewDataset(SegmentationDataset):
    """Training items drawn from K fixed augmented views; view v is the uncached protocol's epoch-v draw."""

    views: int = 1

    @classmethod
    def of(cls, dataset: SegmentationDataset, views: int) -> "ViewDataset":
        out = cls(dataset.samples, dataset.load, dataset.transform, dataset.seed)
        out.views = views
        return out

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        epoch, view = self.epoch, view_of(self.seed, self.epoch, index, self.views)
        self.epoch = view
        try:
            item = super().__getitem__(index)
        finally:
            self.epoch = epoch
        item["view"] = view
        return item


def feature_cache_block(memo: FeatureMemo | None) -> dict[str, Any]:
    """metrics.json `feature_cache`: what was reused, and whether the training protocol changed
    (`train_views` set: K fixed augmented views per image instead of a fresh augmentation per epoch)."""
    if memo is None:
        return {"eval": "off", "train_views": None, "protocol_changed": False}
    return {
        "eval": memo.store if memo.evaluation else "off",
        "train_views": memo.views,
        "protocol_changed": memo.views is not None,
        **memo.stats(),
    }
