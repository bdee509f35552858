"""`densebench analyze tokens`: how alike a backbone's patch tokens are, layer by layer, on real images.

The paper explains why higher-capacity adapters saturate by patch tokens becoming too similar to
each other. This measures it, per layer, on a seeded choice of images of a dataset:

- mean pairwise cosine similarity of the patch tokens, and its profile over spatial distance;
- effective rank (Roy & Vetterli) of the token matrix: how many directions the tokens really span;
- class separability: within-class vs between-class cosine, tokens labelled by the majority class
  of their patch's ground-truth pixels;
- a heatmap of one query token's similarity over the image.

Images are prepared as the model sees them in evaluation (`eval.mode`): slide mode takes the central
input_size × input_size window at native resolution (padded when smaller, padding tokens left out),
resize mode squashes the image to input_size × input_size.

Series of token sets (each a list of entries, e.g. one per block):

- `backbone`: every block of the backbone as built (pretrained weights, or random init without them).
With `run=RUN_DIR` (weights of the run's best epoch loaded), what the trained model uses instead:
- `adapted_backbone`: every block again, when training changed backbone weights (full, LoRA, DoRA);
- `adapter_blocks`: the output of each transformer block the adapter adds (transformer adapter);
- `decoder_input`: the token map the decoder receives — for frozen and CNN adapters the backbone's
  last layer itself, since neither changes the tokens;
- `decoder_fused`: when the adapter also feeds skip features (CNN adapter), the first decoder block's
  output, where tokens and the CNN's 1/8-resolution features meet. Not tokens, but the nearest thing
  to them after the adapter's detail enters: cells of the skip's grid are treated as tokens.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from rich.table import Table
from torch import Tensor, nn

from densebench.analysis import stats
from densebench.analysis.options import announce, load_config, output_dir, split_args
from densebench.data.select import choose
from densebench.backbones.base import Backbone
from densebench.data.base import Record
from densebench.engine import checkpoint
from densebench.engine.inference import Normalizer
from densebench.engine.progress import RunProgress
from densebench.files import write_json
from densebench.engine.setup import build_environment
from densebench.errors import ConfigError
from densebench.model import Segmenter

SERIES = {
    "backbone": "backbone blocks (as built)",
    "adapted_backbone": "backbone blocks after training",
    "adapter_blocks": "blocks the adapter adds",
    "decoder_input": "token map the decoder receives",
    "decoder_fused": "first decoder block (tokens + adapter skip)",
}


@dataclass
class View:
    """One image as the model sees it: normalised input, labels and which pixels are image (not padding)."""

    key: str
    x: Tensor  # (1, 3, S, S) normalised, on the device
    mask: Tensor  # (S, S) class ids, ignore where unlabelled or padding
    inside: Tensor  # (S, S) bool, False on padding
    display: np.ndarray  # (S, S, 3) uint8, what the heatmap is drawn over


def prepare(
    record: Record, key: str, size: int, mode: str, normalize: Normalizer, ignore_index: int, device: torch.device
) -> View:
    """The central size×size window (slide mode, padded when smaller) or the image resized to size×size."""
    image = torch.from_numpy(np.ascontiguousarray(record.image.transpose(2, 0, 1)))[None].to(device)
    mask = torch.from_numpy(np.ascontiguousarray(record.mask)).long().to(device)
    if mode == "resize":
        x = F.interpolate(normalize(image), size=(size, size), mode="bilinear", align_corners=False)
        mask = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
        shown = F.interpolate(image.float(), size=(size, size), mode="bilinear", align_corners=False)
        return View(key, x, mask, torch.ones_like(mask, dtype=torch.bool), _display(shown))
    if mode != "slide":
        raise ConfigError(f"eval.mode={mode} is not known; use slide or resize")
    h, w = mask.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    image, mask = image[..., top : top + size, left : left + size], mask[top : top + size, left : left + size]
    ch, cw = mask.shape
    pad = (0, size - cw, 0, size - ch)
    inside = F.pad(torch.ones_like(mask, dtype=torch.bool), pad, value=False)
    return View(
        key,
        F.pad(normalize(image), pad),
        F.pad(mask, pad, value=ignore_index),
        inside,
        _display(F.pad(image.float(), pad)),
    )


def _display(image: Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).clamp(0, 255).byte().cpu().numpy()


def grid_labels(view: View, grid: tuple[int, int], num_classes: int, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Per cell of `grid` (row-major): majority class (or UNLABELLED), and whether it covers image pixels."""
    labels = stats.cell_labels(view.mask, grid, num_classes, ignore_index)
    inside = F.adaptive_max_pool2d(view.inside[None, None].float(), grid)[0, 0].flatten() > 0
    return labels, inside


@dataclass
class Entry:
    """Per-image statistics of one token set (e.g. block 7 of the backbone), summed for the distance profile."""

    name: str
    position: float
    values: dict[str, list[float]] = field(default_factory=dict)
    dist_sum: Tensor | None = None
    dist_count: Tensor | None = None
    heatmap: np.ndarray | None = None  # similarity of the query token, first image only

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def add_profile(self, sums: Tensor, counts: Tensor) -> None:
        if self.dist_sum is None or self.dist_count is None:
            self.dist_sum, self.dist_count = sums.clone(), counts.clone()
            return
        n = max(len(self.dist_sum), len(sums))
        self.dist_sum = F.pad(self.dist_sum, (0, n - len(self.dist_sum))) + F.pad(sums, (0, n - len(sums)))
        self.dist_count = F.pad(self.dist_count, (0, n - len(self.dist_count))) + F.pad(counts, (0, n - len(counts)))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "position": self.position}
        for key, values in self.values.items():
            arr = np.asarray(values, dtype=float)
            finite = arr[np.isfinite(arr)]
            out[key] = {
                "mean": float(finite.mean()) if finite.size else math.nan,
                "std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
                "n": int(finite.size),
            }
        assert self.dist_sum is not None and self.dist_count is not None  # every entry gets a profile when added
        counts = self.dist_count.numpy()
        used = np.nonzero(counts)[0]
        out["distance"] = {
            "patches": used.tolist(),
            "mean_cosine": (self.dist_sum.numpy()[used] / counts[used]).tolist(),
            "pairs": counts[used].tolist(),
        }
        return out


class Collector:
    """Accumulates the statistics of every token set, image by image."""

    def __init__(self, num_classes: int, ignore_index: int, query: Any) -> None:
        self.num_classes, self.ignore_index, self.query = num_classes, ignore_index, query
        self.series: dict[str, dict[str, Entry]] = {}
        self.query_cell: dict[str, Any] | None = None

    def add(self, series: str, name: str, position: float, fmap: Tensor, view: View, first: bool) -> None:
        """One token map (1, D, h, w) of one image."""
        entry = self.series.setdefault(series, {}).setdefault(name, Entry(name, position))
        grid = (int(fmap.shape[-2]), int(fmap.shape[-1]))
        tokens = fmap[0].flatten(1).T.float()
        labels, inside = grid_labels(view, grid, self.num_classes, self.ignore_index)
        used = tokens[inside]
        entry.add("mean_cosine", stats.mean_pairwise_cosine(used))
        rank = stats.effective_rank(used)
        entry.add("effective_rank", rank)
        entry.add("effective_rank_fraction", rank / min(used.shape))
        for key, value in stats.class_separability(used, labels[inside]).items():
            if key != "n_classes":
                entry.add(f"class_{key}", value)
        entry.add_profile(*stats.cosine_by_distance(tokens, grid, inside))
        if first:
            row, col = self._query(grid, inside)
            unit = stats.unit(tokens)
            entry.heatmap = (unit @ unit[row * grid[1] + col]).reshape(grid).cpu().numpy()

    def _query(self, grid: tuple[int, int], inside: Tensor) -> tuple[int, int]:
        """The query cell on this grid; given on the patch grid, it is scaled to other grids (decoder maps)."""
        h, w = grid
        if self.query_cell is None:  # the first map added is a backbone block: its grid is the patch grid
            rows = int(inside.reshape(grid).any(1).sum())
            cols = int(inside.reshape(grid).any(0).sum())
            if self.query == "center":
                r, c = rows // 2, cols // 2
            else:
                if isinstance(self.query, str) or len(self.query) != 2:
                    raise ConfigError(f"query={self.query}: use center or [row, col] on the patch grid")
                r, c = int(self.query[0]), int(self.query[1])
                if not (0 <= r < rows and 0 <= c < cols):
                    raise ConfigError(f"query=[{r}, {c}] is outside the {rows}x{cols} patch grid of the image")
            self.query_cell = {"row": r, "col": c, "grid": [h, w]}
        base_h, base_w = self.query_cell["grid"]
        return (
            min(h - 1, int((self.query_cell["row"] + 0.5) * h / base_h)),
            min(w - 1, int((self.query_cell["col"] + 0.5) * w / base_w)),
        )

    def result(self) -> dict[str, Any]:
        return {
            name: {"description": SERIES[name], "entries": [e.summary() for e in entries.values()]}
            for name, entries in self.series.items()
        }

    def heatmaps(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        return {
            name: [(e.name, e.heatmap) for e in entries.values() if e.heatmap is not None]
            for name, entries in self.series.items()
        }


@contextmanager
def every_layer(backbone: Backbone) -> Iterator[None]:
    """Make the backbone return the tokens of all its blocks (each after the final norm)."""
    saved = backbone.layers
    backbone.layers = list(range(backbone.num_blocks))
    try:
        yield
    finally:
        backbone.layers = saved


def add_blocks(collector: Collector, series: str, backbone: Backbone, view: View, first: bool) -> None:
    with every_layer(backbone):
        maps = backbone(view.x)
    for i, fmap in enumerate(maps):
        collector.add(series, f"block {i + 1}", i + 1, fmap, view, first)


def adapter_block_stacks(model: Segmenter) -> list[nn.Module]:
    """Transformer blocks the adapter owns (outside the backbone), in order."""
    from densebench.backbones.blocks import block_stacks

    return [
        block
        for path, stack in block_stacks(model.adapter)
        if not path.startswith("backbone")
        for block in stack.children()
    ]


def add_adapted(collector: Collector, model: Segmenter, view: View, first: bool, backbone_changed: bool) -> None:
    """Token sets of the trained model: adapted backbone blocks, adapter blocks, decoder input and fused map."""
    backbone = model.backbone
    depth = backbone.num_blocks
    if backbone_changed:
        add_blocks(collector, "adapted_backbone", backbone, view, first)
    grid = backbone.grid(*view.x.shape[-2:])
    captured: dict[str, Any] = {"blocks": []}
    hooks = [model.adapter.register_forward_hook(lambda m, i, out: captured.__setitem__("features", out))]
    for block in adapter_block_stacks(model):
        hooks.append(block.register_forward_hook(lambda m, i, out: captured["blocks"].append(out)))
    hooks.append(model.decoder.blocks[0].register_forward_hook(lambda m, i, out: captured.__setitem__("fused", out)))
    try:
        model(view.x)
    finally:
        for hook in hooks:
            hook.remove()
    for i, tokens in enumerate(captured["blocks"]):
        collector.add(
            "adapter_blocks", f"adapter block {i + 1}", depth + i + 1, backbone.tokens_to_map(tokens, grid), view, first
        )
    last = depth + len(captured["blocks"])
    features = captured["features"]
    collector.add("decoder_input", "decoder input", last, features.map, view, first)
    if features.skips:
        collector.add("decoder_fused", "decoder block 1", last + 1, captured["fused"], view, first)


def backbone_changed_by(state: dict[str, Tensor]) -> bool:
    """Whether a run's trainable state holds backbone tensors (full fine-tuning, LoRA, DoRA)."""
    return any(k.startswith("adapter.backbone.") for k in state)


@torch.no_grad()
def analyze(cfg: DictConfig, options: DictConfig, run: Path | None) -> tuple[dict[str, Any], Collector, View]:
    """Token statistics of the configured model on `options.n_images` images; returns (document, collector, first view)."""
    env = build_environment(cfg)
    device, dtype, source = env.device, env.autocast_dtype, env.splits.source
    split = str(options.split)
    chosen = choose(env.splits.splits, split, options.n_images, int(options.image_seed))
    model = env.segmenter.eval()
    backbone, size = model.backbone, env.input_size
    normalize = env.normalizer()
    load = env.sample_loader()
    views = [prepare(load(s), s.key, size, cfg.eval.mode, normalize, source.ignore_index, device) for s in chosen]
    collector = Collector(source.num_classes, source.ignore_index, options.query)
    progress = RunProgress(cfg.progress)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    with progress:
        progress.start_steps("tokens: backbone", len(views))
        for i, view in enumerate(views):
            with autocast:
                add_blocks(collector, "backbone", backbone, view, i == 0)
            progress.step(view.key)
        if run is not None:
            state = checkpoint.load(run / "checkpoints" / "best.pt", device)["model"]
            model.load_trainable_state_dict(state)
            changed = backbone_changed_by(state)
            progress.start_steps("tokens: trained model", len(views))
            for i, view in enumerate(views):
                with autocast:
                    add_adapted(collector, model, view, i == 0, changed)
                progress.step(view.key)
    document = {
        "kind": "densebench.analysis.tokens",
        "model": {**env.model_facts(), "num_blocks": backbone.num_blocks},
        "adapter": cfg.adapter.name if run is not None else None,
        "run": str(run) if run is not None else None,
        "dataset": cfg.dataset.name,
        "classes": list(source.classes),
        "split": split,
        "images": [v.key for v in views],
        "input_size": size,
        "eval_mode": cfg.eval.mode,
        "query": {"image": views[0].key, **(collector.query_cell or {})},
        "series": collector.result(),
    }
    return document, collector, views[0]


def write_outputs(doc: dict[str, Any], collector: Collector, first: View, columns: int, out: Path) -> list[Path]:
    """tokens.json and the three figures."""
    from densebench.analysis import plots

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "tokens.json", doc)
    title = f"{doc['model']['name']}: cosine similarity to the query token ({first.key})"
    return [
        out / "tokens.json",
        plots.token_layers(doc, out / "layers"),
        plots.token_distance(doc, out / "distance"),
        plots.token_heatmaps(collector.heatmaps(), first.display, doc["query"], columns, title, out / "heatmap"),
    ]


def summary_table(doc: dict[str, Any]) -> Table:
    table = Table(
        title=f"{doc['model']['name']} on {doc['dataset']}: patch tokens ({len(doc['images'])} images, "
        f"{doc['input_size']} px)"
    )
    for column in ("series", "entry", "mean cos", "eff. rank", "within", "between", "gap"):
        label = column in ("series", "entry")
        table.add_column(column, justify="left" if label else "right", no_wrap=label)
    for name, series in doc["series"].items():
        for e in series["entries"]:
            cells = [
                e[k]["mean"] for k in ("mean_cosine", "effective_rank", "class_within", "class_between", "class_gap")
            ]
            table.add_row(name, e["name"], *("-" if v is None or v != v else f"{v:.3f}" for v in cells))
    return table


def main(argv: list[str]) -> int:
    args = split_args(argv, "tokens")
    cfg = load_config(args)
    doc, collector, first = analyze(cfg, args.options, args.run)
    out = output_dir(args, cfg, "tokens")
    written = write_outputs(doc, collector, first, int(args.options.heatmap_columns), out)
    return announce(written, summary_table(doc) if cfg.progress != "none" else None)
