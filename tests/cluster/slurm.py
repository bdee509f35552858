"""A real one-node SLURM for tests: munged, slurmctld and slurmd from Debian's packages, all state in one folder.

The node is this machine as `slurmd -C` describes it (its CPUs and memory), with no GPU GRES (a CPU
partition), no cgroups (proctrack/linuxproc, task/none) and no job accounting, so `sacct` fails as on
a cluster without slurmdbd. Daemons listen on free ports and find munge through a socket in the folder,
so a test cluster never meets a system SLURM or another test cluster on the same machine. Commands
reach it through `SLURM_CONF` (`env`); sbatch passes the environment on to the jobs.

Run by hand (as root; only the standard library is needed):
    python3 -m tests.cluster.slurm install             # the Debian packages, if missing (.ci/run does this)
    python3 -m tests.cluster.slurm up /tmp/dbslurm     # prints the `export SLURM_CONF=...` to use
    python3 -m tests.cluster.slurm down /tmp/dbslurm
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("slurmd", "slurmctld", "slurm-client", "munge")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
PARTITION = "debug"


class Unavailable(Exception):
    """This machine cannot run the test cluster; the message says why."""


def install() -> None:
    """Install the Debian packages if a program is missing (root and apt-get needed)."""
    if all(shutil.which(p) for p in PROGRAMS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable(f"SLURM is not installed and cannot be (needs root and apt-get: {' '.join(PACKAGES)})")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if done.returncode != 0:  # a fresh container has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env, check=False)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    if missing:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise Unavailable(f"apt-get install {' '.join(PACKAGES)} failed ({tail[0]}); missing: {' '.join(missing)}")


def _alive(pid: int, proc: subprocess.Popen | None) -> bool:
    """Running (not a zombie); a daemon started by this process is reaped here."""
    if proc is not None:
        return proc.poll() is None
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_fields() -> dict[str, str]:
    """This machine as slurmd sees it (`slurmd -C`): CPUs, sockets, cores, threads, RealMemory."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(field.split("=", 1) for field in out.splitlines()[0].split()[1:])


class SlurmCluster:
    """One controller and one node, everything under `root`; `start()`, the tests, `stop()`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.conf = self.root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.cpus = 0  # the node's, once configured
        self.released: list[str] = []  # requeued jobs the releaser started at once
        self._stop_releasing = threading.Event()
        self._releaser: threading.Thread | None = None
        self._procs: dict[int, subprocess.Popen] = {}  # daemons this process started (it reaps them)

    # ---- life cycle -------------------------------------------------------------------------------------
    def write_config(self) -> None:
        r = self.root
        node = node_fields()
        self.cpus = int(node["CPUs"])
        for sub in ("state", "spool", "log"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o700)  # munged refuses a key or socket in a folder others may write
        key = r / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o600)
        lines = [
            "ClusterName=densebench-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge.socket'}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=300",
            " ".join([f"NodeName={self.node}", "NodeAddr=127.0.0.1", *(f"{k}={v}" for k, v in node.items())]),
            f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 60) -> None:
        """Install if needed, configure, start munged, slurmctld and slurmd, and wait for an idle node."""
        if os.geteuid() != 0:
            raise Unavailable("the test cluster runs munged, slurmctld and slurmd as root (SlurmUser=root)")
        install()
        self.stop()  # leftovers of an earlier cluster in the same folder
        self.write_config()
        r = self.root
        self._spawn(
            "munged",
            [
                "munged",
                "-F",
                "--force",
                f"--socket={r / 'munge.socket'}",
                f"--key-file={r / 'munge.key'}",
                f"--pid-file={r / 'munged.pid'}",
                f"--seed-file={r / 'munged.seed'}",
                f"--log-file={r / 'log' / 'munged.log'}",
            ],
        )
        self._wait(lambda: (r / "munge.socket").exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait(
            lambda: self.run("scontrol", "ping", check=False).returncode == 0,
            timeout,
            "slurmctld does not answer `scontrol ping`",
        )
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(
            lambda: self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip() == "idle",
            timeout,
            "the node did not become idle",
        )

    def stop(self) -> None:
        """Cancel what is left in the queue, wait for its processes to end, then stop the daemons."""
        self.stop_releasing()
        if any(
            _alive(int(p.read_text()), self._procs.get(int(p.read_text()))) for p in self.root.glob("slurmctld.daemon")
        ):
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.time() + 45  # KillWait (30 s) and a margin
            while time.time() < deadline and self.jobs():
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.root / f"{name}.daemon"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text())
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if _alive(pid, self._procs.get(pid)):
                    os.kill(pid, sig)
                    deadline = time.time() + 10
                    while time.time() < deadline and _alive(pid, self._procs.get(pid)):
                        time.sleep(0.1)
            pid_file.unlink()

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with (self.root / "log" / f"{name}.out").open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        (self.root / f"{name}.daemon").write_text(str(proc.pid))
        self._procs[proc.pid] = proc

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            time.sleep(0.2)
        logs = "; ".join(f"{p.name}: {p.read_text()[-300:]!r}" for p in sorted((self.root / "log").glob("*")))
        raise RuntimeError(f"{what} within {timeout:.0f} s ({logs})")

    # ---- commands ---------------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60, check=check)

    def jobs(self) -> list[dict[str, str]]:
        """squeue's view: job id (ARRAY_TASK form), state, reason, name."""
        out = self.run("squeue", "-h", "-r", "-o", "%i|%T|%r|%j", check=False).stdout
        return [dict(zip(("id", "state", "reason", "name"), line.split("|"))) for line in out.splitlines() if line]

    def next_job_id(self) -> int:
        """The id slurmctld gives the next submission: unchanged means nothing was submitted."""
        config = self.run("scontrol", "show", "config").stdout
        match = re.search(r"^NEXT_JOB_ID\s*=\s*(\d+)", config, re.MULTILINE)
        assert match is not None, config
        return int(match.group(1))

    # ---- requeued jobs ----------------------------------------------------------------------------------
    def start_releasing(self, every: float = 0.5) -> None:
        """Start requeued jobs at once: SLURM holds them (reason BeginTime) for about two minutes."""

        def loop() -> None:
            while not self._stop_releasing.wait(every):
                for job in self.jobs():
                    if (
                        job["reason"] == "BeginTime"
                        and self.run(
                            "scontrol", "update", f"jobid={job['id']}", "StartTime=now", check=False
                        ).returncode
                        == 0
                    ):
                        self.released.append(job["id"])

        self._stop_releasing.clear()
        self._releaser = threading.Thread(target=loop, name="slurm-releaser", daemon=True)
        self._releaser.start()

    def stop_releasing(self) -> None:
        self._stop_releasing.set()
        if self._releaser is not None:
            self._releaser.join()
            self._releaser = None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("install", "up", "down") or len(argv) != (1 if argv[0] == "install" else 2):
        print("usage" + __doc__.split("Run by hand")[1], file=sys.stderr)
        return 2
    try:
        if argv[0] == "install":
            install()
        elif argv[0] == "down":
            SlurmCluster(Path(argv[1])).stop()
        else:
            cluster = SlurmCluster(Path(argv[1]))
            cluster.start()
            print(f"export SLURM_CONF={cluster.conf}")
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
