"""`densebench models` and `densebench doctor`: honest answers without weights or network."""

from __future__ import annotations

import json

import pytest
import torch

from densebench.backbones.cli import doctor_main, models_main
from densebench.errors import ConfigError

from tests.backbones.support import (
    PFMS,
    original_checkpoint,
    put_in_cache,
    save_checkpoint,
    shared_full_on_meta,
    tiny_config,
)


def test_models_json_lists_the_17_pfms_with_sizes_from_the_built_architecture(capsys, offline_hf_cache):
    assert models_main(["--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n for n, r in rows.items() if r["published_key"]} == set(PFMS)
    uni2 = rows["uni2_h"]
    assert (uni2["params"], uni2["embed_dim"], uni2["patch_size"], uni2["prefix_tokens"]) == (681394176, 1536, 14, 9)
    assert rows["musk"]["fixed_input_size"] == 384 and rows["musk"]["family"] == "beit3"
    assert all(r["weights_local"] is None for r in rows.values())


def test_models_table_names_every_model(capsys, offline_hf_cache, monkeypatch):
    from densebench.backbones import catalog

    monkeypatch.setattr(catalog, "build_on_meta", lambda cfg: shared_full_on_meta(cfg.name))  # built in the JSON test
    assert models_main([]) == 0
    out = capsys.readouterr().out
    assert "17 pathology foundation models" in out
    assert all(name in out for name in PFMS)


def test_doctor_offline_reports_missing_and_cached_weights_without_asking_the_hub(capsys, offline_hf_cache):
    state, _ = original_checkpoint("phikon", tiny_config("phikon"))
    put_in_cache(offline_hf_cache, "owkin/phikon", "model.safetensors", state)
    assert doctor_main(["model=uni,phikon", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["models"]}
    assert rows["uni"]["status"] == "missing" and "HF_HUB_OFFLINE" in rows["uni"]["hub"]
    assert rows["uni"]["page"] == "https://huggingface.co/MahmoodLab/UNI"
    assert rows["phikon"]["status"] == "ready (local)" and rows["phikon"]["hf_cache"].endswith("model.safetensors")
    assert report["hf_token"] in ("set", "not set")


def test_doctor_checks_a_local_copy_given_as_model_weights(capsys, offline_hf_cache, tmp_path):
    path = save_checkpoint({"w": torch.zeros(1)}, tmp_path, "safetensors")
    assert doctor_main(["model=uni", f"model.weights={path}", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert row["status"] == "ready (local)" and row["model.weights"] == str(path)


def test_doctor_table_says_where_to_get_missing_weights(capsys, offline_hf_cache):
    assert doctor_main(["model=virchow2"]) == 0
    out = capsys.readouterr().out
    assert "missing" in out and "https://huggingface.co/paige-ai/Virchow2" in out


def test_doctor_rejects_an_override_without_a_single_model():
    with pytest.raises(ConfigError, match="exactly one model"):
        doctor_main(["model.weights=/x"])


def test_run_without_weights_ends_with_the_one_line_weights_message(offline_hf_cache, tmp_path, capsys):
    from densebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", f"output_dir={tmp_path}", "model=uni", "progress=plain"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "model 'uni'" in err and "https://huggingface.co/MahmoodLab/UNI" in err and "model.weights=PATH" in err
