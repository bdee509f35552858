"""Config values, names and keys: every bad value is one line naming the key, the value and what is
allowed, found when the config is composed (before a model is built or a file decoded)."""

from __future__ import annotations

import pytest

from densebench.errors import ConfigError
from tests.reliability.cases import ADAPTER_OVERRIDES, CONFIG, DEVICE, NAMES, Case
from tests.reliability.conftest import RUN, assert_one_line_error, cli


def overrides_of(case: Case) -> list[str]:
    return ADAPTER_OVERRIDES.get(case.id, [case.id])


@pytest.mark.parametrize("case", CONFIG, ids=str)
def test_a_bad_value_is_one_line_before_anything_is_written(case, tmp_path, capsys):
    code, _, err = cli(capsys, "run", *RUN, f"output_dir={tmp_path}", *overrides_of(case))
    assert_one_line_error(code, err, *case.needles)
    assert not any(tmp_path.iterdir())  # no run directory: nothing was built, decoded or written


@pytest.mark.parametrize("case", NAMES, ids=str)
def test_a_bad_name_or_key_is_one_line_before_data_is_read(case, tmp_path, capsys):
    code, _, err = cli(capsys, "run", *RUN, f"output_dir={tmp_path}", case.id)
    assert_one_line_error(code, err, *case.needles)
    assert not list(tmp_path.rglob("splits.json"))  # the data was never listed


@pytest.mark.parametrize("case", DEVICE, ids=str)
def test_a_device_or_precision_this_machine_lacks_is_one_line(case, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the devices asked for may exist")
    code, _, err = cli(capsys, "run", *RUN, f"output_dir={tmp_path}", case.id)
    assert_one_line_error(code, err, *case.needles)


@pytest.mark.parametrize("case", [c for c in CONFIG if c.id.startswith("eval.")], ids=str)
def test_compose_used_by_bench_data_and_analyses_validates_too(case):
    from densebench.config import compose

    with pytest.raises(ConfigError) as info:
        compose(overrides_of(case))
    assert all(n in str(info.value) for n in case.needles)


def test_validation_adds_no_default_a_group_without_the_key_passes():
    from omegaconf import OmegaConf

    from densebench.settings import validate

    cfg = OmegaConf.create({"train": {"lr": 0.1}})
    assert OmegaConf.to_container(validate(cfg)) == {"train": {"lr": 0.1}}
