"""A user's models, configured outside the repository, train with frozen, LoRA and CNN and say where they came from."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.byob.support import HUB_REPO, fake_hf_cache, user_env, write_config_dir
from tests.conftest import FAST, densebench

ONE_EPOCH = [
    *(o for o in FAST if not o.startswith(("model.", "train.epochs", "progress"))),
    "train.epochs=1",
    "progress=none",
]


def train_all(tmp_path, model, cache=None):
    configs = write_config_dir(tmp_path)
    out = tmp_path / "out"
    proc = densebench(
        "run",
        "--multirun",
        "--config-dir",
        str(configs),
        f"model={model}",
        "adapter=frozen,lora,cnn",
        f"output_dir={out}",
        *ONE_EPOCH,
        env=user_env(tmp_path, cache),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {p.parent.parent.name: json.loads(p.read_text()) for p in out.rglob("metrics.json")}
    assert sorted(records) == ["cnn", "frozen", "lora"]
    for record in records.values():
        assert record["status"] == "complete" and record["test"]["metrics"]["Mean_Dice"] is not None
    return records


@pytest.mark.slow
def test_a_timm_hub_model_from_an_offline_hf_cache_trains_with_every_strategy(tmp_path):
    cache, _ = fake_hf_cache(tmp_path)
    blob = next((cache / f"models--{HUB_REPO.replace('/', '--')}" / "snapshots").rglob("model.safetensors"))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    for strategy, record in train_all(tmp_path, "my_hub", cache).items():
        origin = record["model"]["origin"]
        assert origin["family"] == "timm_hub" and origin["hub_id"] == f"hf-hub:{HUB_REPO}", strategy
        assert origin["weights_sha256"] == digest and origin["weights_file"] == str(blob)
        assert record["model"]["num_prefix_tokens"] == 3  # class + 2 registers, read from the module


@pytest.mark.slow
def test_a_python_factory_on_pythonpath_trains_with_every_strategy(tmp_path):
    records = train_all(tmp_path, "my_tiny")
    module = tmp_path / "pkg" / "my_pfm.py"
    for record in records.values():
        origin = record["model"]["origin"]
        assert origin["family"] == "python" and origin["factory"] == "my_pfm:build"
        assert origin["factory_file_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
        assert origin["weights_sha256"] is None  # random init: no weights file was loaded
    assert records["lora"]["model"]["params"]["adapter"] > 0
