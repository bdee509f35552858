"""Frozen-feature reuse (engine/features.py): exact for val/test, safe across resume and changed settings,
and the optional training views recorded as a protocol change."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from densebench.config import compose
from densebench.engine.features import FeatureMemo, open_memo, parse_views, view_of
from densebench.engine.progress import RunProgress
from densebench.engine.setup import load_splits
from densebench.engine.train import Run, execute
from densebench.errors import ConfigError
from densebench.files import read_json
from densebench.runs import preempt
from tests.sweeps import TINY
from tests.sweeps.test_preempt import run_dir

RUN = [*TINY, "progress=none", "cache_dir=null"]


def run(out, *extra):
    """The metrics.json a run writes (read back: NaN is null there, so whole blocks compare equal)."""
    overrides = [*RUN, f"output_dir={out}", *extra]
    record = execute(compose(overrides), overrides)
    return read_json(Path(record["run"]["run_dir"]) / "metrics.json")


def execute_in(out, monkeypatch, stop_at=None, extra=()):
    """The run with a disk store; with `stop_at=k`, stopped (as by SIGTERM) at the k-th progress step."""
    calls = {"n": 0}
    original = RunProgress.step

    def step(self, info=""):
        calls["n"] += 1
        if calls["n"] == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, info)

    monkeypatch.setattr(RunProgress, "step", step)
    overrides = [*RUN, f"output_dir={out}", "eval.feature_cache.store=disk", *extra]
    with preempt.handling():
        record = execute(compose(overrides), overrides)
    return read_json(Path(record["run"]["run_dir"]) / "metrics.json")


@pytest.mark.parametrize("adapter", ["frozen", "cnn", "transformer"])
def test_reused_eval_features_give_the_uncached_val_and_test_blocks(tmp_path, adapter):
    off = run(tmp_path / "off", f"adapter={adapter}", "eval.feature_cache.store=off")
    on = run(tmp_path / "on", f"adapter={adapter}", "eval.feature_cache.store=memory")
    assert on["val"] == off["val"] and on["test"] == off["test"]
    assert on["feature_cache"]["hits"] > 0  # epoch 2's validation came from the memo
    assert off["feature_cache"] == {"eval": "off", "train_views": None, "protocol_changed": False}


def test_disk_store_is_exact_and_a_killed_run_reuses_it_on_resume(tmp_path, monkeypatch):
    reference = run(tmp_path / "ref", "eval.feature_cache.store=off")
    out = tmp_path / "disk"
    with pytest.raises(preempt.Preempted, match="in val at epoch 2"):
        execute_in(out, monkeypatch, stop_at=7)  # 2 steps, 2 val images, 2 steps, 1 val image
    assert len(list(run_dir(out).glob("features/*/val/*.safetensors"))) == 2  # both val images written
    resumed = execute_in(out, monkeypatch)
    assert resumed["val"] == reference["val"] and resumed["test"] == reference["test"]
    assert resumed["feature_cache"]["hits"] > 0 and resumed["feature_cache"]["recomputed"] == 0


def built(out, *extra):
    overrides = [*RUN, f"output_dir={out}", "eval.feature_cache.store=disk", *extra]
    r = Run(compose(overrides), overrides)
    r.dir.mkdir(parents=True)
    r.build()
    return r


def _overlap(r):
    cfg = r.cfg.copy()
    cfg.eval.overlap = 0.5
    return {"cfg": cfg}


def _weights(r):
    with torch.no_grad():
        next(r.model.backbone.parameters()).add_(1e-3)
    return {}


CHANGES = {
    "weights": _weights,
    "eval setting": _overlap,
    "input size": lambda r: {"size": r.input_size + 8},
    "data": lambda r: {"data": load_splits(compose([*RUN, "dataset.generator_seed=99"]))},
}


@pytest.mark.parametrize("change", CHANGES)
def test_changed_weights_settings_or_data_get_a_new_disk_key_and_the_old_one_is_removed(tmp_path, change):
    r = built(tmp_path)
    old = r.memo.root

    def reopen(cfg=r.cfg, data=r.data, size=r.input_size):
        return open_memo(cfg, r.dir, r.model, data, size, r.precision).root

    assert reopen() == old  # nothing changed: the same store (a resume reuses it)
    new = reopen(**CHANGES[change](r))
    assert new != old and new.is_dir() and not old.exists()


def test_a_stored_window_is_never_returned_for_a_different_input():
    memo = FeatureMemo("memory")
    calls = []

    def compute(x):
        calls.append(len(x))
        return x.sum((1, 2, 3))[:, None]

    a, b = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    with memo.image("val", "img0"):
        first = memo(a, compute)
    with memo.image("val", "img0"):  # same key, other input: recomputed
        second = memo(b, compute)
    with memo.image("val", "img0"):
        third = memo(b, compute)  # now stored
    assert calls == [2, 2] and memo.recomputed == 2 and memo.hits == 2
    assert torch.equal(second, compute(b)) and torch.equal(third, second) and not torch.equal(first, second)


def test_the_memory_budget_stores_whole_calls_only():
    memo = FeatureMemo("memory", max_gb=40 / 2**30)  # room for 40 bytes: one float32 call of 2x4
    compute = lambda x: x.flatten(1)[:, :4].clone()  # noqa: E731
    with memo.image("val", "a"):
        memo(torch.rand(2, 1, 2, 2), compute)
        memo(torch.rand(2, 1, 2, 2), compute)  # does not fit: not stored at all
    assert memo.bytes == 32 and len(memo.groups[("val", "a")]) == 2


def test_training_views_are_recorded_as_a_protocol_change_and_reused(tmp_path):
    record = run(tmp_path, "train.feature_cache=views:2", "train.epochs=4", "eval.feature_cache.store=off")
    block = record["feature_cache"]
    assert block["train_views"] == 2 and block["protocol_changed"] and block["eval"] == "off"
    assert block["misses"] == 8 * 2 and block["hits"] == 8 * 2  # 2 views of 8 images, then reused twice
    assert record["config"]["train"]["feature_cache"] == "views:2"


def test_each_view_is_shown_once_every_k_epochs():
    shown = [view_of(0, epoch, index=3, views=4) for epoch in range(8)]
    assert sorted(shown[:4]) == [0, 1, 2, 3] and shown[4:] == shown[:4]


@pytest.mark.parametrize("value", ["views:0", "views", "4", "views:x"])
def test_bad_train_feature_cache_is_a_config_error(value):
    with pytest.raises(ConfigError, match="train.feature_cache"):
        parse_views(value)


def test_training_views_with_a_trained_backbone_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="trains its backbone"):
        run(tmp_path, "adapter=full", "train.feature_cache=views:2")


def test_paper_protocol_keeps_training_views_off():
    assert compose(["train=paper"]).train.feature_cache is None
