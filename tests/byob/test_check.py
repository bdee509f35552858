"""`densebench models --check`: facts of a working model, one line naming the config key per problem."""

from __future__ import annotations

import pytest

from tests.byob.support import use_config_dir
from tests.conftest import FAST


def check(capsys, *args):
    from densebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--check", *args])
    out = capsys.readouterr()
    return exit_info.value.code, out.out


def test_check_prints_geometry_decoder_layer_and_lora_targets_per_block(tmp_path, monkeypatch, capsys):
    use_config_dir(monkeypatch, tmp_path)
    code, out = check(capsys, "model=my_tiny")
    assert code == 0, out
    for line in (
        "parameters     ",
        "patch size     8",
        "width          24",
        "prefix tokens  1",
        "blocks         2",
        "decoder takes  block 1 (the last of 2",
        "21x25 image -> 1 map(s) of (24, 3, 4)",
        "lora           target_set attn: 2 Linear per block x 2 blocks = 4 (attn.qkv, attn.proj)",
        "dora           target_set attn: 2 Linear per block x 2 blocks = 4 (attn.qkv, attn.proj)",
        "ok: ",
    ):
        assert line in out


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        (["model.factory=my_missing_pkg.models:build"], "model.factory=my_missing_pkg.models:build", "cannot import"),
        (
            ["model.factory=my_pfm:build_one_tensor", "model.factory_kwargs=null"],
            "model.factory=my_pfm:build_one_tensor",
            "the output is not a token map",
        ),
        (["model.factory_kwargs.extra_tokens=2"], "model.factory=my_pfm:build", "the tokens do not fit the grid"),
        (
            ["model.lora_targets={attn: 'model\\.blocks\\.\\d+\\.nothing'}"],
            "model.lora_targets.attn",
            "matches no module",
        ),
        (
            ["model.factory_kwargs.linear_patch=true", "model.lora_targets={attn: 'model\\.patch'}"],
            "model.lora_targets.attn",
            "outside the transformer blocks (e.g. the patch embedding)",
        ),
        (
            ["model.factory=my_pfm:build_without_normalisation", "model.factory_kwargs=null"],
            "model.mean",
            "normalisation missing",
        ),
        (
            [
                "model.factory_kwargs.spare_linear=true",
                "model.lora_targets={attn: 'model\\.blocks\\.\\d+\\.attn\\.spare'}",
            ],
            "model.lora_targets.attn",
            "never change the output",
        ),
    ],
)
def test_each_problem_is_one_line_naming_the_config_key(tmp_path, monkeypatch, capsys, overrides, key, problem):
    use_config_dir(monkeypatch, tmp_path)
    code, out = check(capsys, "model=my_tiny", *overrides)
    problems = [line for line in out.splitlines() if line.strip().startswith("problem:")]
    assert code == 1 and problems, out
    assert any(key in line and problem in line for line in problems), problems


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("my_pfm:build_raises", "the factory raised RuntimeError"),
        ("my_pfm:build_wrong_type", "the factory returned dict, not a torch.nn.Module"),
        ("my_pfm:build_one_tensor", "the output is not a token map"),
    ],
)
def test_a_run_with_a_bad_factory_is_one_line_and_leaves_no_run_directory(
    tmp_path, monkeypatch, capsys, factory, message
):
    from densebench.cli import main

    use_config_dir(monkeypatch, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "run",
                f"output_dir={out}",
                "model=my_tiny",
                f"model.factory={factory}",
                "model.factory_kwargs=null",
                *[o for o in FAST if not o.startswith("model.")],
            ]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"model.factory={factory}" in err and message in err
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True


def test_a_run_whose_tokens_do_not_fit_the_grid_leaves_no_run_directory(tmp_path, monkeypatch, capsys):
    from densebench.cli import main

    use_config_dir(monkeypatch, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        main(
            [
                "run",
                f"output_dir={out}",
                "model=my_tiny",
                "+model.factory_kwargs.extra_tokens=1",
                *[o for o in FAST if not o.startswith("model.")],
            ]
        )
    err = capsys.readouterr().err
    assert "do not fit the grid" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
