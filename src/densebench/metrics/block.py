"""The `test` block of metrics.json, from per-image confusion matrices (shared by runs and `evaluate`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from densebench.metrics.bootstrap import bootstrap
from densebench.metrics.segmentation import per_class, summary


def test_block(cms: Tensor, class_names: Sequence[str], n_resamples: int, ci: float, seed: int) -> dict:
    """Point metrics on the summed matrix, bootstrap CIs over images, and a per-class table."""
    total = cms.sum(0)
    pc = per_class(total)
    return {
        "n_images": int(cms.shape[0]),
        "metrics": {k: float(v) for k, v in summary(total).items()},
        "bootstrap": {
            "n_resamples": n_resamples,
            "ci": ci,
            "seed": seed,
            "metrics": bootstrap(cms, n_resamples, seed, ci),
        },
        "per_class": {
            name: {
                **{k: float(v[i]) for k, v in pc.items()},
                "gt_pixels": int(total[i].sum()),
                "pred_pixels": int(total[:, i].sum()),
            }
            for i, name in enumerate(class_names)
        },
    }
