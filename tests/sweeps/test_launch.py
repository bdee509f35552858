"""Grids: submitit_local runs each cell in its own job, the densebench sweeper records the cells and
launches none that are finished, a finished run is skipped without building a model, and a failing
cell leaves the others running and shows as failed in `densebench status`."""

from __future__ import annotations

import json
import time

import pytest

from densebench.cli import main
from densebench.config import compose
from densebench.runs.cells import read_manifest
from tests.conftest import densebench
from tests.sweeps import TINY


def metrics_files(root):
    return sorted(root.rglob("metrics.json"))


def test_submitit_local_runs_a_2x2_grid_and_a_rerun_launches_nothing(tmp_path):
    args = [
        "run",
        "-m",
        "experiment=smoke",
        "hydra/launcher=submitit_local",
        f"output_dir={tmp_path}",
        *TINY,
        "train.epochs=1",
    ]
    first = densebench(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    files = metrics_files(tmp_path)
    assert [f"{p.parent.parent.name}/{p.parent.name[:5]}" for p in files] == [
        "frozen/seed0",
        "frozen/seed1",
        "full/seed0",
        "full/seed1",
    ]
    assert all(json.loads(p.read_text())["status"] == "complete" for p in files)
    (manifest,) = tmp_path.glob("multirun/*/cells.json")
    assert sorted(c.run_dir for c in read_manifest(manifest)) == [p.parent for p in files]
    stamps = [p.stat().st_mtime_ns for p in files]
    t0 = time.perf_counter()
    again = densebench(*args)
    elapsed = time.perf_counter() - t0
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Skipping 4 finished and 0 running cells" in again.stdout and "launching 0 of 4" in again.stdout
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert elapsed < 30  # no job is started: only Hydra composing 4 configs (about 2 s)


def test_a_finished_run_is_skipped_without_loading_data_or_a_model(tmp_path, monkeypatch):
    import densebench.engine.train as train

    overrides = [*TINY, f"output_dir={tmp_path}"]
    cfg = compose(overrides)
    run = train.Run(cfg, overrides)
    run.dir.mkdir(parents=True)
    (run.dir / "metrics.json").write_text(json.dumps({"status": "complete", "marker": 1}))

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished run must not load data or build a model")

    monkeypatch.setattr(train, "build_environment", forbidden)
    t0 = time.perf_counter()
    assert train.execute(cfg, overrides)["marker"] == 1
    assert time.perf_counter() - t0 < 1.0


def test_a_failing_cell_does_not_stop_the_grid_which_ends_with_a_summary_and_fails(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "-m", f"output_dir={tmp_path}", *TINY, "train.epochs=1", "progress=none", "train.loss=nope,dice"])
    assert exit_info.value.code == 1  # a mixed sweep: one cell done, one failed
    summary = capsys.readouterr().out
    assert "sweep: 2 cells: 1 done, 0 skipped, 1 failed" in summary
    assert (
        "failed synthetic · demo_vit · frozen · seed 0" in summary
        and "ConfigError: train.loss=nope is not known" in summary
    )
    (done,) = metrics_files(tmp_path)
    (error_file,) = tmp_path.rglob("error.json")
    error = json.loads(error_file.read_text())
    assert error["type"] == "ConfigError" and "train.loss=nope" in error["message"]
    assert "Traceback" in error["traceback"] and "train.loss=nope" in error["overrides"]
    assert error["config"]["train"]["loss"] == "nope"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["status", str(tmp_path)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "done 1" in out and "failed 1" in out and "missing 0" in out
    assert "ConfigError: train.loss=nope is not known" in out
    assert "train.loss=nope" in out and "train.loss=dice" in out  # the columns name what differs


def test_a_grid_whose_cells_cannot_resolve_launches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DENSEBENCH_DATA", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "run",
                "-m",
                "experiment=paper_grid",
                "model=uni",
                "dataset=glas,crag",
                "adapter=frozen",
                f"output_dir={tmp_path}",
            ]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Environment variable 'DENSEBENCH_DATA' not found\"; nothing launched" in err
    assert "Traceback" not in err and not list(tmp_path.rglob("cells.json")) and not list(tmp_path.rglob("seed*"))


def test_an_all_failed_sweep_runs_every_cell_and_exits_non_zero(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "run",
                "-m",
                f"output_dir={tmp_path}",
                "model.variant=tiny",
                "progress=none",
                "dataset=folder",
                f"dataset.root={tmp_path / 'no-data'}",
                "adapter=frozen,cnn",
            ]
        )
    out = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "sweep: 2 cells: 0 done, 0 skipped, 2 failed" in out.out
    assert out.out.count("  failed folder · demo_vit") == 2
    assert len(list(tmp_path.rglob("error.json"))) == 2  # both cells ran (and recorded why they failed)


def test_a_sweep_of_finished_cells_reports_them_skipped_and_exits_zero(tmp_path, capsys):
    args = ["run", "-m", f"output_dir={tmp_path}", *TINY, "progress=none", "adapter=frozen,cnn"]
    cfg_cells = [compose([*TINY, f"output_dir={tmp_path}", f"adapter={a}"]) for a in ("frozen", "cnn")]
    from densebench.runs.rundir import run_dir

    for adapter, cfg in zip(("frozen", "cnn"), cfg_cells):
        path = run_dir(cfg, [*TINY, f"adapter={adapter}", "progress=none"])
        path.mkdir(parents=True)
        (path / "metrics.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    assert "sweep: 2 cells: 0 done, 2 skipped, 0 failed" in capsys.readouterr().out
