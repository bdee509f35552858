"""Data identity: a finished or unfinished run answers only for the data it ran on. `dataset.root`
is not part of the run directory (moving a release keeps its runs), so the data's content fingerprint
is compared instead: other data is one line naming the run and both folders; the same data moved is
still the finished run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.reliability.cases import Case, line
from tests.reliability.conftest import (
    assert_one_line_error,
    cli,
    folder_run,
    make_folder,
    save,
)

CASES = [
    Case(
        "other-root",
        "data identity",
        "a finished `dataset=folder` run, then `dataset.root` at other images",
        line("other data", "both dataset.root values", "force=true"),
        ("other data", "force=true"),
    ),
    Case(
        "edited-in-place",
        "data identity",
        "a finished run whose mask files were edited in place",
        line("other data", "force=true"),
        ("other data", "force=true"),
    ),
    Case(
        "moved-root",
        "data identity",
        "a finished run, then the same files under another `dataset.root`",
        "exit 0, `already finished`: the finished run is returned",
    ),
    Case(
        "sweep-other-root",
        "data identity",
        "a multirun over a finished cell with another `dataset.root`",
        "the cell is launched, not skipped as finished, and refuses the other data (its error in the log)",
    ),
    Case(
        "duplicate-override",
        "data identity",
        "a key given twice (`train.lr=0.1 train.lr=0.2`)",
        "the run directory is that of its last value, as Hydra applies it and a sweep cell names it",
    ),
    Case(
        "resume-other-data",
        "data identity",
        "an unfinished run resumed with `dataset.root` at other images",
        line("unfinished run on other data", "force=true"),
        ("unfinished run on other data", "force=true"),
    ),
]


@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
    """One finished tiny run on a folder dataset (its root, output dir) and a second, different folder."""
    from densebench.config import compose
    from densebench.engine.train import execute
    from densebench.runs import preempt

    base = tmp_path_factory.mktemp("fp")
    root, other = make_folder(base / "a", seed=0), make_folder(base / "b", seed=1)
    overrides = folder_run(root, base / "out")
    with preempt.handling():
        execute(compose(overrides), overrides)
    return root, other, base / "out"


def _output(out, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy


def test_a_finished_run_is_not_the_answer_for_another_folder(folder_runs, tmp_path, capsys):
    root, other, out = folder_runs
    code, _, err = cli(capsys, "run", *folder_run(other, _output(out, tmp_path)))
    line_ = assert_one_line_error(code, err, "other data", "force=true")
    assert f"dataset.root={root}" in line_ and f"now dataset.root={other}" in line_


def test_a_finished_run_whose_files_were_edited_in_place_is_refused(folder_runs, tmp_path, capsys):
    root, _, out = folder_runs
    edited = tmp_path / "a"
    shutil.copytree(root, edited)
    outputs = _output(out, tmp_path)
    for path in outputs.rglob("metrics.json"):  # the same place as recorded: only the contents differ
        doc = json.loads(path.read_text())
        doc["config"]["dataset"]["root"] = str(edited)
        path.write_text(json.dumps(doc))
    save(edited / "masks" / "test" / "s0.png", np.zeros((48, 48), np.uint8))
    code, _, err = cli(capsys, "run", *folder_run(edited, outputs))
    assert_one_line_error(code, err, "other data", f"dataset.root={edited};", "force=true")


def test_the_same_files_under_another_root_are_still_the_finished_run(folder_runs, tmp_path, capsys):
    root, _, out = folder_runs
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    code, out_text, err = cli(capsys, "run", *folder_run(moved, _output(out, tmp_path)), "progress=plain")
    assert code == 0 and "already finished" in out_text, err


def test_an_unfinished_run_does_not_resume_on_other_data(folder_runs, tmp_path, capsys):
    _, other, out = folder_runs
    outputs = _output(out, tmp_path)
    (metrics,) = outputs.rglob("metrics.json")
    metrics.unlink()  # unfinished: checkpoints/last.pt and data.json remain
    code, _, err = cli(capsys, "run", *folder_run(other, outputs))
    assert_one_line_error(code, err, "unfinished run on other data", "force=true")


def test_a_sweep_launches_a_finished_cell_whose_root_changed_and_it_refuses_other_data(folder_runs, tmp_path, capsys):
    _, other, out = folder_runs
    outputs = _output(out, tmp_path)
    code, stdout, err = cli(capsys, "run", "-m", *folder_run(other, outputs), "seed=0")
    assert code == 1 and "Launching 1 jobs" in stdout and "Skipping" not in stdout, stdout[
        -3000:
    ]  # not skipped; the cell fails
    assert "other data" in err and "force=true" in err, [str(p) for p in outputs.rglob("*.json")]


def test_a_key_given_twice_names_the_run_directory_by_its_last_value():
    from omegaconf import OmegaConf

    from densebench.runs.rundir import run_dir

    cfg = OmegaConf.create(
        {"output_dir": "o", "seed": 0, "dataset": {"name": "d"}, "model": {"name": "m"}, "adapter": {"name": "a"}}
    )
    assert run_dir(cfg, ["train.lr=0.1", "train.lr=0.2"]) == run_dir(cfg, ["train.lr=0.2"])
    assert run_dir(cfg, ["train.lr=0.2", "train.lr=0.1"]) != run_dir(cfg, ["train.lr=0.2"])
