"""Runs trained on cached feature views (a protocol change) are marked in the report's protocol column."""

from __future__ import annotations

import json
from pathlib import Path

from densebench.report.load import load_runs
from densebench.names import Catalog


def test_runs_with_training_views_carry_the_protocol_change_in_their_protocol(tmp_path: Path, write_run) -> None:
    plain = write_run(tmp_path, "glas", "uni", "frozen", 0, 0.8)
    views = write_run(tmp_path, "glas", "uni", "frozen", 1, 0.8)
    doc = json.loads((views / "metrics.json").read_text())
    doc["feature_cache"] = {"eval": "memory", "train_views": 4, "protocol_changed": True}
    (views / "metrics.json").write_text(json.dumps(doc))
    values = load_runs([tmp_path], Catalog()).values
    protocol = dict(zip(values["run"], values["protocol"]))
    assert protocol[str(views)] == "train.feature_cache=views:4" and protocol[str(plain)] == ""
