"""The package's shape: every module imports on its own (no import cycles) and imports follow the layers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src"
PACKAGE = SRC / "densebench"
SWEEPER = "hydra_plugins.densebench_sweeper.densebench_sweeper"  # Hydra's plugin, outside the package

# What each part of densebench may import (besides itself). Lower layers first: the foundations, then
# data/metrics/models, then runs and the training engine, then benchmarks, then the analyses and reports,
# then the command line. A part not listed here fails `test_every_part_has_a_place_in_the_layers`.
BASE = {"errors", "files", "registry", "config", "fastpath", "names", "__init__"}
MODELS = {"backbones", "adapters", "decoders", "model"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "files": {"errors"},
    "registry": {"errors"},
    "config": {"errors", "settings"},  # compose() validates through settings (imported when called)
    # settings reads each option list from the module that defines it (losses' names, precisions, presets)
    "settings": BASE | {"data", "metrics", "engine"},
    "fastpath": {"errors"},
    "names": {"errors", "config"},
    "__init__": set(),
    "metrics": BASE,
    "data": BASE,
    "backbones": BASE,
    "decoders": BASE,
    "adapters": BASE | {"backbones"},
    "model": BASE | MODELS,
    "runs": BASE,
    "engine": BASE | MODELS | {"settings", "data", "metrics", "runs"},
    "bench": BASE | MODELS | {"settings", "data", "metrics", "runs", "engine"},
    "predict": BASE | MODELS | {"settings", "data", "metrics", "runs", "engine"},
    "report": BASE | MODELS | {"settings", "data", "metrics", "runs", "engine", "bench"},
    "analysis": BASE | MODELS | {"settings", "data", "metrics", "runs", "engine", "bench", "report"},
    "cli": {"errors", "config"},  # takes --config-dir, then dispatches to the subcommands by module name
    "__main__": {"cli"},
}


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def part_of(module: str) -> str:
    """`densebench.engine.train` → engine; `densebench` (the package's __init__) → __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """Every densebench module `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "densebench" or name.startswith("densebench.")}


# Runs in a fresh interpreter: the third-party modules densebench imports are imported once (argv[1], comma
# separated), then each densebench module is imported in its own forked child that holds no densebench module
# yet, so a cycle that an earlier import would hide still fails, and ~100 modules take seconds, not minutes.
IMPORT_EACH = """
import importlib, os, sys, traceback
for dep in sys.argv[1].split(","):
    try:
        importlib.import_module(dep)
    except Exception:
        pass  # not a module (a name imported from one), or optional: the child's import reports what matters
assert not [m for m in sys.modules if m.split(".")[0] == "densebench"]
failed = []
for name in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
            code = 1
        os._exit(code)
    os.close(write)
    message = os.fdopen(read).read()
    if os.waitpid(pid, 0)[1]:
        failed.append(f"{name}: {message}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def third_party() -> str:
    """Every module outside densebench that src/ imports (and `package.name` for `from package import name`)."""
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return ",".join(sorted(n for n in found if n.split(".")[0] not in ("densebench", "hydra_plugins")))


def test_every_module_imports_on_its_own():
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_ALBUMENTATIONS_UPDATE": "1"}
    argv = [sys.executable, "-c", IMPORT_EACH, third_party(), *modules(), SWEEPER]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_part_has_a_place_in_the_layers():
    assert sorted({part_of(m) for m in modules()} - set(ALLOWED)) == []


def violations(path: Path, here: str) -> list[str]:
    """Imports of `path` (a module of part `here`) that its layer does not allow."""
    return [
        f"{path.name} imports {name} ({here} may not import {part_of(name)})"
        for name in sorted(imports(path))
        if part_of(name) != here and part_of(name) not in ALLOWED[here]
    ]


def test_imports_follow_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        wrong += violations(path, part_of(".".join(parts if parts[-1] != "__init__" else parts[:-1])))
    assert wrong == []


def test_nothing_but_the_entry_point_imports_the_cli():
    users = [
        str(p.relative_to(REPO))
        for p in sorted(PACKAGE.rglob("*.py"))
        if "densebench.cli" in imports(p) and p.name != "__main__.py"
    ]
    assert users == []


def test_an_engine_module_importing_the_report_is_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nfrom densebench.engine import ddp\n\ndef f():\n    from densebench.report.plots import save_figure\n"
    )
    assert violations(bad, "engine") == ["bad.py imports densebench.report.plots (engine may not import report)"]


def test_the_import_check_reports_a_cycle(tmp_path):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, "json", "cyclic.a"], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 1 and "cyclic.a: ImportError" in proc.stdout
