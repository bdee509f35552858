"""`densebench bench`: the paper-compare suite's cells and table, and the step/epoch timers' plumbing
(timings themselves are not asserted: machines are noisy; the bench is the check)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from densebench.config import config_dir
from densebench.bench import suite as bench_suite
from densebench.bench.cli import bench
from densebench.bench.suite import epoch_bench, paper_compare, print_compare

from ..conftest import FAST

SUITE = OmegaConf.load(config_dir() / "bench" / "paper_compare.yaml")


@pytest.mark.parametrize("cell", SUITE.cells, ids=lambda c: c.name)
def test_every_paper_compare_cell_composes_to_the_papers_configuration(cell, compose_cfg):
    for extra in ([], list(SUITE.before)):
        cfg = compose_cfg([*SUITE.common, *cell.overrides, *extra])
        assert (cfg.input_size, cfg.train.batch_size, cfg.train.precision, cfg.train.num_workers) == (224, 8, "fp32", 2)
        assert cfg.dataset.n_train == 32  # 4 iterations per epoch at batch 8
    assert cell.paper.images_per_s == pytest.approx(8 / cell.paper.s_per_iter, rel=0.03)


def test_paper_compare_runs_a_before_baseline_unless_a_cell_shares_one(monkeypatch, capsys):
    calls = []

    def fake(overrides):
        calls.append(overrides)
        native = "runtime.cpu_linear=native" in overrides
        return {
            "images_per_s": 1.0 if native else 1.5,
            "peak_rss_mb": 1000.0,
            "gflop_per_image": 100.0,
            "gflop_per_s": 100.0 if native else 150.0,
        }

    monkeypatch.setattr(bench_suite, "_epochs_in_subprocess", fake)
    monkeypatch.setattr(bench_suite, "gemm_gflops", lambda: {"default": 1.0})
    result = paper_compare(["train.num_workers=0"])
    shared = [c for c in SUITE.cells if c.get("before", True) is False]
    assert shared and len(calls) == 2 * len(SUITE.cells) - len(shared)
    assert all("train.num_workers=0" in c for c in calls)
    assert all("before" not in r for r in result["rows"] if r["name"] in {c.name for c in shared})
    print_compare(result)
    out = capsys.readouterr().out
    assert "1.50x" in out and "UNI frozen" in out  # ours/before


def _row(ours_img_s: float, ours_rss: float, gflop: float = 100.0) -> dict:
    return {
        "name": "cell",
        "paper": {"images_per_s": 1.0, "peak_rss_mb": 1000.0},
        "target": {"speed": 1.5, "memory": 0.6},
        "ours": {
            "images_per_s": ours_img_s,
            "peak_rss_mb": ours_rss,
            "gflop_per_image": gflop,
            "gflop_per_s": gflop * ours_img_s,
        },
    }


def test_a_cell_meets_its_target_only_when_both_speed_and_memory_do():
    assert bench_suite._verdict(bench_suite.assess(_row(1.6, 500.0), peak_gflops=1000.0)) == "met"
    assert bench_suite._verdict(bench_suite.assess(_row(1.6, 700.0), peak_gflops=1000.0)) == "no: memory"
    assert bench_suite._verdict(bench_suite.assess(_row(1.4, 500.0), peak_gflops=1000.0)) == "no: speed"


def test_a_target_beyond_the_machines_flop_ceiling_says_so():
    row = bench_suite.assess(_row(1.2, 500.0, gflop=100.0), peak_gflops=140.0)  # ceiling 1.4 img/s < goal 1.5
    assert row["ceiling_images_per_s"] == pytest.approx(1.4) and row["share_of_peak"] == pytest.approx(120 / 140)
    assert bench_suite._verdict(row) == "no: target above ceiling"


def test_a_failed_cell_is_a_row_not_a_crash(monkeypatch, capsys):
    monkeypatch.setattr(bench_suite, "_epochs_in_subprocess", lambda o: {"error": "ConfigError: nope"})
    monkeypatch.setattr(bench_suite, "gemm_gflops", lambda: {"default": 1.0})
    print_compare(paper_compare([], before=False))
    assert "failed: ConfigError: nope" in capsys.readouterr().out


def test_step_bench_reports_consistent_rates_and_memory():
    result = bench(
        ["model.variant=tiny", "input_size=32", "train.batch_size=2", "device=cpu"],
        iters=2,
        warmup=1,
        eval_size=48,
        num_classes=2,
    )
    train = result["train"]
    assert len(train["times"]) == 2 and train["images_per_s"] == pytest.approx(2 / train["s_per_iter"])
    assert train["peak_rss_mb"] > 0 and result["eval"]["s_per_image"] > 0
    evaluation = result["eval"]
    assert evaluation["gflop_per_image"] > 0
    assert evaluation["gflop_per_s"] == pytest.approx(evaluation["gflop_per_image"] / evaluation["s_per_image"])


def test_epoch_bench_times_every_epoch_of_a_real_run(tmp_path):
    result = epoch_bench([*FAST, "train.num_workers=0", "device=cpu"], epochs=2)
    assert len(result["epoch_s"]) == 2 and result["iters_per_epoch"] == 2  # 8 images, batch 4
    assert result["images_per_s"] == pytest.approx(8 / result["epoch_s"][-1])
    assert result["gflop_per_image"] > 0
    assert result["gflop_per_s"] == pytest.approx(result["gflop_per_image"] * result["images_per_s"])


MEMORY = OmegaConf.load(config_dir() / "bench" / "memory.yaml")


def test_memory_suite_covers_both_backbone_sizes_every_strategy_and_size(monkeypatch, capsys, compose_cfg):
    seen = []

    def fake(flags, overrides):
        cfg = compose_cfg(overrides)  # every cell composes
        seen.append((cfg.model.name, cfg.adapter.name, cfg.input_size, cfg.adapter.get("grad_checkpointing")))
        return {
            "train": {"peak_rss_mb": 123.0, "peak_cuda_mb": None, "s_per_iter": 1.0},
            "params": {"trainable_total": 7},
        }

    monkeypatch.setattr(bench_suite, "_in_subprocess", fake)
    monkeypatch.setattr(bench_suite, "gemm_gflops", lambda: {"default": 1.0})
    result = bench_suite.memory_table([])
    assert {(m, a, s) for m, a, s, _ in seen} >= {
        (m, a, s) for m in ("uni", "gigapath") for a in ("frozen", "lora", "full") for s in (224, 512, 1024)
    }
    assert ("uni", "lora", 1024, False) in seen and ("uni", "lora", 1024, "auto") in seen
    bench_suite.print_memory(result)
    assert "1024²" in capsys.readouterr().out


def test_loader_bench_fills_the_cache_then_reads_it_without_building_the_model(monkeypatch):
    from densebench.engine import setup

    monkeypatch.setattr(setup, "build_model", lambda *a: pytest.fail("the loader bench must not build the model"))
    result = bench_suite.loader_bench([*FAST, "train.num_workers=0", "device=cpu"], epochs=2)
    assert result["images"] == 8 and result["cache"] is True and len(result["images_per_s"]) == 2
    assert result["input_size"] == 48
