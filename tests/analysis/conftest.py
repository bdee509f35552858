"""Run directories for the analyses, made without training: a built model's (perturbed) trainable state as best.pt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Tiny demo ViT (patch 8, width 32, 2 blocks) on a few small synthetic images.
TINY = [
    "model.variant=tiny",
    "dataset.n_train=2",
    "dataset.n_val=1",
    "dataset.n_test=3",
    "dataset.min_size=40",
    "dataset.max_size=56",
    "dataset.min_side=40",
    "eval.bootstrap.n=20",
    "progress=none",
    "device=cpu",
]


def make_run(root: Path, adapter: str, *overrides: str):
    """A run directory as `densebench run` leaves it after validation: config.yaml and checkpoints/best.pt.

    Trainable tensors are perturbed (LoRA's B starts at zero) so the "trained" model differs from the built one.
    """
    from densebench.config import compose
    from densebench.engine import checkpoint
    from densebench.engine.train import Run

    args = [f"adapter={adapter}", f"output_dir={root}", *TINY, *overrides]
    run = Run(compose(args), args)
    run.prepare_dir()
    run.build()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in run.model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    checkpoint.save(run.ckpt_dir / "best.pt", {"model": run.model.trainable_state_dict(), "epoch": 0, "val": {}})
    return run


# Small adapter settings keep the CNN branch cheap on a CPU.
ADAPTER_OVERRIDES = {"cnn": ["adapter.width_factor=0.5", "adapter.depths=[1,1]"]}


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """adapter name -> Run (built, best.pt written), made once per test session."""
    root = tmp_path_factory.mktemp("runs")
    cache: dict[str, object] = {}

    def get(adapter: str):
        if adapter not in cache:
            cache[adapter] = make_run(root, adapter, *ADAPTER_OVERRIDES.get(adapter, []))
        return cache[adapter]

    return get
