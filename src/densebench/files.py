"""Atomic file writes shared by run outputs, JSON results and the decoded-data cache."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half a file.

    `durable` fsyncs before the rename (run outputs); caches that can be rebuilt skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk fails f.write(): name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


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
