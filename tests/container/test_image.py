"""The image from docker/Dockerfile carries the torch the tests use and this checkout's code, and runs
the CLI, the demo (as a non-root uid, results owned by that uid and equal to the host's) and a
submitit grid. Built once per session by conftest.py; run with `-m container` (.ci/run does)."""

from __future__ import annotations

import inspect
import json
import os
import re

import pytest

from densebench.cli import COMMANDS
from tests.conftest import FAST, REPO, densebench
from tests.sweeps import TINY

pytestmark = pytest.mark.container

UID = "4321:4321"  # a non-root uid with no /etc/passwd entry in the image


def readme_pins() -> tuple[str, str]:
    """The torch/torchvision versions every install command in README.md pins (all the same)."""
    pins = set(re.findall(r"torch==(\S+) torchvision==(\S+)", (REPO / "README.md").read_text()))
    assert len(pins) == 1, f"README.md pins several torch versions: {pins}"
    return pins.pop()


def tree_digest(root) -> dict[str, str]:
    """sha256 of each file under root but caches and pip's egg-info; self-contained, as it also runs in the image."""
    import hashlib
    from pathlib import Path

    root = Path(root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
    }


def test_image_torch_is_the_readme_pin(podman):
    proc = podman.run(
        "-c",
        "import importlib.metadata as m, torch; print(m.version('torch'), m.version('torchvision'),"
        " torch.__version__, torch.version.cuda)",
        entrypoint="python",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    torch_v, vision_v, build, cuda = proc.stdout.split()
    print(f"image torch {build} (CUDA {cuda}), torchvision {vision_v}")
    assert (torch_v, vision_v) == readme_pins()


def test_image_carries_this_checkouts_code_and_configs(podman):
    script = inspect.getsource(tree_digest) + (
        "import json, pathlib, densebench, densebench.config as c\n"
        "print(json.dumps([tree_digest(pathlib.Path(densebench.__file__).parents[1]), tree_digest(c.config_dir())]))"
    )
    proc = podman.run("-c", script, entrypoint="python")
    assert proc.returncode == 0, proc.stderr[-3000:]
    src, configs = json.loads(proc.stdout)
    assert src == tree_digest(REPO / "src")
    assert configs == tree_digest(REPO / "configs")


def test_help_lists_every_command(podman):
    proc = podman.run("--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: densebench")
    assert [name for name in COMMANDS if f"  {name} " not in proc.stdout] == []


def test_models_lists_every_backbone_config(podman):
    proc = podman.run("models", env=("COLUMNS=300",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.stem for p in (REPO / "configs" / "model").glob("*.yaml"))
    assert [name for name in names if f" {name} " not in proc.stdout] == []


def test_hf_settings_pass_through_and_no_token_is_baked_in(podman):
    proc = podman.run(
        "-c",
        "from huggingface_hub import constants as c, get_token;"
        " print(c.HF_HUB_OFFLINE, c.HF_HOME, get_token() == 'hf_test_token')",
        entrypoint="python",
        env=("HF_HUB_OFFLINE=1", "HF_TOKEN=hf_test_token"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "/weights/hf", "True"]
    inspect = podman.inspect()
    assert "HF_TOKEN" not in inspect


def test_demo_as_non_root_uid_writes_its_results_owned_by_it_equal_to_the_hosts(podman, tmp_path):
    uid, gid = (int(x) for x in UID.split(":"))
    inside = tmp_path / "inside"
    inside.mkdir()
    os.chown(inside, uid, gid)  # the user's own folder, mounted as /outputs
    proc = podman.run("run", *FAST, user=UID, volumes=(f"{inside}:/outputs",))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    host = densebench("run", *FAST, f"output_dir={tmp_path / 'host'}", timeout=900)
    assert host.returncode == 0, host.stderr[-3000:]

    (metrics,) = inside.rglob("metrics.json")
    (host_metrics,) = (tmp_path / "host").rglob("metrics.json")
    assert [str(p) for p in [inside, *inside.rglob("*")] if (p.stat().st_uid, p.stat().st_gid) != (uid, gid)] == []
    ran, expected = json.loads(metrics.read_text()), json.loads(host_metrics.read_text())
    assert ran["status"] == "complete" and ran["device"]["torch"] == expected["device"]["torch"]
    print(
        f"test Mean_Dice inside {ran['test']['metrics']['Mean_Dice']:.4f}, "
        f"host {expected['test']['metrics']['Mean_Dice']:.4f}"
    )
    assert ran["test"] == expected["test"]


def test_smoke_grid_runs_with_submitit_local_inside_as_non_root_uid(podman):
    # No mount: the grid writes into the image's /outputs volume, which any uid may write.
    script = (
        "import glob, json, subprocess, sys\n"
        "subprocess.run(['densebench', 'run', '-m', 'experiment=smoke', 'hydra/launcher=submitit_local',"
        " *sys.argv[1:]], check=True, stdout=sys.stderr)\n"
        "runs = [json.load(open(p)) for p in glob.glob('/outputs/synthetic/demo_vit/*/*/metrics.json')]\n"
        "print(json.dumps(sorted([r['run']['adapter'], r['run']['seed'], r['status']] for r in runs)))"
    )
    proc = podman.run("-c", script, *TINY, "train.epochs=1", user=UID, entrypoint="python")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == [
        ["frozen", 0, "complete"],
        ["frozen", 1, "complete"],
        ["full", 0, "complete"],
        ["full", 1, "complete"],
    ]
