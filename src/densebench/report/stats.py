"""Rank statistics and tests: average ranks, Friedman + Nemenyi, and a paired bootstrap on per-image confusion matrices.

Ranks follow the published leaderboard: higher metric = better = rank 1, ties share the average rank.
The Nemenyi critical difference uses the studentized range (Demšar 2006): CD = q_α(k, ∞)/√2 ·
√(k(k+1)/(6N)) for k treatments ranked over N blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from densebench.errors import DenseBenchError

if TYPE_CHECKING:
    import torch


def rank_within(frame: pd.DataFrame, blocks: list[str], value: str = "value") -> pd.Series:
    """Rank of each row's value inside its block (1 = highest; ties share the average rank; NaN unranked)."""
    return frame.groupby(blocks, sort=False)[value].rank(ascending=False, method="average")


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n_blocks)))


def friedman(frame: pd.DataFrame, blocks: list[str], treatment: str, alpha: float = 0.05) -> dict[str, Any]:
    """Friedman test of `treatment` over complete blocks, with average ranks and the Nemenyi post-hoc.

    The test needs complete blocks: treatments present in under half of the blocks are left out (listed
    in `left_out`), then blocks still missing a treatment are dropped (counted).
    """
    table = frame.pivot_table(index=blocks, columns=treatment, values="value", aggfunc="mean")
    # Treatments in under half of the blocks (e.g. one ablation variant) would empty the complete blocks.
    coverage = table.notna().mean()
    sparse = sorted(str(t) for t in coverage.index[coverage < 0.5])
    table = table.drop(columns=[t for t in coverage.index if str(t) in sparse])
    complete = table.dropna()
    k, n = complete.shape[1], complete.shape[0]
    result: dict[str, Any] = {
        "blocks": " × ".join(blocks),
        "treatment": treatment,
        "k": int(k),
        "n_blocks": int(n),
        "n_blocks_incomplete": int(len(table) - n),
        "left_out": sparse,
        "alpha": alpha,
    }
    if k < 3 or n < 2:
        return {
            **result,
            "status": "skipped",
            "reason": f"needs ≥3 treatments ({treatment}) over ≥2 complete blocks; have {k} over {n}",
        }
    statistic, p_value = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
    ranks = complete.rank(axis=1, ascending=False, method="average").mean().sort_values()
    cd = nemenyi_cd(k, n, alpha)
    scale = math.sqrt(k * (k + 1) / (6 * n))
    pairs = []
    for a, b in combinations(ranks.index, 2):
        diff = abs(ranks[a] - ranks[b])
        p = float(stats.studentized_range.sf(diff * math.sqrt(2) / scale, k, np.inf))
        pairs.append({"a": a, "b": b, "rank_difference": float(diff), "p_value": p, "significant": bool(diff > cd)})
    return {
        **result,
        "status": "done",
        "statistic": float(statistic),
        "p_value": float(p_value),
        "average_ranks": {str(name): float(r) for name, r in ranks.items()},
        "critical_difference": cd,
        "pairs": pairs,
        "cliques": [list(c) for c in cliques(ranks, cd)],
    }


def cliques(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of rank-sorted treatments whose spread is within the CD (the bars of a CD diagram)."""
    names, values = list(ranks.index), ranks.to_numpy()
    groups: list[tuple[int, int]] = []
    for start in range(len(names)):
        end = start
        while end + 1 < len(names) and values[end + 1] - values[start] <= cd:
            end += 1
        if end > start and not any(s <= start and end <= e for s, e in groups):
            groups.append((start, end))
    return [tuple(names[s : e + 1]) for s, e in groups]


@dataclass
class Arm:
    """One side of a paired comparison: a run directory holding confusion_per_image.npz."""

    label: str
    run_dir: Path
    dataset: str


def load_confusions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    path = run_dir / "confusion_per_image.npz"
    if not path.is_file():
        raise DenseBenchError(
            f"{path} not found; the paired bootstrap needs runs that stored per-image confusion matrices"
        )
    with np.load(path, allow_pickle=False) as data:
        return data["cm"], data["keys"].astype(str)


def _resampled(cm: torch.Tensor, weights: torch.Tensor, metric: str, chunk: int = 250) -> torch.Tensor:
    """The metric on every resample (rows of `weights` = how often each image was drawn)."""
    import torch

    from densebench.metrics.segmentation import summary

    n, c, _ = cm.shape
    flat = cm.reshape(n, c * c).double()
    parts = [summary((weights[s : s + chunk] @ flat).reshape(-1, c, c))[metric] for s in range(0, len(weights), chunk)]
    return torch.cat(parts)


def paired_bootstrap(
    a: Arm, b: Arm, metric: str, n_resamples: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict[str, Any]:
    """Bootstrap of metric(A) − metric(B) over the same resampled test images for both arms.

    Pairing (the same image draws for both arms) removes the between-image variance the two arms share,
    so a real difference is detected with far fewer images than by comparing two separate CIs.
    """
    import torch  # here, not at the top: reports without --paired never need torch

    from densebench.metrics.bootstrap import resample_weights
    from densebench.metrics.segmentation import summary

    cm_a, keys_a = load_confusions(a.run_dir)
    cm_b, keys_b = load_confusions(b.run_dir)
    if set(keys_a) != set(keys_b) or len(keys_a) != len(keys_b):
        raise DenseBenchError(
            f"paired bootstrap needs the same test images: {a.run_dir} has {len(keys_a)}, {b.run_dir} has {len(keys_b)}, "
            f"{len(set(keys_a) & set(keys_b))} shared; compare runs made on the same split"
        )
    if cm_a.shape[1:] != cm_b.shape[1:]:
        raise DenseBenchError(
            f"paired bootstrap: {a.run_dir} has {cm_a.shape[1]} classes, {b.run_dir} has {cm_b.shape[1]}"
        )
    order = {key: i for i, key in enumerate(keys_b)}
    cm_b = cm_b[[order[key] for key in keys_a]]
    ta, tb = torch.from_numpy(cm_a).double(), torch.from_numpy(cm_b).double()
    weights = resample_weights(len(keys_a), n_resamples, seed).double()
    va, vb = _resampled(ta, weights, metric), _resampled(tb, weights, metric)
    keep = ~(torch.isnan(va) | torch.isnan(vb))
    kept_a, kept_b = va[keep].numpy(), vb[keep].numpy()
    diff = kept_a - kept_b
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(diff, [alpha, 1 - alpha])
    a_lo, a_hi = np.quantile(kept_a, [alpha, 1 - alpha])
    b_lo, b_hi = np.quantile(kept_b, [alpha, 1 - alpha])
    point_a = float(summary(ta.sum(0))[metric])
    point_b = float(summary(tb.sum(0))[metric])
    p_value = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
    pct = f"{ci:.0%}"
    p_text = f"p = {p_value:.3g}" if p_value > 0 else f"p < {1 / len(diff):.2g}"
    if lo > 0 or hi < 0:
        winner, loser = (a.label, b.label) if lo > 0 else (b.label, a.label)
        verdict = (
            f"{winner} is better than {loser}: the {pct} CI of the difference [{lo:+.4f}, {hi:+.4f}] "
            f"excludes 0 (paired bootstrap {p_text})."
        )
    else:
        verdict = (
            f"No significant difference: {a.label} − {b.label} = {diff.mean():+.4f} is within its {pct} CI "
            f"[{lo:+.4f}, {hi:+.4f}], which contains 0 (paired bootstrap {p_text})."
        )
    return {
        "a": a.label,
        "b": b.label,
        "a_run": str(a.run_dir),
        "b_run": str(b.run_dir),
        "metric": metric,
        "n_images": int(len(keys_a)),
        "n_resamples": int(len(diff)),
        "seed": seed,
        "ci": ci,
        "a_point": point_a,
        "b_point": point_b,
        "a_mean": float(kept_a.mean()),
        "b_mean": float(kept_b.mean()),
        "a_ci": [float(a_lo), float(a_hi)],
        "b_ci": [float(b_lo), float(b_hi)],
        "difference_mean": float(diff.mean()),
        "difference_ci": [float(lo), float(hi)],
        "p_value": p_value,
        "significant": bool(lo > 0 or hi < 0),
        "arm_cis_overlap": bool(a_lo <= b_hi and b_lo <= a_hi),
        "verdict": verdict,
    }
