"""Instance-level evaluation for nuclei and glands: PQ/mPQ, AJI/AJI+, GlaS object Dice/Hausdorff/F1, detection F1.

Sources of every definition are in `matching.py` (per image) and `aggregate.py` (over images).
"""

from densebench.metrics.instance.aggregate import DEFINITIONS, METRIC_KEYS, instance_block, per_image_table
from densebench.metrics.instance.matching import image_stats
from densebench.metrics.instance.objects import Objects, extract, from_instances, ground_truth
from densebench.metrics.instance.scorer import InstanceScorer, InstanceSettings, object_classes

__all__ = [
    "DEFINITIONS",
    "METRIC_KEYS",
    "InstanceScorer",
    "InstanceSettings",
    "Objects",
    "extract",
    "from_instances",
    "ground_truth",
    "image_stats",
    "instance_block",
    "object_classes",
    "per_image_table",
]
