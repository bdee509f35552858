"""Results, the report, `evaluate`, secrets and sweeps: a bad results file is named and skipped, every
user string is escaped in the HTML, `evaluate` checks its arguments before its files, HF_TOKEN is
written nowhere, and a failing sweep cell is recorded while the others finish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.cases import Case, line
from tests.reliability.conftest import RUN, TOKEN, assert_one_line_error, cli, save

SKIPPED = "report exits 0, names the file and why, and reports the good run"
CASES = [
    Case("truncated-metrics", "results", "a truncated metrics.json among finished runs", SKIPPED),
    Case("foreign-metrics", "results", "a metrics.json of another tool (a JSON list)", SKIPPED),
    Case("schema-version-2", "results", "a metrics.json of schema_version 2 beside version 1", SKIPPED),
    Case(
        "html-escaping",
        "report",
        "class, dataset and model names and run tags holding `<script>`",
        "report.html holds them escaped (`&lt;script&gt;`), never as markup",
    ),
    Case(
        "evaluate-num-classes-0",
        "evaluate",
        "`--num-classes 0`",
        line("--num-classes 0", "1..255"),
        ("--num-classes 0", "1..255"),
    ),
    Case(
        "evaluate-missing-prediction",
        "evaluate",
        "a ground-truth file without a prediction",
        line("have no prediction", "g1"),
        ("have no prediction", "g1"),
    ),
    Case(
        "evaluate-extra-prediction",
        "evaluate",
        "a prediction without ground truth",
        line("have no ground truth", "extra"),
        ("have no ground truth", "extra"),
    ),
    Case(
        "evaluate-mis-sized",
        "evaluate",
        "a prediction of another size",
        line("g0.png", "differs from ground truth"),
        ("g0.png", "differs from ground truth"),
    ),
    Case(
        "evaluate-label-too-large",
        "evaluate",
        "a label >= --num-classes",
        line("g0", "--num-classes"),
        ("g0", "--num-classes"),
    ),
    Case(
        "hf-token",
        "secrets",
        "`HF_TOKEN` set for a run, a failed run and the report",
        "no file written (outputs, logs, config dumps, error records, report) and no output line holds the token",
    ),
    Case(
        "failing-sweep-cell",
        "sweeps",
        "one cell of a multirun with a bad value",
        "the other cell finishes, the failure is in its error.json and `densebench status`; the rerun skips "
        "the finished cell and retries only the failed one",
    ),
]
BY_ID = {c.id: c for c in CASES}


@pytest.fixture
def results_tree(finished_run, tmp_path) -> Path:
    """A results folder holding the shared finished run (copied)."""
    _, run_dir, _ = finished_run
    root = tmp_path / "results"
    shutil.copytree(run_dir, root / "synthetic" / "demo_vit" / "frozen" / run_dir.name)
    return root


def _bad_run(root: Path, name: str, text: str) -> Path:
    path = root / "synthetic" / "demo_vit" / "lora" / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", ["truncated-metrics", "foreign-metrics", "schema-version-2"])
def test_a_bad_metrics_json_is_named_and_the_rest_is_reported(case, results_tree, finished_run, tmp_path, capsys):
    good = json.dumps(finished_run[2])
    text = {
        "truncated-metrics": good[: len(good) // 2],
        "foreign-metrics": "[1, 2, 3]",
        "schema-version-2": json.dumps({**finished_run[2], "schema_version": 2}),
    }[case]
    bad = _bad_run(results_tree, "seed7", text)
    code, _, err = cli(
        capsys, "report", str(results_tree), "--out", str(tmp_path / "rep"), "--format", "md,json", "--no-plots"
    )
    assert code == 0, err
    document = json.loads((tmp_path / "rep" / "report.json").read_text())
    text = json.dumps(document)
    assert str(bad.parent) in text and "seed7" in text  # the bad file is named ...
    assert document["counts"]["runs"]["results"] == 1  # ... and the good run is in the report


def test_every_user_string_is_escaped_in_the_html_report(results_tree, tmp_path, capsys):
    evil = "<script>alert(1)</script>"
    (path,) = results_tree.rglob("metrics.json")
    doc = json.loads(path.read_text())
    doc["data"]["class_names"] = [f"{evil}{c}" for c in doc["data"]["class_names"]]
    doc["test"]["per_class"] = {f"{evil}{k}": v for k, v in doc["test"]["per_class"].items()}
    doc["run"]["dataset"] = doc["config"]["dataset"]["name"] = f"ds{evil}"
    doc["run"]["model"] = doc["config"]["model"]["name"] = doc["model"]["name"] = f"m{evil}"
    doc["model"]["display_name"] = f"M{evil}"
    doc["run"]["overrides"] = [*doc["run"]["overrides"], f"+tag={evil}"]
    path.write_text(json.dumps(doc))
    code, _, err = cli(
        capsys,
        "report",
        str(results_tree),
        "--out",
        str(tmp_path / "rep"),
        "--format",
        "html",
        "--no-plots",
        "--per-class",
        f"ds{evil}",
    )
    assert code == 0, err
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _evaluate_tree(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(2):
        save(tmp_path / "gt" / f"g{i}.png", np.full((16, 16), i % 2, np.uint8))
        save(tmp_path / "pred" / f"g{i}.png", np.full((16, 16), 1, np.uint8))
    return tmp_path / "pred", tmp_path / "gt"


EVALUATE = {
    "evaluate-num-classes-0": (lambda pred, gt: (pred / "g1.png").unlink(), ["--num-classes", "0"]),
    "evaluate-missing-prediction": (lambda pred, gt: (pred / "g1.png").unlink(), ["--num-classes", "2"]),
    "evaluate-extra-prediction": (
        lambda pred, gt: save(pred / "extra.png", np.ones((16, 16), np.uint8)),
        ["--num-classes", "2"],
    ),
    "evaluate-mis-sized": (lambda pred, gt: save(pred / "g0.png", np.ones((8, 16), np.uint8)), ["--num-classes", "2"]),
    "evaluate-label-too-large": (
        lambda pred, gt: save(gt / "g0.png", np.full((16, 16), 5, np.uint8)),
        ["--num-classes", "2"],
    ),
}


@pytest.mark.parametrize("case", list(EVALUATE))
def test_evaluate_names_the_argument_or_file_in_one_line(case, tmp_path, capsys):
    pred, gt = _evaluate_tree(tmp_path)
    damage, args = EVALUATE[case]
    damage(pred, gt)  # --num-classes 0 is named even though a prediction is missing too
    code, _, err = cli(capsys, "evaluate", "--pred", str(pred), "--gt", str(gt), "--n-bootstrap", "10", *args)
    assert_one_line_error(code, err, *BY_ID[case].needles)


def test_hf_token_is_written_nowhere(finished_run, tmp_path, capsys, monkeypatch):
    """The shared run ran with HF_TOKEN set (conftest); a failed run and the report run with it here."""
    _, run_dir, _ = finished_run
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    failed_code, out1, err1 = cli(
        capsys,
        "run",
        *[o for o in RUN if not o.startswith("model.variant")],
        "model.pretrained=true",
        f"model.weights={tmp_path / 'nope.pt'}",
        f"output_dir={tmp_path / 'failed'}",
    )
    report_code, out2, err2 = cli(capsys, "report", str(run_dir.parents[3]), "--out", str(tmp_path / "rep"))
    assert failed_code == 2 and report_code == 0, err2
    written = [p for root in (run_dir.parents[3], tmp_path) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "error.json" for p in written) and any(p.name == "report.html" for p in written)
    assert len(written) > 15
    leaks = [str(p) for p in written if TOKEN.encode() in p.read_bytes()]
    assert leaks == [] and TOKEN not in out1 + err1 + out2 + err2


def test_a_failing_sweep_cell_is_recorded_and_only_it_is_retried(tmp_path, capsys):
    args = ["run", "-m", *RUN, "train.epochs=1", f"output_dir={tmp_path}", "eval.overlap=0.5,1.0"]
    code, _, err = cli(capsys, *args)
    assert code == 1 and "eval.overlap=1.0 is not valid" in err  # the sweep says a cell failed
    (done,) = tmp_path.rglob("metrics.json")
    (error_file,) = tmp_path.rglob("error.json")
    assert json.loads(error_file.read_text())["type"] == "ConfigError"
    assert not (error_file.parent / "splits.json").exists()  # failed before its data was listed
    code, out, _ = cli(capsys, "status", str(tmp_path))
    assert "done 1" in out and "failed 1" in out and "eval.overlap=1.0 is not valid" in out
    stamp, failed_stamp = done.stat().st_mtime_ns, error_file.stat().st_mtime_ns
    code, out, err = cli(capsys, *args)
    assert "Skipping 1 finished" in out and "launching 1 of 2" in out
    assert done.stat().st_mtime_ns == stamp and error_file.stat().st_mtime_ns > failed_stamp
