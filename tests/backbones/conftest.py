"""Fixtures for the backbone tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def offline_hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache in tmp_path, with HF_HUB_OFFLINE=1 so nothing reaches the network."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
