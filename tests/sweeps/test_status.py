"""`densebench status` (runs/status.py, runs/cells.py): cell states from the launch manifest and the
run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from densebench.cli import main
from densebench.runs.cells import Cell, find_manifests, read_manifest, state, write_manifest
from densebench.runs.lock import RunLock
from densebench.runs.status import render, variant_labels


def cell(root: Path, adapter: str, seed: int, *extra: str) -> Cell:
    overrides = (f"adapter={adapter}", f"seed={seed}", "experiment=x", *extra)
    return Cell(overrides, root / "glas" / "uni" / adapter / f"seed{seed}", "glas", "uni", adapter, seed)


def test_each_state_follows_from_the_run_directory(tmp_path):
    done, failed, interrupted, running, missing = (tmp_path / n for n in ("done", "failed", "int", "run", "miss"))
    (done / "metrics.json").parent.mkdir()
    (done / "metrics.json").write_text(json.dumps({"status": "complete"}))
    failed.mkdir()
    (failed / "error.json").write_text(json.dumps({"type": "ValueError", "message": "bad"}))
    (interrupted / "checkpoints").mkdir(parents=True)
    running.mkdir()
    (running / "error.json").write_text("{}")  # an earlier failure, being rerun now
    with RunLock(running):
        assert [state(p) for p in (done, failed, interrupted, running, missing)] == [
            "done",
            "failed",
            "interrupted",
            "running",
            "missing",
        ]


def test_a_manifest_round_trips_and_survives_moving_the_output_tree(tmp_path):
    cells = [cell(tmp_path, "frozen", 0), cell(tmp_path, "lora", 0, "train.lr=0.1")]
    write_manifest(tmp_path / "multirun" / "2026-01-01_00-00-00", cells)
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    (manifest,) = find_manifests(moved)
    expected = [moved / "glas" / "uni" / a / "seed0" for a in ("frozen", "lora")]
    assert [c.run_dir for c in read_manifest(manifest)] == expected
    assert find_manifests(manifest.parent) == [manifest]  # a sweep directory works too


def test_groups_are_what_tells_cells_apart_beyond_adapter_and_seed():
    root = Path("/o")
    assert variant_labels([cell(root, "frozen", 0), cell(root, "frozen", 1)]) == ["", ""]
    assert variant_labels([cell(root, "lora", 0, "finetune=lora_r4"), cell(root, "lora", 0, "finetune=lora_r8")]) == [
        "finetune=lora_r4",
        "finetune=lora_r8",
    ]


def test_status_reads_at_80_columns_with_one_table_per_group_and_no_cut_names(tmp_path):
    from rich.console import Console

    long_model = "experiment_with_a_very_long_model_name"
    cells = []
    for sweep, extra in enumerate(("train.epochs=2", "train.epochs=3", "finetune=lora_r4")):
        for adapter in ("frozen", "lora", "dora", "cnn", "transformer", "full"):
            for seed in (0, 1):
                overrides = (f"adapter={adapter}", f"seed={seed}", extra)
                cells.append(
                    Cell(overrides, tmp_path / f"s{sweep}" / adapter / f"seed{seed}", "glas", long_model, adapter, seed)
                )
    console = Console(width=80, record=True, color_system=None)
    render(tmp_path, cells, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "".join(text.split()).count(long_model) == 3  # one row per group, the name folded, not cut
    for extra in ("train.epochs=2", "train.epochs=3", "finetune=lora_r4"):
        assert text.count(extra) == 1  # a table title per group, not a column per override set
    header = next(line for line in text.splitlines() if "dataset · model" in line)
    assert header.index("frozen") < header.index("lora") < header.index("cnn") < header.index("full")


def test_status_counts_cells_that_never_started_as_missing(tmp_path, capsys):
    cells = [cell(tmp_path, "frozen", 0), cell(tmp_path, "full", 0)]
    write_manifest(tmp_path / "multirun" / "a", cells)
    cells[0].run_dir.mkdir(parents=True)
    (cells[0].run_dir / "metrics.json").write_text(json.dumps({"status": "complete"}))
    assert main_status(tmp_path) == 0
    out = capsys.readouterr().out
    assert "2 cells" in out and "done 1" in out and "missing 1" in out and "glas · uni" in out


def test_status_of_an_empty_directory_says_what_to_do(tmp_path, capsys):
    assert main_status(tmp_path) == 2
    assert "no runs under" in capsys.readouterr().err


def test_status_without_a_sweep_lists_the_run_directories_it_finds(tmp_path, capsys):
    for adapter, finished in (("frozen", True), ("full", False)):
        run = tmp_path / "glas" / "uni" / adapter / "seed0"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(
            f"seed: 0\ndataset: {{name: glas}}\nmodel: {{name: uni}}\nadapter: {{name: {adapter}}}\n"
        )
        if finished:
            (run / "metrics.json").write_text(json.dumps({"status": "complete"}))
        else:
            (run / "error.json").write_text(json.dumps({"type": "WeightsError", "message": "no weights found"}))
    assert main_status(tmp_path) == 0
    out = capsys.readouterr().out
    assert "done 1" in out and "failed 1" in out and "WeightsError: no weights found" in out


def test_status_shows_single_runs_beside_a_sweep(tmp_path, capsys):
    cells = [cell(tmp_path, "frozen", 0)]
    write_manifest(tmp_path / "multirun" / "a", cells)
    single = tmp_path / "crag" / "virchow2" / "full" / "seed0"
    single.mkdir(parents=True)
    (single / "config.yaml").write_text(
        "seed: 0\ndataset: {name: crag}\nmodel: {name: virchow2}\nadapter: {name: full}\n"
    )
    (single / "metrics.json").write_text(json.dumps({"status": "complete", "run": {"overrides": ["model=virchow2"]}}))
    assert main_status(tmp_path) == 0
    out = capsys.readouterr().out
    assert "2 cells" in out and "glas · uni" in out and "crag · virchow2" in out and "done 1" in out


def main_status(path: Path) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["status", str(path)])
    return exit_info.value.code
