"""Which data a run saw, and the check that a finished or resumed run is answered only for the same data.

A run's identity (its directory) leaves `dataset.root` out on purpose: the same release moved to another
disk is the same run. So the data is fingerprinted by content, not by place, and compared before a
finished run is returned or an unfinished one resumed; a mismatch is one error naming the run and both
data folders (`force=true` reruns it on the new data). The content fingerprint hashes, per file of every
split, its path relative to the root, its size and three 4 KiB blocks (start, middle, end): cheap on a
large release, and an edited image or mask changes its size or its compressed stream's end (PNG and
zlib end in a checksum of the whole image). Sources without files (the synthetic demo) have none: their
data follows from the config, which the run directory already pins.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from densebench.data.base import Sample
from densebench.errors import ConfigError

BLOCK = 4096


def _file_digest(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for offset in sorted({0, max(size // 2 - BLOCK // 2, 0), max(size - BLOCK, 0)}):
            f.seek(offset)
            h.update(f.read(BLOCK))
    return h.hexdigest()


def files_fingerprint(samples: Iterable[Sample], root: str | Path | None) -> str | None:
    """Content fingerprint of the samples' files (None when they have none)."""
    base = Path(str(root)).expanduser().resolve() if root else None
    h, any_file = hashlib.sha256(), False
    for sample in sorted(samples, key=lambda s: s.key):
        h.update(f"\0{sample.key}".encode())
        for name in sample.paths:
            path = Path(name).resolve()
            size = os.stat(path).st_size
            rel = path.relative_to(base).as_posix() if base and path.is_relative_to(base) else path.name
            h.update(f"\0{rel}\0{size}\0{_file_digest(path, size)}".encode())
            any_file = True
    return h.hexdigest()[:16] if any_file else None


def check_same_data(
    run_dir: Path,
    recorded: dict[str, Any],
    recorded_root: Any,
    current: dict[str, Any],
    current_root: Any,
    finished: bool,
) -> None:
    """Raise unless `current` data facts match the `recorded` ones (keys of every split, file contents)."""
    same = recorded.get("fingerprint") == current.get("fingerprint") and (
        recorded.get("files_fingerprint") is None
        or recorded.get("files_fingerprint") == current.get("files_fingerprint")
    )
    if same:
        return
    what = "finished" if finished else "unfinished"
    where = (
        f"dataset.root={recorded_root}"
        if recorded_root == current_root
        else f"dataset.root={recorded_root}, now dataset.root={current_root}"
    )
    raise ConfigError(
        f"{run_dir} holds a {what} run on other data than this command's ({where}; its files or splits differ); "
        "add force=true to rerun it on this data, or choose another output_dir"
    )


def recorded_root(run_dir: Path) -> Any:
    """The `dataset.root` a finished run recorded in its metrics.json (None if it has none)."""
    from densebench.files import read_json

    try:
        return ((read_json(run_dir / "metrics.json").get("config") or {}).get("dataset") or {}).get("root")
    except (OSError, ValueError, AttributeError):
        return None


def check_or_record(run_dir: Path, facts: dict[str, Any], root: Any, resuming: bool) -> None:
    """At a run's start: a resumed run must see the data it started on (`data.json`); then record it."""
    from densebench.files import read_json, write_json

    path = run_dir / "data.json"
    if resuming and path.is_file():
        previous = read_json(path)
        check_same_data(run_dir, previous, previous.get("root"), facts, root, finished=False)
    write_json(
        path,
        {"fingerprint": facts.get("fingerprint"), "files_fingerprint": facts.get("files_fingerprint"), "root": root},
    )
