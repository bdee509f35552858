"""Every launcher the README shows works after the install the README gives for it: joblib after a
plain `pip install -e .` (a base dependency), submitit_* after `pip install -e ".[slurm]"`."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
# launcher config name -> the distribution that provides its Hydra plugin
PLUGIN = {
    "joblib": "hydra-joblib-launcher",
    "submitit_slurm": "hydra-submitit-launcher",
    "submitit_local": "hydra-submitit-launcher",
}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_every_launcher_in_the_readme_is_installed_by_the_readme_s_install() -> None:
    readme = (REPO / "README.md").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = _names(project["dependencies"])
    extras = {k: _names(v) for k, v in project["optional-dependencies"].items()}
    launchers = set(re.findall(r"hydra/launcher=(\w+)", readme))
    assert launchers, "the README shows no launcher: this test would check nothing"
    for launcher in sorted(launchers):
        plugin = PLUGIN[launcher]
        if plugin in base:
            continue
        # otherwise the README must install an extra that holds it before it first shows the launcher
        first_use = readme.index(f"hydra/launcher={launcher}")
        installs = re.findall(r'pip install -e "?\.\[(\w+)\]', readme[:first_use])
        assert any(plugin in extras.get(extra, set()) for extra in installs), (
            f"hydra/launcher={launcher} needs {plugin}, which neither the base install nor an extra the README "
            "installs before it provides"
        )


def test_hydra_finds_the_joblib_launcher_plugin() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    assert "JoblibLauncher" in {cls.__name__ for cls in Plugins.instance().discover(Launcher)}
