"""`densebench run` end to end: learning, run directories, resume, skip, errors, multirun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from densebench.errors import ConfigError
from densebench.metrics import summary
from tests.conftest import FAST, REPO, densebench


def run_ok(tmp_path, *overrides, timeout=300):
    proc = densebench("run", f"output_dir={tmp_path}", *FAST, *overrides, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def metrics_files(root):
    return sorted(root.rglob("metrics.json"))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo configuration, smaller: default model (demo_vit), adapter, dataset and train preset."""
    out = tmp_path_factory.mktemp("demo")
    proc = densebench(
        "run",
        f"output_dir={out}",
        "dataset.n_train=16",
        "dataset.n_val=4",
        "dataset.n_test=6",
        "dataset.min_size=64",
        "dataset.max_size=96",
        "dataset.min_side=64",
        "train.epochs=6",
        "train.batch_size=4",
        "eval.bootstrap.n=200",
        "progress=plain",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = metrics_files(out)
    return proc, json.loads(path.read_text()), path.parent


def test_demo_learns_well_above_an_all_background_prediction(demo_run):
    _, record, run = demo_run
    cms = torch.from_numpy(np.load(run / "confusion_per_image.npz")["cm"]).sum(0)
    background_only = torch.zeros_like(cms)
    background_only[:, 0] = cms.sum(1)
    trivial = float(summary(background_only)["Mean_Dice"])
    assert record["test"]["metrics"]["Mean_Dice"] > trivial + 0.25


def test_demo_prints_a_result_table_and_the_metrics_path(demo_run):
    proc, _, run = demo_run
    assert "Mean_Dice" in proc.stdout and str(run / "metrics.json") in proc.stdout


def test_demo_ends_with_the_next_command(demo_run):
    proc, _, run = demo_run
    assert proc.stdout.strip().splitlines()[-1].startswith(f"next: densebench report {run.parents[3]}")


def test_metrics_json_carries_the_documented_blocks(demo_run):
    _, record, run = demo_run
    assert record["schema_version"] == 1 and record["status"] == "complete"
    assert {"run", "code", "config", "data", "model", "test", "val", "timing", "memory", "device"} <= set(record)
    assert record["data"]["sizes"] == {"train": 16, "val": 4, "test": 6}
    assert record["model"]["params"]["backbone_trainable"] == 0
    assert record["model"]["pretrained"] is False
    assert record["device"]["runtime"] == {"cpu_linear": "onednn", "channels_last": True}
    boot = record["test"]["bootstrap"]["metrics"]["Mean_Dice"]
    assert boot["ci_lower"] <= boot["mean"] <= boot["ci_upper"]
    assert set(record["test"]["per_class"]) == {"stroma", "nucleus", "lumen"}
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "best.pt").is_file()
    assert len((run / "log.jsonl").read_text().splitlines()) == 6


def test_run_directory_follows_from_identity_and_other_overrides(tmp_path):
    from omegaconf import OmegaConf

    from densebench.runs.rundir import run_dir

    cfg = OmegaConf.create(
        {"output_dir": "out", "seed": 1, "dataset": {"name": "d"}, "model": {"name": "m"}, "adapter": {"name": "a"}}
    )
    assert run_dir(cfg, ["model=m", "seed=1"]).as_posix() == "out/d/m/a/seed1"
    a = run_dir(cfg, ["train.epochs=5", "train.lr=0.1"])
    assert a == run_dir(cfg, ["train.lr=0.1", "train.epochs=5"]) != run_dir(cfg, ["train.epochs=6", "train.lr=0.1"])
    assert run_dir(cfg, ["force=true", "progress=none", "dataset.root=/x"]).as_posix() == "out/d/m/a/seed1"


def test_a_finished_run_is_skipped_a_changed_unfinished_one_refused_and_force_reruns(tmp_path):
    run_ok(tmp_path)
    (path,) = metrics_files(tmp_path)
    first = path.read_text()
    assert "already finished" in run_ok(tmp_path).stdout
    assert path.read_text() == first
    path.unlink()  # unfinished again, but its saved config now differs from the command line
    saved = path.parent / "config.yaml"
    saved.write_text(saved.read_text().replace("lr: 0.002", "lr: 0.5"))
    proc = densebench("run", f"output_dir={tmp_path}", *FAST)
    assert proc.returncode == 2 and "different config" in proc.stderr
    run_ok(tmp_path, "force=true")
    assert json.loads(path.read_text())["status"] == "complete"


@pytest.mark.parametrize("start", ["forkserver", "fork"])
def test_loader_workers_do_not_change_results(tmp_path, start):
    inline = run_ok(tmp_path / "inline")
    workers = run_ok(tmp_path / start, "train.num_workers=2", f"train.worker_start={start}")
    (a,), (b,) = metrics_files(tmp_path / "inline"), metrics_files(tmp_path / start)
    assert json.loads(a.read_text())["test"]["metrics"] == json.loads(b.read_text())["test"]["metrics"]
    assert inline.returncode == workers.returncode == 0


def test_unknown_worker_start_is_one_config_error():
    from densebench.data.dataset import worker_context

    with pytest.raises(ConfigError, match=r"train.worker_start=threads: this platform offers .*forkserver"):
        worker_context("threads")


def test_a_killed_run_resumes_and_ends_with_the_uninterrupted_result(tmp_path):
    args = ["run", *FAST, "train.epochs=3", "dataset.n_train=12"]
    reference = densebench(*args, f"output_dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "killed"
    env = {"PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "densebench", *args, f"output_dir={out}"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not any(p.read_text().strip() for p in out.rglob("log.jsonl")):  # epoch 1 done
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (log,) = list(out.rglob("log.jsonl"))
    assert 1 <= len(log.read_text().splitlines()) < 3 and not metrics_files(out)
    resumed = densebench(*args, f"output_dir={out}")
    assert resumed.returncode == 0 and "resuming" in resumed.stdout
    ref = json.loads(metrics_files(tmp_path / "ref")[0].read_text())
    got = json.loads(metrics_files(out)[0].read_text())
    assert got["test"]["metrics"] == ref["test"]["metrics"]
    assert len(log.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    "override,expected",
    [
        ("model=nope", "unknown model 'nope'; known: "),
        ("model=unii", "unknown model 'unii'; did you mean model=uni? known: "),
        (
            "trian.epochs=1",
            "unknown key 'trian.epochs' in 'trian.epochs=1'; did you mean train.epochs? (train.epochs=1)",
        ),
        ("+trian.epochs=1", "did you mean train.epochs?"),
        ("modle=uni", "unknown key 'modle' in 'modle=uni'; did you mean model? (model=uni)"),
        ("zzz_unrelated=1", "to add a new key on purpose write +zzz_unrelated=1"),
        ("dataset=nope", "unknown dataset 'nope'"),
        ("adapter=nope", "unknown adapter 'nope'"),
        ("input_size=100", "input_size=100 is not a multiple of demo_vit's patch size 8; use 96 or 104"),
        ("train.epochs=0", "train.epochs=0 is not valid: must be an integer >= 1"),
    ],
)
def test_bad_overrides_end_with_one_clear_line(tmp_path, override, expected, capsys):
    from densebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", f"output_dir={tmp_path}", *FAST, override])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_failed_single_run_records_its_error_for_status(tmp_path, capsys):
    from densebench.cli import main

    with pytest.raises(SystemExit):
        main(
            [
                "run",
                f"output_dir={tmp_path}",
                "model.pretrained=true",
                f"model.weights={tmp_path}/nope.pt",
                *[o for o in FAST if not o.startswith("model.variant")],
            ]
        )
    (error,) = tmp_path.rglob("error.json")
    assert json.loads(error.read_text())["type"] == "WeightsError"


def test_missing_weights_file_names_the_option(tmp_path, capsys):
    from densebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "run",
                f"output_dir={tmp_path}",
                "model.pretrained=true",
                f"model.weights={tmp_path}/nope.pt",
                *[o for o in FAST if not o.startswith("model.variant")],
            ]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "model.weights" in err and "Traceback" not in err


def test_multirun_runs_every_cell(tmp_path):
    proc = densebench("run", "--multirun", f"output_dir={tmp_path}", *FAST, "adapter=frozen,full", "train.epochs=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [p.parent.parent.name for p in metrics_files(tmp_path)] == ["frozen", "full"]


def test_cfg_job_prints_the_composed_config_without_running(tmp_path, capsys):
    from densebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--cfg", "job", "model.variant=tiny", f"output_dir={tmp_path}"])
    assert exit_info.value.code == 0 and "variant: tiny" in capsys.readouterr().out and not metrics_files(tmp_path)


def test_bad_data_found_in_a_loader_worker_is_still_one_line(tmp_path):
    from PIL import Image

    for i in range(10):
        for sub, array in (
            ("images", np.full((48, 48, 3), 90, np.uint8)),
            ("masks", np.full((48, 48), i % 2, np.uint8)),
        ):
            (tmp_path / "d" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(tmp_path / "d" / sub / f"t{i}.png")
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(tmp_path / "d" / "masks" / "t3.png")  # class 7 of 2
    proc = densebench(
        "run",
        f"output_dir={tmp_path / 'out'}",
        "model.variant=tiny",
        "train.epochs=1",
        "train.batch_size=4",
        "progress=none",
        "dataset=folder",
        f"dataset.root={tmp_path / 'd'}",
        "dataset.min_side=48",
        "dataset.split=paper",
        "train.num_workers=2",
        "cache_dir=null",
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and "t3.png: label values [7] are outside classes 0..1" in lines[0]


def test_a_worker_traceback_is_reduced_to_its_message():
    from densebench.errors import DataError, one_line

    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\ndensebench.errors.DataError: a.png: bad label: 7\n'
    )
    assert one_line(wrapped) == "a.png: bad label: 7"
    assert one_line(DataError("plain: message")) == "plain: message"
