"""Every model config carries the facts the rest of DenseBench reads, and its full-size build matches them."""

from __future__ import annotations

import json

import pytest

from densebench.backbones.catalog import load_model_config

from tests.backbones.support import ALL_MODELS, PFMS, shared_full_on_meta
from tests.conftest import shared_path

REQUIRED = (
    "name",
    "display_name",
    "published_key",
    "family",
    "arch",
    "tiny",
    "published_params",
    "mean",
    "std",
    "default_input_size",
    "fixed_input_size",
    "hub",
    "gated",
    "licence",
    "variant",
    "pretrained",
    "weights",
    "layers",
)


def test_every_pathology_foundation_model_is_in_the_paper_grid():
    from omegaconf import OmegaConf

    from densebench.config import config_dir

    grid = OmegaConf.load(config_dir() / "experiment" / "paper_grid.yaml").hydra.sweeper.params.model.split(",")
    assert sorted(PFMS) == sorted(grid)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_config_has_every_field_and_its_own_name(name):
    cfg = load_model_config(name)
    assert [k for k in REQUIRED if k not in cfg] == []
    assert cfg.name == name
    assert len(cfg.mean) == len(cfg.std) == 3


@pytest.mark.parametrize("name", PFMS)
def test_pfm_defaults_to_full_size_pretrained_weights_from_a_hub_repository(name):
    cfg = load_model_config(name)
    assert cfg.variant == "full" and cfg.pretrained is True and cfg.weights is None
    assert cfg.hub.repo_id and list(cfg.hub.filenames)


def test_published_keys_are_the_keys_of_the_published_results():
    frozen = json.loads(shared_path("published", "pfm-densebench", "frozen.json").read_text())
    published_models = {model for per_dataset in frozen.values() for model in per_dataset}
    assert {load_model_config(n).published_key for n in PFMS} == published_models


@pytest.mark.parametrize("name", PFMS)
def test_full_size_parameter_count_is_within_one_percent_of_the_published_size(name):
    cfg = load_model_config(name)
    params = shared_full_on_meta(name).num_params()
    assert abs(params - cfg.published_params) <= 0.01 * cfg.published_params, (params, cfg.published_params)


@pytest.mark.parametrize("name", [n for n in PFMS if load_model_config(n).get("checkpoint_tensors")])
def test_full_size_module_has_as_many_tensors_as_the_released_checkpoint(name):
    cfg = load_model_config(name)
    assert len(shared_full_on_meta(name).weights_module.state_dict()) == cfg.checkpoint_tensors


@pytest.mark.parametrize("name", ALL_MODELS)
def test_built_model_reports_the_configured_normalisation(name):
    cfg = load_model_config(name)
    backbone = shared_full_on_meta(name)
    assert backbone.mean == tuple(cfg.mean) and backbone.std == tuple(cfg.std)
