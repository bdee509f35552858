"""Objects to score: ground-truth instance maps and instances extracted from a semantic prediction.

An `Objects` value is an instance map with ids 1..n (0 = no object) plus one object-class index per
id (0..K-1 into the scored object classes; -1 = an object whose class is unknown, which counts in
the class-agnostic metrics but in no class of mPQ). Pixels the ground truth ignores are removed
from both sides before matching, as the semantic metrics drop them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

METHODS = ("components", "watershed")


@dataclass
class Objects:
    """Instance map (H, W) int32 with contiguous ids 1..n, and `classes[i]` = class index of id i+1."""

    inst: np.ndarray
    classes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.classes)


def relabel(inst: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids made contiguous 1..n in their original order (0 stays 0); returns (map, n)."""
    inst = np.asarray(inst)
    if inst.dtype.kind not in "iu":
        raise ValueError(f"instance ids must be integers, got {inst.dtype}")
    top = int(inst.max(initial=0))
    if inst.size and int(inst.min()) < 0:
        raise ValueError("instance ids must be >= 0")
    if top <= 4 * inst.size + 1024:  # lookup table: linear time
        present = np.bincount(inst.ravel(), minlength=top + 1) > 0
        present[0] = False
        lut = (np.cumsum(present) * present).astype(np.int32)
        return lut[inst], int(present.sum())
    ids, inverse = np.unique(inst, return_inverse=True)  # sparse huge ids: sort instead
    out = inverse.reshape(inst.shape).astype(np.int32) + (0 if ids[0] == 0 else 1)
    return out, int(ids.size - (ids[0] == 0))


def class_votes(inst: np.ndarray, n: int, labels: np.ndarray, object_ids: Sequence[int]) -> np.ndarray:
    """Majority object class of each instance (ties: the earlier object class); -1 where none of its pixels has one.

    Majority voting over an instance's pixels is how HoVer-Net and the CoNIC/PanNuke tools type an
    instance; only object-class pixels vote, so background or ignored pixels never decide.
    """
    labels = np.asarray(labels)
    lut = np.full(max(int(labels.max(initial=0)), max(object_ids, default=0)) + 1, len(object_ids), np.int64)
    lut[list(object_ids)] = np.arange(len(object_ids))
    k = len(object_ids) + 1  # last column: not an object class
    votes = np.bincount((inst.astype(np.int64) * k + lut[labels]).ravel(), minlength=(n + 1) * k)
    votes = votes.reshape(n + 1, k)[1:, :-1]
    best = votes.argmax(1)
    return np.where(votes.max(1, initial=0) > 0, best, -1) if n else np.zeros(0, np.int64)


def masked(objects: Objects, keep: np.ndarray) -> Objects:
    """The objects with pixels outside `keep` (bool map) removed; ids contiguous again, classes kept."""
    inst = np.where(keep, objects.inst, 0)
    present = np.bincount(inst.ravel(), minlength=objects.n + 1)[1:] > 0
    return Objects(relabel(inst)[0], objects.classes[present])


def ground_truth(
    inst: np.ndarray, mask: np.ndarray, object_ids: Sequence[int], valid: np.ndarray | None = None
) -> Objects:
    """The release's instances, typed by majority vote of the semantic mask.

    Instances whose pixels carry no object class (e.g. outlines of a class that is not scored)
    are not objects to find and are dropped; `valid` = pixels the ground truth labels (not ignore).
    """
    if valid is not None:
        inst = np.where(valid, inst, 0)
    inst, n = relabel(np.asarray(inst))
    objects = Objects(inst, class_votes(inst, n, mask, object_ids))
    if (objects.classes < 0).any():
        objects = masked(objects, np.concatenate([[False], objects.classes >= 0])[inst])
    return objects


def from_instances(
    inst: np.ndarray, types: np.ndarray | None, object_ids: Sequence[int], valid: np.ndarray | None = None
) -> Objects:
    """Predicted instances from an instance tool (HoVer-Net, CellViT ...): types by majority of a per-pixel type map.

    Without types every instance is object class 0 (class-agnostic scoring); an instance whose
    pixels carry no object type keeps class -1 and still counts as a detection.
    """
    if valid is not None:
        inst = np.where(valid, inst, 0)
    inst, n = relabel(np.asarray(inst))
    classes = np.zeros(n, np.int64) if types is None else class_votes(inst, n, types, object_ids)
    return Objects(inst, classes)


def _label(fg: np.ndarray, connectivity: int) -> np.ndarray:
    _, lab = cv2.connectedComponents(fg.astype(np.uint8), connectivity=connectivity, ltype=cv2.CV_32S)
    return lab


def _h_maxima(dist: np.ndarray, comps: np.ndarray, h: float) -> np.ndarray:
    """Regional maxima of `dist` at least `h` high (d - R(d - h) >= h, R = reconstruction by dilation).

    Computed component by component on its bounding box: components are separated by zero
    distance, so the result equals the whole-image transform at a fraction of the pixels.
    """
    from skimage.morphology import reconstruction

    peaks = np.zeros(dist.shape, bool)
    for i, box in enumerate(ndi.find_objects(comps), start=1):
        if box is None:
            continue
        inside = comps[box] == i
        d = np.where(inside, dist[box], 0.0)
        if d.max() >= h:
            peaks[box] |= inside & (d - reconstruction(d - h, d) >= h - 1e-9)
    return peaks


def _watershed(fg: np.ndarray, connectivity: int, h: float) -> np.ndarray:
    """Split touching objects: watershed of the negated distance transform from its h-maxima.

    A component too thin to hold an h-maximum keeps its connected-component label, so nothing the
    model predicted is lost.
    """
    from skimage.segmentation import watershed

    comps = _label(fg, connectivity)
    if not comps.any():
        return comps
    dist = ndi.distance_transform_edt(fg)
    markers = _label(_h_maxima(dist, comps, h), 8)
    split = watershed(-dist, markers, mask=fg, connectivity=1 if connectivity == 4 else 2)
    lost = fg & (split == 0)
    split[lost] = comps[lost] + int(split.max())
    return split


def extract(
    pred: np.ndarray,
    object_ids: Sequence[int],
    method: str = "components",
    per_class: bool = False,
    connectivity: int = 4,
    min_size: int = 0,
    watershed_h: float = 2.0,
) -> Objects:
    """Instances from a semantic prediction (class id per pixel).

    per_class=False: objects are the components (or watershed regions) of the union of object
    classes, typed by majority vote, as instance tools type their instances; per_class=True:
    components of each predicted class separately (touching objects of different classes stay
    apart, an object whose pixels disagree on the class splits). Objects under `min_size` pixels
    are removed (HoVer-Net's post-processing removes nuclei under 10 px).
    """
    if method not in METHODS:
        raise ValueError(f"instance extraction method {method!r} is not known; use {' or '.join(METHODS)}")
    split = _label if method == "components" else (lambda fg, c: _watershed(fg, c, watershed_h))
    pred = np.asarray(pred)
    if per_class:
        inst = np.zeros(pred.shape, np.int32)
        for c in object_ids:
            lab = split(pred == c, connectivity)
            on = lab > 0
            inst[on] = lab[on] + inst.max(initial=0)
    else:
        inst = split(np.isin(pred, list(object_ids)), connectivity)
    inst, n = relabel(inst)
    if min_size > 1 and n:
        big = np.bincount(inst.ravel(), minlength=n + 1) >= min_size
        big[0] = False
        inst, n = relabel(inst * big[inst])
    return Objects(inst, class_votes(inst, n, pred, object_ids))
