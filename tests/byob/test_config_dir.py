"""Model configs outside the package: `--config-dir` on every command, user files winning with a notice."""

from __future__ import annotations

import pytest

from densebench.errors import ConfigError
from tests.byob.support import use_config_dir, user_env, write_config_dir
from tests.conftest import densebench


def test_take_config_dirs_removes_the_flag_in_all_spellings_and_keeps_the_rest(tmp_path, monkeypatch):
    from densebench.config import take_config_dirs, user_config_dirs

    monkeypatch.setenv("DENSEBENCH_CONFIG_PATH", "")  # recorded, so the folders added below do not leak
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    rest = take_config_dirs(
        [
            "model=x",
            "--config-dir",
            str(tmp_path / "a"),
            f"--config-dir={tmp_path / 'b'}",
            "-cd",
            str(tmp_path / "c"),
            "seed=1",
        ]
    )
    assert rest == ["model=x", "seed=1"]
    assert user_config_dirs() == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]  # the first given wins


def test_a_missing_config_dir_is_one_line_naming_the_flag(tmp_path, monkeypatch):
    from densebench.config import take_config_dirs

    monkeypatch.setenv("DENSEBENCH_CONFIG_PATH", "")  # recorded, so the folders added below do not leak
    with pytest.raises(ConfigError, match=r"--config-dir .*nope is not a folder"):
        take_config_dirs(["--config-dir", str(tmp_path / "nope")])


def test_a_user_model_composes_like_a_built_in_one(tmp_path, monkeypatch, compose_cfg):
    use_config_dir(monkeypatch, tmp_path)
    cfg = compose_cfg(["model=my_tiny"])
    assert cfg.model.family == "python" and cfg.model.factory == "my_pfm:build"


def test_unknown_model_lists_user_models_too(tmp_path, monkeypatch, compose_cfg):
    use_config_dir(monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; known: .*my_hub, my_tiny"):
        compose_cfg(["model=nope"])


def test_a_user_file_named_like_a_built_in_wins_with_a_one_line_notice(tmp_path, monkeypatch, compose_cfg, capsys):
    from densebench.config import config_dir

    configs = use_config_dir(monkeypatch, tmp_path)
    text = (config_dir() / "model" / "demo_vit.yaml").read_text().replace("embed_dim: 96", "embed_dim: 48")
    (configs / "model" / "demo_vit.yaml").write_text(text)
    cfg = compose_cfg(["model=demo_vit"])
    err = capsys.readouterr().err.strip().splitlines()
    assert cfg.model.arch.embed_dim == 48
    assert (
        len(err) == 1 and err[0].startswith("notice: model 'demo_vit' comes from") and "replaces the built-in" in err[0]
    )


def test_the_report_catalogue_reads_user_display_names(tmp_path, monkeypatch):
    from densebench.config import config_dir
    from densebench.names import Catalog

    use_config_dir(monkeypatch, tmp_path)
    assert Catalog.load(config_dir()).display("model", "my_tiny") == "My tiny PFM"


@pytest.mark.parametrize(
    "command",
    [
        ["models", "--check", "model=my_tiny"],
        ["doctor", "--no-hub", "model=my_tiny"],
        ["run", "model=my_tiny", "--cfg", "job"],
    ],
)
def test_every_model_command_sees_the_config_dir_flag(tmp_path, command):
    configs = write_config_dir(tmp_path)
    proc = densebench(*command, "--config-dir", str(configs), env=user_env(tmp_path), timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "my_tiny" in proc.stdout


def test_models_lists_the_others_when_one_user_model_does_not_build(tmp_path, monkeypatch, capsys):
    from densebench.cli import main

    configs = use_config_dir(monkeypatch, tmp_path)
    (configs / "model" / "broken.yaml").write_text("name: broken\nfamily: python\nfactory: nowhere.at_all:build\n")
    monkeypatch.setattr("densebench.backbones.cli.ordered_names", lambda: ["broken", "my_tiny"])  # skip the 17 PFMs
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--json"])
    out = capsys.readouterr()
    assert exit_info.value.code == 0 and '"name": "my_tiny"' in out.out
    assert "model broken does not build: model.factory=nowhere.at_all:build: cannot import" in out.err


def test_analyze_flops_and_data_list_user_configs(tmp_path, monkeypatch):
    from densebench.analysis.flops_cli import model_names
    from densebench.data.cli import dataset_names

    configs = use_config_dir(monkeypatch, tmp_path)
    (configs / "dataset").mkdir()
    (configs / "dataset" / "my_data.yaml").write_text("defaults: [synthetic, _self_]\nname: my_data\n")
    assert model_names("my_tiny") == ["my_tiny"]
    assert "my_data" in dataset_names()
