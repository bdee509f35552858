"""DenseBench: benchmark pathology foundation models on dense prediction."""

from __future__ import annotations

import os

# albumentations checks PyPI for a newer release at import time unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
