"""Figures of the analyses (matplotlib, Agg; PNG and SVG side by side like the report's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from densebench.report.plots import save_figure, plt

STYLE: dict[str, dict[str, Any]] = {
    "backbone": dict(color="tab:blue", marker="o"),
    "adapted_backbone": dict(color="tab:orange", marker="s"),
    "adapter_blocks": dict(color="tab:green", marker="^"),
    "decoder_input": dict(color="tab:red", marker="*", ms=9),
    "decoder_fused": dict(color="tab:purple", marker="D"),
}
PANELS = (
    ("mean_cosine", "mean pairwise cosine"),
    ("effective_rank", "effective rank"),
    ("class_within", "within-class cosine"),
    ("class_gap", "within − between class cosine"),
)


def _series_xy(entries: list[dict[str, Any]], key: str) -> tuple[list[float], list[float], list[float]]:
    x = [e["position"] for e in entries]
    y = [e[key]["mean"] if e[key]["mean"] is not None else np.nan for e in entries]
    err = [e[key]["std"] if e[key]["std"] is not None else np.nan for e in entries]
    return x, y, err


def token_layers(doc: dict[str, Any], path: Path) -> Path:
    """Per layer (x = depth through the network): similarity, effective rank, class within and gap, per series."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.2), squeeze=False)
    for ax, (key, label) in zip(axes.ravel(), PANELS):
        for name, series in doc["series"].items():
            x, y, err = _series_xy(series["entries"], key)
            style = STYLE.get(name, {})
            ax.errorbar(
                x,
                y,
                yerr=None if np.isnan(err).all() else err,
                capsize=2,
                lw=1.2,
                ms=style.get("ms", 4),
                color=style.get("color"),
                marker=style.get("marker", "o"),
                label=series["description"],
            )
            if key == "class_within":
                _, between, _ = _series_xy(series["entries"], "class_between")
                ax.plot(x, between, ls="--", lw=1, color=style.get("color"))
        ax.set_title(label + (" (dashed: between-class)" if key == "class_within" else ""))
        ax.set_xlabel("block (depth through the network)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6)
    m = doc["model"]
    fig.suptitle(
        f"{m['name']} tokens on {doc['dataset']} ({len(doc['images'])} images, {doc['input_size']} px, "
        f"{doc['eval_mode']})"
    )
    fig.tight_layout()
    return save_figure(fig, path, tight=False)


def token_distance(doc: dict[str, Any], path: Path) -> Path:
    """Mean cosine vs distance between tokens (in patches), one curve per layer, one panel per series."""
    names = list(doc["series"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        entries = doc["series"][name]["entries"]
        colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(entries), 1)))
        for entry, colour in zip(entries, colours):
            d = entry["distance"]
            ax.plot(d["patches"], d["mean_cosine"], color=colour, lw=1.1, label=entry["name"])
        ax.set_title(doc["series"][name]["description"])
        ax.set_xlabel("distance (cells of the token grid)")
        ax.set_ylabel("mean cosine")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, ncol=2 if len(entries) > 8 else 1)
    fig.tight_layout()
    return save_figure(fig, path, tight=False)


def _spread(n: int, k: int) -> list[int]:
    """k indices out of n, evenly spaced, always including the last."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [n - 1]


def token_heatmaps(
    heatmaps: dict[str, list[tuple[str, np.ndarray]]],
    display: np.ndarray,
    query: dict[str, Any],
    columns: int,
    title: str,
    path: Path,
) -> Path:
    """Row per series: the image with the query token, then its cosine similarity to every token of some layers."""
    rows = [(name, [maps[i] for i in _spread(len(maps), columns)]) for name, maps in heatmaps.items() if maps]
    ncols = 1 + max(len(maps) for _, maps in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.1 * ncols, 2.2 * len(rows) + 0.4), squeeze=False)
    size = display.shape[0]
    grid_h, grid_w = query["grid"]
    cy, cx = (query["row"] + 0.5) * size / grid_h, (query["col"] + 0.5) * size / grid_w
    image = None
    for r, (name, maps) in enumerate(rows):
        axes[r, 0].imshow(display)
        axes[r, 0].scatter([cx], [cy], marker="x", color="yellow", s=40)
        axes[r, 0].set_title(name, fontsize=7)
        for c, (label, heat) in enumerate(maps, start=1):
            axes[r, c].imshow(display)
            image = axes[r, c].imshow(
                heat, cmap="coolwarm", vmin=-1, vmax=1, alpha=0.75, extent=(0, size, size, 0), interpolation="nearest"
            )
            axes[r, c].set_title(label, fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[r, 1 + len(maps) :]:
            ax.set_visible(False)
    fig.suptitle(title)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="cosine to the query token")
    return save_figure(fig, path, tight=True)


def sizes_plot(rows: list[dict[str, Any]], metric: str, title: str, path: Path) -> Path:
    """Metric (with CI), seconds per image and peak memory against the input size."""
    x = [r["input_size"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    y = np.array([r["metrics"].get(metric, np.nan) for r in rows], dtype=float)
    lo = np.array([r.get("ci", {}).get("ci_lower", np.nan) for r in rows], dtype=float)
    hi = np.array([r.get("ci", {}).get("ci_upper", np.nan) for r in rows], dtype=float)
    err = None if np.isnan(lo).all() else np.abs(np.vstack([y - lo, hi - y]))
    axes[0].errorbar(x, y, yerr=err, marker="o", capsize=3)
    axes[0].set_ylabel(metric)
    axes[1].plot(x, [r["s_per_image"] for r in rows], marker="o")
    axes[1].set_ylabel("seconds per test image")
    axes[2].plot(x, [r["peak_memory_mb"] for r in rows], marker="o")
    axes[2].set_ylabel("peak memory (MB)")
    for ax in axes:
        ax.set_xlabel("input size (px)")
        ax.set_xticks(x, [str(v) for v in x])
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, tight=False)
