"""The decode-once cache: later loads read the cache, any change to the source files or to the
decode-relevant config gives a fresh decode, and concurrent writers never expose partial entries."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.io

from densebench.data.cache import RecordCache, cached_loader
from tests.data.fixtures_nuclei import build, make_consep, make_pannuke, make_tnbc


class Counting:
    """Wraps a source and counts decodes."""

    def __init__(self, source):
        self.source, self.calls = source, 0
        self.cfg = source.cfg
        self.decoder_version = getattr(source, "decoder_version", 0)

    def load(self, sample):
        self.calls += 1
        return self.source.load(sample)


def _equal(a, b) -> bool:
    same_inst = (a.instances is None and b.instances is None) or np.array_equal(a.instances, b.instances)
    return np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and same_inst


def test_second_load_comes_from_the_cache_and_equals_the_first(tmp_path):
    make_consep(tmp_path / "data")
    source = Counting(build("consep", tmp_path / "data"))
    sample = source.source.samples()[0]
    load = cached_loader(source, tmp_path / "cache")
    first, second = load(sample), load(sample)
    assert source.calls == 1 and _equal(first, second)
    assert second.instances.dtype == np.int32
    assert (
        _equal(cached_loader(source, tmp_path / "cache")(sample), first) and source.calls == 1
    )  # a new process would hit too


def test_changed_source_file_invalidates_its_entry(tmp_path):
    make_consep(tmp_path / "data")
    source = build("consep", tmp_path / "data")
    sample = next(s for s in source.samples() if s.key == "train_1")
    load = cached_loader(source, tmp_path / "cache")
    before = load(sample)
    label = sample.paths[1]
    mat = scipy.io.loadmat(label)
    scipy.io.savemat(label, {"inst_map": np.zeros_like(mat["inst_map"]), "type_map": np.zeros_like(mat["type_map"])})
    os.utime(label, ns=(os.stat(label).st_atime_ns, os.stat(label).st_mtime_ns + 10**9))
    after = load(sample)
    assert before.mask.any() and not after.mask.any()


def test_class_mode_change_decodes_again_but_split_change_does_not(tmp_path):
    make_consep(tmp_path / "data")
    default = build("consep", tmp_path / "data")
    sample = default.samples()[0]
    cache = tmp_path / "cache"
    entry = RecordCache(default, cache).path(sample)
    assert RecordCache(build("consep", tmp_path / "data", class_mode="merged"), cache).path(sample) != entry
    assert RecordCache(build("consep", tmp_path / "data", split="paper", val_fraction=0.5), cache).path(sample) == entry


def test_corrupt_entry_is_decoded_again(tmp_path):
    make_tnbc(tmp_path / "data")
    source = Counting(build("tnbc", tmp_path / "data"))
    sample = source.source.samples()[0]
    load = RecordCache(source, tmp_path / "cache")
    first = load(sample)
    load.path(sample).write_bytes(b"not a zip")
    assert _equal(load(sample), first) and source.calls == 2
    assert first.instances is None


def test_concurrent_loads_of_one_sample_leave_one_complete_entry(tmp_path):
    make_pannuke(tmp_path / "data")
    source = build("pannuke", tmp_path / "data")
    sample = source.samples()[0]
    load = cached_loader(source, tmp_path / "cache")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(load, [sample] * 8))
    assert all(_equal(r, results[0]) for r in results)
    files = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) == 1 and not files[0].startswith(".tmp")


def test_cached_loader_pickles_without_the_memory_maps(tmp_path):
    make_pannuke(tmp_path / "data")
    source = build("pannuke", tmp_path / "data")
    sample = source.samples()[0]
    load = cached_loader(source, tmp_path / "cache")
    load(sample)
    clone = pickle.loads(pickle.dumps(load))
    assert clone.source._maps == {} and _equal(clone(sample), load(sample))
