"""Statistics of a set of patch tokens: how alike they are, how many directions they span, how well they
separate the ground-truth classes.

All measures work on L2-normalised tokens (cosine geometry), so a few high-norm tokens (the known
"artifact" tokens of large ViTs) do not dominate them. Pairwise means are computed from per-class
sums (O(N·D)), never from the N×N matrix, except the distance profile, which is chunked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

UNLABELLED = -1


def unit(tokens: Tensor) -> Tensor:
    """(N, D) tokens scaled to unit length (all-zero tokens stay zero), in float32 or, if given, float64."""
    return F.normalize(tokens if tokens.dtype == torch.float64 else tokens.float(), dim=-1, eps=1e-12)


def _pair_sum(x: Tensor) -> tuple[float, int]:
    """Sum of cos(x_i, x_j) over ordered pairs i != j of unit rows, and the number of such pairs."""
    n = x.shape[0]
    s = x.sum(0)
    return float(s @ s - x.pow(2).sum()), n * (n - 1)


def mean_pairwise_cosine(tokens: Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct tokens (NaN for fewer than two)."""
    total, pairs = _pair_sum(unit(tokens.double()))
    return total / pairs if pairs else math.nan


def effective_rank(tokens: Tensor) -> float:
    """Roy & Vetterli (2007): exp of the Shannon entropy of the normalised singular values.

    1 when every token points the same way; N for N orthogonal tokens; at most min(N, D). The singular
    values come from the smaller Gram matrix (D×D or N×N), in float64.
    """
    x = unit(tokens.double())
    gram = x.T @ x if x.shape[0] > x.shape[1] else x @ x.T
    sigma = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt()
    if sigma.sum() <= 0:
        return math.nan
    p = sigma / sigma.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def class_separability(tokens: Tensor, labels: Tensor) -> dict[str, float]:
    """Within-class vs between-class mean cosine of tokens labelled by class (UNLABELLED ones left out).

    within: mean over classes (with ≥2 tokens) of the mean cosine between distinct tokens of the class;
    between: mean over pairs of classes of the mean cosine between their tokens. Class-balanced, so a
    dominant class (background) does not decide the value. gap = within − between: 0 when tokens carry
    no class information, larger when they cluster by class.
    """
    x = unit(tokens.double())
    keep = labels != UNLABELLED
    x, labels = x[keep], labels[keep]
    classes = torch.unique(labels).tolist()
    sums = {c: x[labels == c].sum(0) for c in classes}
    counts = {c: int((labels == c).sum()) for c in classes}
    within = []
    for c in classes:
        if counts[c] >= 2:
            members = x[labels == c]
            within.append((float(sums[c] @ sums[c]) - float(members.pow(2).sum())) / (counts[c] * (counts[c] - 1)))
    between = [
        float(sums[a] @ sums[b]) / (counts[a] * counts[b]) for i, a in enumerate(classes) for b in classes[i + 1 :]
    ]
    w = sum(within) / len(within) if within else math.nan
    b = sum(between) / len(between) if between else math.nan
    return {"within": w, "between": b, "gap": w - b, "n_classes": len(classes)}


def cosine_by_distance(
    tokens: Tensor, grid: tuple[int, int], valid: Tensor | None = None, chunk: int = 1024
) -> tuple[Tensor, Tensor]:
    """Sum of cosine similarities and pair counts per spatial distance bin (in patches, rounded).

    `tokens` are (h·w, D) in row-major grid order; `valid` marks the tokens to use (e.g. not padding).
    Returns float64 sums and int64 counts indexed by distance 0..ceil(hypot(h, w)); bin 0 (a token
    with itself) is left empty. Sums and counts add up over images; their ratio is the profile.
    """
    h, w = grid
    x = unit(tokens)
    rows = torch.arange(h, device=x.device).repeat_interleave(w)
    cols = torch.arange(w, device=x.device).repeat(h)
    coords = torch.stack([rows, cols], 1).float()
    if valid is not None:
        x, coords = x[valid], coords[valid]
    n_bins = math.ceil(math.hypot(h, w)) + 1
    sums = torch.zeros(n_bins, dtype=torch.float64, device=x.device)
    counts = torch.zeros(n_bins, dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        sim = x[start : start + chunk] @ x.T
        dist = torch.cdist(coords[start : start + chunk], coords).round().long()
        off_self = dist > 0
        sums += torch.bincount(dist[off_self], weights=sim[off_self].double(), minlength=n_bins)
        counts += torch.bincount(dist[off_self], minlength=n_bins)
    return sums.cpu(), counts.cpu()


def cell_labels(mask: Tensor, grid: tuple[int, int], num_classes: int, ignore_index: int) -> Tensor:
    """Majority class of the labelled pixels in each cell of `grid` over `mask` (H, W), row-major (h·w,).

    Cells are a ViT's patches when H, W = grid × patch, and any other grid (a decoder's 1/8 map) by
    area pooling. A cell without labelled pixels is UNLABELLED; ties go to the lower class id.
    """
    m = mask.long().clone()
    m[(m == ignore_index) | (m < 0) | (m >= num_classes)] = num_classes
    onehot = F.one_hot(m, num_classes + 1).permute(2, 0, 1).float()[None]
    share = F.adaptive_avg_pool2d(onehot, grid)[0, :num_classes].flatten(1).T  # (cells, classes)
    labels = share.argmax(1)
    labels[share.sum(1) <= 0] = UNLABELLED
    return labels
