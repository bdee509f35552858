"""Per-image instance statistics: every metric's sufficient statistics from one contingency table.

The overlap of every (ground-truth, predicted) object pair comes from one bincount over pixel-pair
codes, so matching never loops over object pairs in Python. What is stored per image are sums
(counts, summed IoU, intersections, unions, area-weighted Dice/Hausdorff), so dataset-level and
bootstrap aggregates are weighted sums of the per-image rows (see `aggregate.py`).

Definitions and their sources:
- PQ = DQ x SQ (Kirillov et al., "Panoptic Segmentation", CVPR 2019): pairs with IoU > 0.5 are
  true positives, a matching that is unique by construction (two objects cannot both overlap
  more than half of one object's union); DQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU of the TPs.
  Per class (mPQ), only objects of the same class pair (Gamper et al. 2020 PanNuke; Graham et al.
  2021 CoNIC).
- AJI (Kumar et al., IEEE TMI 2017): each ground-truth object takes the prediction of highest IoU
  (ties: the lower id), C = sum of their intersections, U = sum of their unions + areas of
  unpaired ground truth + areas of predictions that no ground truth took (a prediction taken
  twice counts twice, the over-penalisation AJI+ removes).
- AJI+ (Graham et al., HoVer-Net, MedIA 2019): the same sums over a one-to-one pairing that
  maximises total IoU (Hungarian assignment).
- Object Dice, object Hausdorff, object F1 (Sirinukunwattana et al., "Gland segmentation in colon
  histology images: the GlaS challenge contest", MedIA 2017): each object is compared with the
  object of the other side that overlaps it most (ties: the lower id), weighted by its area; for
  Hausdorff an object without overlap is compared with the other side's object at the smallest
  Hausdorff distance; a prediction is an F1 true positive when it covers more than half of its
  most-overlapping ground-truth object.
- Detection F1 (HoVer-Net's F_d): centroids paired one-to-one within `radius` pixels (12 px at
  40x in HoVer-Net), most pairs first, then least total distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from densebench.metrics.instance.objects import Objects

# Per-image scalar statistics (one row per image) and per-class ones (one (K,) vector per image).
SCALARS = (
    "n_gt",
    "n_pred",
    "tp",
    "iou",  # class-agnostic PQ (fp = n_pred - tp, fn = n_gt - tp)
    "aji_inter",
    "aji_union",
    "ajip_inter",
    "ajip_union",
    "dice_pred",
    "area_pred",
    "dice_gt",
    "area_gt",  # GlaS object Dice: area-weighted sums, both directions
    "haus_pred",
    "haus_area_pred",
    "haus_gt",
    "haus_area_gt",
    "haus_undefined",
    "glas_tp",
    "det_tp",
)
PER_CLASS = ("c_gt", "c_pred", "c_tp", "c_iou")


@dataclass
class Overlaps:
    """Sparse contingency table: object pairs (0-based ids) that share pixels, and the areas."""

    gt: np.ndarray
    pred: np.ndarray
    inter: np.ndarray
    area_gt: np.ndarray
    area_pred: np.ndarray

    @property
    def union(self) -> np.ndarray:
        return self.area_gt[self.gt] + self.area_pred[self.pred] - self.inter

    @property
    def iou(self) -> np.ndarray:
        return self.inter / self.union


def overlaps(gt: np.ndarray, pred: np.ndarray, n_gt: int, n_pred: int) -> Overlaps:
    """One pass over the pixels: areas and every overlapping pair's intersection."""
    g, p = gt.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    area_gt = np.bincount(g, minlength=n_gt + 1)[1:]
    area_pred = np.bincount(p, minlength=n_pred + 1)[1:]
    both = (g > 0) & (p > 0)
    codes = g[both] * (n_pred + 1) + p[both]
    if (n_gt + 1) * (n_pred + 1) <= 4 * g.size:
        counts = np.bincount(codes, minlength=(n_gt + 1) * (n_pred + 1))
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:  # so many objects that a dense table would outgrow the image: sort the codes instead
        pairs, inter = np.unique(codes, return_counts=True)
    return Overlaps(
        pairs // (n_pred + 1) - 1,
        pairs % (n_pred + 1) - 1,
        inter.astype(np.float64),
        area_gt.astype(np.float64),
        area_pred.astype(np.float64),
    )


def max_weight_matching(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Indices of the candidate edges in a one-to-one matching of maximum total weight.

    Edges split into connected components of the bipartite graph; a component that is a single
    edge is matched directly, larger ones by the Hungarian algorithm on their own small dense
    block (objects only compete with their neighbours, so blocks stay tiny).
    """
    if rows.size == 0:
        return np.zeros(0, np.int64)
    r_ids, r = np.unique(rows, return_inverse=True)
    c_ids, c = np.unique(cols, return_inverse=True)
    nr = r_ids.size
    graph = coo_matrix((np.ones(rows.size), (r, nr + c)), shape=(nr + c_ids.size,) * 2)
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[r]
    sizes = np.bincount(edge_comp)
    chosen = [np.flatnonzero(sizes[edge_comp] == 1)]
    multi = np.flatnonzero(sizes[edge_comp] > 1)
    order = multi[np.argsort(edge_comp[multi], kind="stable")]
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for edges in np.split(order, bounds) if order.size else []:
        ur, lr = np.unique(r[edges], return_inverse=True)
        uc, lc = np.unique(c[edges], return_inverse=True)
        block = np.zeros((ur.size, uc.size))
        index = np.full((ur.size, uc.size), -1)
        block[lr, lc] = weights[edges]
        index[lr, lc] = edges
        i, j = linear_sum_assignment(block, maximize=True)
        picked = index[i, j]
        chosen.append(picked[picked >= 0])
    return np.sort(np.concatenate(chosen))


def _best_per(key: np.ndarray, score: np.ndarray, other: np.ndarray) -> np.ndarray:
    """For each distinct `key`, the index of its highest `score` (ties: lowest `other`)."""
    order = np.lexsort((other, -score, key))
    first = np.ones(order.size, bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return order[first]


def _bboxes(inst: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) [y0, x0, y1, x1) bounding boxes of ids 1..n."""
    boxes = np.zeros((n, 4), np.int64)
    for i, sl in enumerate(ndi.find_objects(inst, max_label=n)):
        if sl is not None:
            boxes[i] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    return boxes


class _Hausdorff:
    """Hausdorff distances between objects of two maps, exact and on the pixel grid.

    h(A, B) = max over pixels of A of the distance to B, read from the Euclidean distance
    transform of B's complement cropped to the union of both boxes (B lies inside the crop, so
    the distances are exact, holes included).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, n_a: int, n_b: int) -> None:
        self.a, self.b = a, b
        self.box_a, self.box_b = _bboxes(a, n_a), _bboxes(b, n_b)

    def __call__(self, i: int, j: int) -> float:
        ba, bb = self.box_a[i], self.box_b[j]
        y0, x0 = min(ba[0], bb[0]), min(ba[1], bb[1])
        y1, x1 = max(ba[2], bb[2]), max(ba[3], bb[3])
        in_a = self.a[y0:y1, x0:x1] == i + 1
        in_b = self.b[y0:y1, x0:x1] == j + 1
        to_b = ndi.distance_transform_edt(~in_b)[in_a].max()
        to_a = ndi.distance_transform_edt(~in_a)[in_b].max()
        return float(max(to_a, to_b))

    def lower_bounds(self, i: int, from_a: bool) -> np.ndarray:
        """Cheap lower bounds of H(object i, every object of the other map): box edges must be reached."""
        box, others = (self.box_a[i], self.box_b) if from_a else (self.box_b[i], self.box_a)
        return np.abs(others - box).max(1)

    def nearest(self, i: int, from_a: bool) -> float:
        """Smallest Hausdorff distance from object i to any object of the other map (bounds prune the search)."""
        bounds = self.lower_bounds(i, from_a)
        best = np.inf
        for j in np.argsort(bounds, kind="stable"):
            if bounds[j] >= best:
                break
            best = min(best, self(i, j) if from_a else self(j, i))
        return best


def _centroids(inst: np.ndarray, n: int, area: np.ndarray) -> np.ndarray:
    flat = inst.ravel()
    on = np.flatnonzero(flat)
    ids = flat[on]
    ys, xs = np.divmod(on, inst.shape[1])
    cy = np.bincount(ids, weights=ys, minlength=n + 1)[1:]
    cx = np.bincount(ids, weights=xs, minlength=n + 1)[1:]
    return np.stack([cy, cx], 1) / np.maximum(area, 1)[:, None]


def image_stats(
    gt: Objects, pred: Objects, num_classes: int, match_iou: float = 0.5, radius: float = 12.0, hausdorff: bool = True
) -> dict[str, np.ndarray]:
    """Sufficient statistics of one image (see SCALARS / PER_CLASS); maps must share a shape."""
    if gt.inst.shape != pred.inst.shape:
        raise ValueError(f"instance maps differ in size: {gt.inst.shape} vs {pred.inst.shape}")
    if match_iou < 0.5:
        raise ValueError(f"match_iou={match_iou}: below 0.5 a ground-truth object can match two predictions")
    ov = overlaps(gt.inst, pred.inst, gt.n, pred.n)
    iou, union = ov.iou, ov.union
    s: dict[str, Any] = {"n_gt": gt.n, "n_pred": pred.n}  # per-image scalars and per-class arrays

    # Panoptic quality, class-agnostic and per class.
    tp = iou > match_iou
    s["tp"], s["iou"] = tp.sum(), iou[tp].sum()
    gc, pc = gt.classes[ov.gt], pred.classes[ov.pred]
    same = tp & (gc == pc) & (gc >= 0)
    s["c_gt"] = np.bincount(gt.classes, minlength=num_classes)
    s["c_pred"] = np.bincount(pred.classes[pred.classes >= 0], minlength=num_classes)
    s["c_tp"] = np.bincount(gc[same], minlength=num_classes)
    s["c_iou"] = np.bincount(gc[same], weights=iou[same], minlength=num_classes)

    # AJI: every ground-truth object takes its best-IoU prediction (predictions may be reused).
    best = _best_per(ov.gt, iou, ov.pred)
    taken = np.zeros(pred.n, bool)
    taken[ov.pred[best]] = True
    paired_gt = np.zeros(gt.n, bool)
    paired_gt[ov.gt[best]] = True
    lone = ov.area_gt[~paired_gt].sum() + ov.area_pred[~taken].sum()
    s["aji_inter"], s["aji_union"] = ov.inter[best].sum(), union[best].sum() + lone

    # AJI+: one-to-one pairing of maximum total IoU.
    m = max_weight_matching(ov.gt, ov.pred, iou)
    paired_gt[:] = False
    paired_gt[ov.gt[m]] = True
    taken[:] = False
    taken[ov.pred[m]] = True
    lone = ov.area_gt[~paired_gt].sum() + ov.area_pred[~taken].sum()
    s["ajip_inter"], s["ajip_union"] = ov.inter[m].sum(), union[m].sum() + lone

    # GlaS: each object against the other side's object of largest overlap.
    dice = 2 * ov.inter / (ov.area_gt[ov.gt] + ov.area_pred[ov.pred])
    for_pred = _best_per(ov.pred, ov.inter, ov.gt)  # G*(S_j)
    for_gt = _best_per(ov.gt, ov.inter, ov.pred)  # S*(G_i)
    s["dice_pred"] = (ov.area_pred[ov.pred[for_pred]] * dice[for_pred]).sum()
    s["dice_gt"] = (ov.area_gt[ov.gt[for_gt]] * dice[for_gt]).sum()
    s["area_pred"], s["area_gt"] = ov.area_pred.sum(), ov.area_gt.sum()
    s["glas_tp"] = (ov.inter[for_pred] > 0.5 * ov.area_gt[ov.gt[for_pred]]).sum()
    s.update(
        _object_hausdorff(gt, pred, ov, for_gt, for_pred)
        if hausdorff
        else dict.fromkeys(("haus_pred", "haus_area_pred", "haus_gt", "haus_area_gt", "haus_undefined"), 0.0)
    )

    # Detection: centroids within `radius`, paired one-to-one.
    s["det_tp"] = _detections(
        _centroids(gt.inst, gt.n, ov.area_gt), _centroids(pred.inst, pred.n, ov.area_pred), radius
    )
    return {k: np.asarray(v, np.float64) for k, v in s.items()}


def _object_hausdorff(gt: Objects, pred: Objects, ov: Overlaps, for_gt: np.ndarray, for_pred: np.ndarray) -> dict:
    """Area-weighted GlaS Hausdorff sums; objects facing an empty other side have no finite distance."""
    out = {"haus_pred": 0.0, "haus_area_pred": 0.0, "haus_gt": 0.0, "haus_area_gt": 0.0, "haus_undefined": 0.0}
    if gt.n == 0 or pred.n == 0:
        out["haus_undefined"] = gt.n + pred.n
        return out
    haus = _Hausdorff(gt.inst, pred.inst, gt.n, pred.n)
    both = np.r_[for_gt, for_pred]  # each distinct (GT, prediction) pair is measured once
    pairs, which = np.unique(np.stack([ov.gt[both], ov.pred[both]], 1), axis=0, return_inverse=True)
    dist = np.array([haus(int(g), int(p)) for g, p in pairs])[which.ravel()]
    h_gt, h_pred = np.full(gt.n, np.nan), np.full(pred.n, np.nan)
    h_gt[ov.gt[for_gt]] = dist[: for_gt.size]
    h_pred[ov.pred[for_pred]] = dist[for_gt.size :]
    for i in np.flatnonzero(np.isnan(h_gt)):  # no overlap: the nearest object in Hausdorff distance
        h_gt[i] = haus.nearest(int(i), True)
    for j in np.flatnonzero(np.isnan(h_pred)):
        h_pred[j] = haus.nearest(int(j), False)
    out["haus_gt"], out["haus_area_gt"] = (ov.area_gt * h_gt).sum(), ov.area_gt.sum()
    out["haus_pred"], out["haus_area_pred"] = (ov.area_pred * h_pred).sum(), ov.area_pred.sum()
    return out


def _detections(gt_c: np.ndarray, pred_c: np.ndarray, radius: float) -> int:
    if len(gt_c) == 0 or len(pred_c) == 0:
        return 0
    near = cKDTree(gt_c).sparse_distance_matrix(cKDTree(pred_c), radius, output_type="ndarray")
    if near.size == 0:
        return 0
    # Weight big - distance with big > radius x (pairs possible): more pairs always win, then shorter ones.
    big = radius * (min(len(gt_c), len(pred_c)) + 1) + 1
    return int(max_weight_matching(near["i"], near["j"], big - near["v"]).size)
