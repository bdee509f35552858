"""Paper-compatible confusion-matrix metrics, per-class scores and vectorised bootstrap CIs."""

from densebench.metrics.block import test_block
from densebench.metrics.bootstrap import bootstrap
from densebench.metrics.confusion import confusion_matrix
from densebench.metrics.segmentation import METRIC_KEYS, per_class, summary

__all__ = ["METRIC_KEYS", "bootstrap", "confusion_matrix", "per_class", "summary", "test_block"]
