"""The sweeper expands a grid the way Hydra's basic sweeper does, through Hydra's public parser only."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from hydra_plugins.densebench_sweeper.densebench_sweeper import DenseBenchSweeper, expand


def parse(*args: str):
    return OverridesParser.create().parse_overrides(list(args))


def test_grid_is_the_cartesian_product_with_the_last_key_varying_fastest():
    jobs = expand(parse("model=a,b", "seed=range(0,2)", "device=cpu"))
    assert jobs == [
        ["model=a", "seed=0", "device=cpu"],
        ["model=a", "seed=1", "device=cpu"],
        ["model=b", "seed=0", "device=cpu"],
        ["model=b", "seed=1", "device=cpu"],
    ]


def test_a_later_value_for_a_key_replaces_the_earlier_one():
    assert expand(parse("seed=0,1", "seed=5")) == [["seed=5"]]


def test_an_interval_sweep_is_refused_with_the_key():
    with pytest.raises(HydraException, match="lr: the densebench sweeper takes lists"):
        expand(parse("lr=interval(0.1,1.0)"))


def test_max_batch_size_must_be_positive():
    with pytest.raises(HydraException, match="max_batch_size=0"):
        DenseBenchSweeper(max_batch_size=0)
