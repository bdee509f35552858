"""The test cluster: one real SLURM for the whole session (tests/cluster/slurm.py), stopped at the end."""

from __future__ import annotations

import pytest

from tests.cluster.slurm import SlurmCluster, Unavailable


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as exc:
        pytest.skip(f"no test cluster: {exc}")
    except BaseException:
        cluster.stop()
        raise
    cluster.start_releasing()
    try:
        yield cluster
    finally:
        cluster.stop()
