"""docker/Dockerfile built with podman once per session, then run the ways users run it (issue 23).

Marked `container` and left out of the default run (a cold build takes minutes); .ci/run runs these
after the main suite: `python -m pytest -q -rfE -m container tests/container`. Where podman cannot run,
every test here skips, and the summary says why in one line.

No container registry is reachable from our machines, so the Dockerfile's base is made here from the
Debian archive (mmdebstrap, minbase bookworm, as debian:bookworm-slim is) and passed as BASE_IMAGE.
Two facts of this machine go into this build only, never into the Dockerfile: the CA bundle pip is
configured with (pip behind our TLS proxy needs it) is baked into that local base, and pip's local
wheel stores (its find-links folders and file:// indexes) are mounted read-only into the build with a
pip.conf naming them, so pip installs torch's 3 GB of wheels from disk instead of PyPI.
"""

from __future__ import annotations

import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO

IMAGE = "localhost/densebench:ci"
BASE = "localhost/densebench-ci-base:bookworm-slim"
DEBIAN = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]
REPORT: list[str] = []  # facts printed after the run (image size, build time)


def pytest_terminal_summary(terminalreporter) -> None:
    for line in REPORT:
        terminalreporter.write_line(f"container: {line}")


# runc: the OCI runtime that works on our machines (Debian's podman may pick crun).
PODMAN = ["podman", "--runtime", "runc"]


def run_flags() -> list[str]:
    """Host networking, and ulimits within this process's own: podman's default nofile exceeds our hard limit."""

    def cap(kind: int, most: int) -> int:
        soft = resource.getrlimit(kind)[0]
        return most if soft == resource.RLIM_INFINITY else min(soft, most)

    nofile, nproc = cap(resource.RLIMIT_NOFILE, 65536), cap(resource.RLIMIT_NPROC, 4096)
    return ["--network", "host", "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def pip_settings() -> dict[str, list[str]]:
    """pip's configured values on this machine (env, global, user files), by option name."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    settings: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        # Lists are space-separated inside one quoted value: 'file:///a/simple file:///b/simple'.
        settings.setdefault(key.rsplit(".", 1)[-1], []).extend(" ".join(shlex.split(value)).split())
    return settings


def local_wheel_stores(settings: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """pip's find-links folders and file:// indexes that exist here: (pip.conf lines, folders to mount)."""
    links = [p for p in dict.fromkeys(settings.get("find-links", [])) if Path(p).is_dir()]
    indexes = [
        u
        for u in dict.fromkeys(settings.get("extra-index-url", []))
        if u.startswith("file://") and Path(urlparse(u).path).is_dir()
    ]
    # A file:// index's pages link to ../../files/: mount the folder above `simple/`.
    mounts = links + [str(Path(urlparse(u).path).parent) for u in indexes]
    lines = ["[global]"]
    if links:
        lines.append("find-links = " + " ".join(links))
    if indexes:
        lines.append("extra-index-url = " + " ".join(indexes))
    return lines, mounts


@dataclass
class Podman:
    """podman with the flags our machines need; `run` starts a container of the built image."""

    image: str = IMAGE

    def run(
        self,
        *args: str,
        user: str | None = None,
        volumes: tuple[str, ...] = (),
        env: tuple[str, ...] = (),
        entrypoint: str | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess:
        cmd = [*PODMAN, "run", "--rm", *run_flags()]
        if user:  # --passwd=false: no /etc/passwd entry for the uid, as under Docker
            cmd += ["--user", user, "--passwd=false"]
        for volume in volumes:
            cmd += ["-v", volume]
        for var in env:
            cmd += ["-e", var]
        if entrypoint:
            cmd += ["--entrypoint", entrypoint]
        return subprocess.run([*cmd, self.image, *args], capture_output=True, text=True, timeout=timeout)

    def inspect(self) -> str:
        """The image's configuration and the commands of its layers, as text."""
        config = subprocess.run([*PODMAN, "image", "inspect", self.image], capture_output=True, text=True)
        history = subprocess.run(
            [*PODMAN, "history", "--no-trunc", "--format", "{{.CreatedBy}}", self.image], capture_output=True, text=True
        )
        assert config.returncode == 0 and history.returncode == 0, config.stderr + history.stderr
        return config.stdout + history.stdout


def image_id(name: str) -> str | None:
    proc = subprocess.run([*PODMAN, "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def not_run(why: str) -> NoReturn:
    """Skip every container test; the summary says why in one line (.ci/run hides pytest's per-test lines)."""
    REPORT.append(f"NOT RUN: {why}")
    pytest.skip(f"container tests not run: {why}")


def make_base(settings: dict[str, list[str]]) -> None:
    """debian:bookworm-slim's stand-in from the Debian archive, with this machine's CA bundle for pip."""
    hook = "true"
    certs = [c for c in settings.get("cert", []) if Path(c).is_file()]
    if certs:
        hook = (
            f'mkdir -p "$1/etc/densebench-ci" && cp {shlex.quote(certs[0])} "$1/etc/densebench-ci/ca.crt" && '
            'printf "[global]\\ncert = /etc/densebench-ci/ca.crt\\n" > "$1/etc/pip.conf"'
        )
    strap = subprocess.Popen(
        ["mmdebstrap", "--variant=minbase", "--quiet", f"--customize-hook={hook}", "bookworm", "-", *DEBIAN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    imported = subprocess.run(
        [*PODMAN, "import", "--change", 'CMD ["bash"]', "-", BASE],
        stdin=strap.stdout,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    strap.stdout.close()
    _, strap_err = strap.communicate(timeout=60)
    if strap.returncode or imported.returncode:
        pytest.fail(
            f"making the local base {BASE} failed: mmdebstrap: {one_line(strap_err.decode())}; "
            f"podman import: {one_line(imported.stderr)}"
        )


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> Podman:
    """The built image, or a skip saying why podman cannot run here."""
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        not_run(f"{', '.join(missing)} not installed (Debian: podman runc mmdebstrap)")
    info = subprocess.run([*PODMAN, "info"], capture_output=True, text=True)
    if info.returncode:
        not_run(f"`podman info` fails: {one_line(info.stderr)}")
    settings = pip_settings()
    t0 = time.perf_counter()
    if subprocess.run([*PODMAN, "image", "exists", BASE]).returncode:
        make_base(settings)
        REPORT.append(f"local base {BASE} made in {time.perf_counter() - t0:.0f} s")
    trial = Podman(BASE).run("true", timeout=120)
    if trial.returncode:
        not_run(f"podman cannot start a container: {one_line(trial.stderr)}")

    conf_dir = tmp_path_factory.mktemp("pipconf")
    lines, mounts = local_wheel_stores(settings)
    (conf_dir / "pip.conf").write_text("\n".join(lines) + "\n")
    volumes = [f"{conf_dir}:/etc/xdg/pip:ro"] + [f"{m}:{m}:ro" for m in mounts]
    replaced = image_id(IMAGE)
    t0 = time.perf_counter()
    build = subprocess.run(
        [
            *PODMAN,
            "build",
            *run_flags(),
            "--build-arg",
            f"BASE_IMAGE={BASE}",
            *[arg for v in volumes for arg in ("--volume", v)],
            "-f",
            "docker/Dockerfile",
            "-t",
            IMAGE,
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if build.returncode:
        pytest.fail(f"podman build failed:\n{(build.stdout + build.stderr)[-4000:]}")
    if replaced and replaced != image_id(IMAGE):  # the previous build: its own layers go, shared ones stay
        subprocess.run([*PODMAN, "rmi", replaced], capture_output=True)
    size = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", "{{.Size}}", IMAGE], capture_output=True, text=True
    ).stdout.strip()
    REPORT.append(
        f"{IMAGE} built in {time.perf_counter() - t0:.0f} s; image size {int(size) / 1e9:.2f} GB"
        f" (local wheel stores mounted: {', '.join(mounts) or 'none'})"
    )
    return Podman()
