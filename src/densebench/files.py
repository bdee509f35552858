"""Atomic file writes shared by run outputs, JSON results and the decoded-data cache."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path, durable: bool = True) -> Iterator[Path]:
    """A temporary path in `path`'s directory to write to (streamed writers, libraries that take a path);
    renamed to `path` when the block ends without error, removed otherwise: readers never see half a file.

    `durable` fsyncs before the rename (run outputs); caches that can be rebuilt skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, name):  # a full disk: name the output, not the temp
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """`data` written through `atomic_path`."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete what `write_atomic` leaves of a write a kill -9 interrupted (`.<name>.<random>.tmp`),
    under `folder`; only for a folder the caller owns (a run directory under its lock)."""
    removed = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON, NaN/inf as null (strict JSON), written atomically."""
    write_atomic(path, (json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
