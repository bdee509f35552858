"""Fixtures and parametrisation over every model config × every adapter config (see support.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from .support import FROZEN_PATHS, LOW_RANK, MODELS, STRATEGIES, Stepped, make_cfg, take_one_step


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", sorted(MODELS))
    # A test names the strategies it is about by its argument: all of them, LoRA/DoRA, or frozen-backbone ones.
    for arg, values in (("strategy", STRATEGIES), ("low_rank", LOW_RANK), ("frozen_path", FROZEN_PATHS)):
        if arg in metafunc.fixturenames:
            metafunc.parametrize(arg, values)


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add overhead, and oversubscribe a shared 2-core machine (3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def stepped() -> Callable[[str, str], Stepped]:
    """(model, strategy) → `Stepped`, built once per session and shared by the tests that inspect it."""
    cache: dict[tuple[str, str], Stepped] = {}

    def get(model_name: str, strategy: str) -> Stepped:
        if (model_name, strategy) not in cache:
            cache[(model_name, strategy)] = take_one_step(make_cfg(model_name, strategy))
        return cache[(model_name, strategy)]

    return get
