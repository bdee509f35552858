"""`densebench analyze`: dispatch, help and argument errors."""

from __future__ import annotations

import json

import pytest

from densebench import cli
from densebench.analysis.cli import main
from densebench.errors import ConfigError


def test_help_lists_the_analyses(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("tokens", "sizes", "flops")) and "run=RUN_DIR" in out


def test_unknown_analysis_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown analysis 'token'; choose one of tokens, sizes, flops"):
        main(["token"])


def test_dash_options_are_refused_with_the_accepted_keys() -> None:
    with pytest.raises(ConfigError, match="unknown option --n-images"):
        main(["tokens", "--n-images", "3"])


def test_densebench_analyze_flops_prints_and_writes_a_table(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["analyze", "flops", "models=[demo_vit]", "variant=tiny", "input_size=32", f"out={tmp_path}"])
    assert exit_.value.code == 0
    doc = json.loads((tmp_path / "flops.json").read_text())
    assert doc["input_size"] == 32 and [m["model"] for m in doc["models"]] == ["demo_vit"]
    assert "Demo ViT" in capsys.readouterr().out


def test_flops_of_an_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"models=\['nope'\]: not in configs/model/"):
        main(["flops", "models=[nope]"])
