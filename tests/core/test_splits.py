"""Split strategies: official, paper, grouped, explicit file."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from densebench.data.base import Sample
from densebench.data.splits import make_splits
from densebench.errors import ConfigError, DataError


def samples(n=20, tagged=True):
    return [
        Sample(key=f"s{i:02d}", split=("test" if i % 4 == 0 else "train") if tagged else None, group=f"p{i // 2}")
        for i in range(n)
    ]


def cfg(**kw):
    return OmegaConf.create({"name": "t", **kw})


def test_official_split_keeps_the_release_test_set_and_carves_val_from_train():
    out = make_splits(samples(), cfg(split="official", val_fraction=0.2), seed=0)
    assert {s.key for s in out["test"]} == {f"s{i:02d}" for i in range(0, 20, 4)}
    assert not {s.key for s in out["val"]} & {s.key for s in out["train"]}
    assert len(out["train"]) + len(out["val"]) == 15


def test_paper_split_uses_int_70_20_rest_and_is_seeded():
    a = make_splits(samples(tagged=False), cfg(split="paper"), seed=1)
    b = make_splits(samples(tagged=False), cfg(split="paper"), seed=1)
    assert [len(a[k]) for k in ("train", "val", "test")] == [14, 4, 2]
    assert [s.key for s in a["test"]] == [s.key for s in b["test"]]


def test_grouped_split_never_puts_one_patient_in_two_splits():
    out = make_splits(samples(tagged=False), cfg(split="grouped"), seed=3)
    groups = {k: {s.group for s in v} for k, v in out.items()}
    assert (
        not groups["train"] & groups["val"]
        and not groups["train"] & groups["test"]
        and not groups["val"] & groups["test"]
    )


def test_official_split_on_a_release_without_one_names_the_alternatives():
    with pytest.raises(ConfigError, match="grouped"):
        make_splits(samples(tagged=False), cfg(split="official", val_fraction=0.2), seed=0)


def test_split_file_with_unknown_keys_is_an_error(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["s01", "nope"], "val": ["s02"], "test": ["s03"]}))
    with pytest.raises(DataError, match="nope"):
        make_splits(samples(), cfg(split_file=str(path)), seed=0)


def test_an_empty_split_is_an_error():
    with pytest.raises(DataError, match="empty"):
        make_splits(samples(3, tagged=False), cfg(split="paper"), seed=0)
