"""Whole-slide prediction: read at the run's µm/px, skip background, stream blocks, resume after a kill.

The working grid (the slide at the µm/px the run was trained at) gets the sliding windows the test
path would put on it as one image; they are computed in blocks of block_windows × block_windows
windows, in raster order. A block adds its windows' blended sums over its footprint, adds the sums
earlier blocks' windows left in its core (their spill files), and labels its core; the sums its own
windows leave beyond its core go to its spill file. So every pixel gets exactly the windows and
weights of the whole-image test path, no window is computed twice, and memory is one block's sums
however large the slide. Class ids of finished cores go into a raw file in `<out>/.<stem>.partial/`,
and the block's number into `done.txt` after its labels and spill: a run killed at any point resumes
from the last finished block. At the end the raw file becomes a pyramidal label TIFF, a GeoJSON of
class polygons and class areas, and the partial folder is removed; the outputs depend only on the
raw file, so an interrupted and an uninterrupted run write the same bytes.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor

from densebench.engine.inference import window_starts
from densebench.engine.progress import RunProgress
from densebench.errors import ConfigError, DataError, DenseBenchError
from densebench.files import atomic_path, read_json, write_json
from densebench.predict.trained import TrainedRun
from densebench.predict.writers import (
    NOT_TISSUE,
    area_rows,
    write_geojson,
    write_pyramid,
)

SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
TIFF_SUFFIXES = (".tif", ".tiff")
LEVEL_TOLERANCE = 1.01  # a level at most 1% coarser than needed counts as the needed one
COUNT_BYTES = 2**18  # labels counted at once (np.bincount makes an 8-byte copy of them)


def is_slide(path: Path) -> bool:
    """Slide formats by suffix; a TIFF is a slide when it is tiled (pyramidal TIFF, SVS-like), else an image."""
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                return bool(tif.pages.first.is_tiled)
        except (tifffile.TiffFileError, OSError, ValueError, IndexError):
            return False  # read as an image, whose reader names the problem
    return suffix in SLIDE_SUFFIXES


@dataclass(frozen=True)
class SlideOutputs:
    """`<out>/<stem>.mask.tif`, `<stem>.geojson`, `<stem>.slide.json`; work in progress in `.<stem>.partial/`."""

    mask: Path
    geojson: Path
    facts: Path
    partial: Path

    @classmethod
    def for_input(cls, path: Path, out: Path) -> SlideOutputs:
        s = path.stem
        return cls(out / f"{s}.mask.tif", out / f"{s}.geojson", out / f"{s}.slide.json", out / f".{s}.partial")

    def paths(self) -> list[Path]:
        return [self.mask, self.geojson, self.facts]


@dataclass
class Plan:
    """Geometry of one slide's prediction; `scale`: slide level-0 pixels per working pixel; `block`:
    a block's side in working pixels (`window + (block_windows-1)·stride`)."""

    width: int
    height: int
    mpp: float
    slide_mpp: float
    scale: float
    level: int
    level_downsample: float
    window: int
    overlap: float
    block_windows: int
    block: int
    tissue_level: int

    def blocks(self) -> list[Block]:
        """The working grid's sliding windows (those of the test path on the whole grid) in groups of
        block_windows × block_windows, in raster order."""
        ys = window_starts(self.height, self.window, self.overlap)
        xs = window_starts(self.width, self.window, self.overlap)
        n = self.block_windows
        rows = [ys[i : i + n] for i in range(0, len(ys), n)]
        cols = [xs[i : i + n] for i in range(0, len(xs), n)]
        return [
            Block(
                r, c, ry, cx, ry[0], rows[r + 1][0] if r + 1 < len(rows) else self.height,
                cx[0], cols[c + 1][0] if c + 1 < len(cols) else self.width,
            )
            for r, ry in enumerate(rows)
            for c, cx in enumerate(cols)
        ]  # fmt: skip

    def footprint(self, block: Block) -> tuple[int, int, int, int]:
        """The block's footprint clipped to the grid (a grid smaller than a window is padded instead)."""
        fy0, fy1, fx0, fx1 = block.footprint(self.window)
        return fy0, min(fy1, self.height), fx0, min(fx1, self.width)


@dataclass(frozen=True)
class Block:
    """Windows starting at rows `ys` × columns `xs`. They cover the footprint [ys[0], ys[-1]+window) ×
    [xs[0], xs[-1]+window); the block's labels are its core [y0, y1) × [x0, x1), up to where the next
    blocks' windows start. Its windows reach past the core into the cores to the right, below and
    below-right; those sums go to a spill file the later blocks add in."""

    r: int
    c: int
    ys: list[int]
    xs: list[int]
    y0: int
    y1: int
    x0: int
    x1: int

    def footprint(self, window: int) -> tuple[int, int, int, int]:
        return self.ys[0], self.ys[-1] + window, self.xs[0], self.xs[-1] + window


def open_slide(path: Path):
    try:
        import openslide
    except ImportError:
        raise DenseBenchError(f"{path}: reading slides needs OpenSlide; pip install 'densebench[wsi]'") from None

    try:
        return openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, OSError) as exc:
        raise DataError(
            f"{path}: not a slide OpenSlide can read ({type(exc).__name__}: {exc}); "
            "give an SVS, pyramidal TIFF or another OpenSlide format"
        ) from None


def slide_resolution(slide, path: Path, given: float | None) -> float:
    import openslide

    if given is not None:
        return float(given)
    value = slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
    if value is None:
        raise DataError(f"{path}: no resolution metadata (µm/px); pass --slide-mpp with its µm per pixel at level 0")
    return float(value)


def make_plan(slide, path: Path, mpp: float, slide_mpp: float, window: int, overlap: float, block_windows: int) -> Plan:
    """Working grid at `mpp`, the finest level not coarser than it (resampled down), the tissue level."""
    scale = mpp / slide_mpp
    w0, h0 = slide.dimensions
    downsamples = list(slide.level_downsamples)
    level = max(i for i, d in enumerate(downsamples) if d <= scale * LEVEL_TOLERANCE or i == 0)
    stride = max(1, int(window * (1 - overlap)))
    fewest = math.ceil(window / stride)  # so a block's windows reach no further than the next block's core
    if block_windows < fewest:
        raise ConfigError(
            f"--block-windows {block_windows}: with eval.overlap={overlap} a block needs at least {fewest} "
            "windows a side"
        )
    return Plan(
        width=max(1, round(w0 / scale)),
        height=max(1, round(h0 / scale)),
        mpp=mpp,
        slide_mpp=slide_mpp,
        scale=scale,
        level=level,
        level_downsample=float(downsamples[level]),
        window=window,
        overlap=overlap,
        block_windows=block_windows,
        block=window + (block_windows - 1) * stride,
        tissue_level=len(downsamples) - 1,
    )


def block_cache(slide, plan: Plan):
    """OpenSlide's tile cache sized to one block plus a ring of tiles (decoded RGBA): tiles on the seam
    with the next block are decoded once, and the cache does not grow with the slide (OpenSlide's
    default, 32 MiB per slide, fills with whatever was read last)."""
    import openslide

    def tile(axis: str) -> int:
        return int(slide.properties.get(f"openslide.level[{plan.level}].tile-{axis}", 256))

    side = math.ceil(plan.block * plan.scale / plan.level_downsample)  # one block in level pixels
    return openslide.OpenSlideCache(4 * (side + 2 * tile("height")) * (side + 2 * tile("width")))


def read_rgb(slide, path: Path, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 of a region; transparent pixels (outside the scanned area) are white."""
    import openslide

    try:
        rgba = np.asarray(slide.read_region(location, level, size))
    except openslide.OpenSlideError as exc:
        raise DataError(f"{path}: pyramid level {level} cannot be read ({exc}); the file may be damaged") from None
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 255
    return rgb


class TissueMask:
    """Tissue on the slide's coarsest level: colour saturation (max-min of RGB) above a threshold."""

    def __init__(self, slide, path: Path, plan: Plan, threshold: int, dilate: int) -> None:
        level = plan.tissue_level
        rgb = read_rgb(slide, path, (0, 0), level, slide.level_dimensions[level])
        sat = rgb.max(-1).astype(np.int16) - rgb.min(-1)
        mask = (sat > threshold).astype(np.uint8) if threshold > 0 else np.ones(sat.shape, np.uint8)
        if dilate > 0:
            mask = cv2.dilate(mask, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
        self.mask = mask.astype(bool)
        self.factor = plan.scale / float(slide.level_downsamples[level])  # mask pixels per working pixel

    def _index(self, start: int, length: int, limit: int) -> np.ndarray:
        return np.minimum(((np.arange(start, start + length) + 0.5) * self.factor).astype(np.int64), limit - 1)

    def block(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        iy, ix = self._index(y0, h, self.mask.shape[0]), self._index(x0, w, self.mask.shape[1])
        return self.mask[iy][:, ix]

    def any(self, y0: int, x0: int, h: int, w: int) -> bool:
        iy = np.unique(self._index(y0, h, self.mask.shape[0]))
        ix = np.unique(self._index(x0, w, self.mask.shape[1]))
        return bool(self.mask[np.ix_(iy, ix)].any())


class LabelStore:
    """Class ids of the working grid in a raw uint8 file (row-major), written and read by row ranges."""

    def __init__(self, path: Path, height: int, width: int) -> None:
        self.height, self.width = height, width
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                row = bytes([NOT_TISSUE]) * width
                for _ in range(height):
                    f.write(row)
            os.replace(tmp, path)
        self.fd = os.open(path, os.O_RDWR)

    def close(self) -> None:
        os.close(self.fd)

    def write_block(self, y0: int, x0: int, labels: np.ndarray) -> None:
        for r, row in enumerate(labels):
            os.pwrite(self.fd, row.tobytes(), (y0 + r) * self.width + x0)
        os.fsync(self.fd)

    def read(self, y0: int, y1: int, step: int = 1, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Rows y0, y0+step, ... < y1 and columns x0, x0+step, ... < x1 (default: to the right edge)."""
        x1 = self.width if x1 is None else x1
        ys = range(y0, y1, step)
        if step == 1 and (x0, x1) == (0, self.width):
            data = os.pread(self.fd, (y1 - y0) * self.width, y0 * self.width)
            return np.frombuffer(data, np.uint8).reshape(y1 - y0, self.width)
        out = np.empty((len(ys), len(range(x0, x1, step))), np.uint8)
        for r, y in enumerate(ys):
            out[r] = np.frombuffer(os.pread(self.fd, x1 - x0, y * self.width + x0), np.uint8)[::step]
        return out

    def counts(self, n: int) -> np.ndarray:
        """Pixels per class id < n, counted in bands of about `COUNT_BYTES`."""
        total = np.zeros(256, np.int64)
        band = max(1, COUNT_BYTES // self.width)
        for y in range(0, self.height, band):
            total += np.bincount(self.read(y, min(self.height, y + band)).reshape(-1), minlength=256)
        return total[:n]


def _done(path: Path) -> set[int]:
    """Finished block numbers; a line cut short by a kill (no newline yet) does not count."""
    if not path.is_file():
        return set()
    text = path.read_text()
    lines = text.split("\n")[:-1]  # the part after the last newline is unfinished
    return {int(line) for line in lines if line.strip().isdigit()}


def predict_slide(
    run: TrainedRun, path: Path, outputs: SlideOutputs, mpp: float, slide_mpp: float | None, opts, progress: str
) -> list[dict]:
    """Predict one slide (resuming a partial run); writes its outputs and returns its class-area rows."""
    if run.predictor.mode != "slide":
        raise ConfigError(
            f"eval.mode={run.predictor.mode} squashes a whole image into one window; "
            "predict slides with eval.mode=slide"
        )
    slide = open_slide(path)
    try:
        plan = make_plan(
            slide,
            path,
            mpp,
            slide_resolution(slide, path, slide_mpp),
            run.input_size,
            run.predictor.overlap,
            int(opts.block_windows),
        )
        manifest = {
            "slide": str(path.resolve()),
            "slide_bytes": path.stat().st_size,
            "slide_mtime_ns": path.stat().st_mtime_ns,
            "run": str(run.dir.resolve()),
            "checkpoint_mtime_ns": (run.dir / "checkpoints" / "best.pt").stat().st_mtime_ns,
            "eval": OmegaConf.to_container(run.cfg.eval, resolve=True),
            "plan": asdict(plan),
            "tissue_threshold": int(opts.tissue_threshold),
            "tissue_dilate": int(opts.tissue_dilate),
        }
        _prepare_partial(outputs.partial, manifest)
        slide.set_cache(block_cache(slide, plan))
        tissue = TissueMask(slide, path, plan, int(opts.tissue_threshold), int(opts.tissue_dilate))
        store = LabelStore(outputs.partial / "labels.u8", plan.height, plan.width)
        try:
            seconds, windows, total = _predict_blocks(run, slide, path, plan, tissue, store, outputs.partial, progress)
            counts = store.counts(run.num_classes)
            levels = write_pyramid(outputs.mask, store, run.colours, plan.mpp, int(opts.tile))
            step = next(
                (
                    s
                    for s in levels
                    if max(math.ceil(plan.height / s), math.ceil(plan.width / s)) <= int(opts.geojson_max_side)
                ),
                levels[-1],
            )
            write_geojson(outputs.geojson, store, step, run.classes, run.colours, plan.scale)
        finally:
            store.close()
    finally:
        slide.close()
    rows = area_rows(path.name, counts, run.classes, plan.mpp)
    write_json(
        outputs.facts,
        {
            "slide": path.name,
            "run": str(run.dir),
            "plan": asdict(plan),
            "mask_levels": levels,
            "geojson_level_downsample": step,
            "windows": total,
            "tissue_mm2": round(int(counts.sum()) * plan.mpp**2 / 1e6, 6),
            "areas_mm2": {r["class"]: r["area_mm2"] for r in rows},
        },
    )
    shutil.rmtree(outputs.partial)
    if windows:
        RunProgress(progress).log(
            f"{path.name}: {windows} windows in {seconds:.1f}s ({windows / seconds:.1f} windows/s)"
        )
    return rows


def _prepare_partial(partial: Path, manifest: dict) -> None:
    """A partial folder of the same slide, run and settings is resumed; one of others is an error."""
    saved = partial / "manifest.json"
    if saved.is_file():
        previous = read_json(saved)
        if previous != manifest:
            diff = next(k for k in manifest if previous.get(k) != manifest[k])
            raise DataError(
                f"{partial}: an unfinished prediction with other settings ({diff} differs); "
                "delete the folder or add --force to start over"
            )
        return
    partial.mkdir(parents=True, exist_ok=True)
    write_json(saved, manifest)


def _spill_path(partial: Path, r: int, c: int) -> Path:
    return partial / f"spill_{r}_{c}.npz"


def _save_spill(path: Path, sums: Tensor, block: Block, plan: Plan) -> None:
    """The block's sums (C+1, footprint) beyond its core, clipped to the grid: a right strip beside the
    core and a bottom strip below it (with the corner), each with its origin in working pixels."""
    fy0, fy1, fx0, fx1 = plan.footprint(block)
    right = sums[:, : block.y1 - fy0, block.x1 - fx0 : fx1 - fx0]
    bottom = sums[:, block.y1 - fy0 : fy1 - fy0, : fx1 - fx0]
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(
            f,
            right=right.cpu().numpy(),
            right_at=np.array([fy0, block.x1]),
            bottom=bottom.cpu().numpy(),
            bottom_at=np.array([block.y1, fx0]),
        )


def _add_spills(sums: Tensor, block: Block, paths: list[Path]) -> None:
    """Add to `sums` (whose origin is the block's core origin) the parts of earlier blocks' spills
    that fall in the block's core."""
    for path in paths:
        with np.load(path) as spill:
            for name in ("right", "bottom"):
                part, (gy, gx) = spill[name], spill[f"{name}_at"]
                y0, y1 = max(gy, block.y0), min(gy + part.shape[1], block.y1)
                x0, x1 = max(gx, block.x0), min(gx + part.shape[2], block.x1)
                if y0 < y1 and x0 < x1:
                    piece = torch.from_numpy(part[:, y0 - gy : y1 - gy, x0 - gx : x1 - gx]).to(sums.device)
                    sums[:, y0 - block.y0 : y1 - block.y0, x0 - block.x0 : x1 - block.x0] += piece


def _predict_blocks(
    run: TrainedRun,
    slide,
    path: Path,
    plan: Plan,
    tissue: TissueMask,
    store: LabelStore,
    partial: Path,
    progress: str,
) -> tuple[float, int, int]:
    """Every block with tissue in its footprint not finished yet; returns seconds and windows of this
    call, and all windows."""
    done_file = partial / "done.txt"
    done = _done(done_file)
    blocks = plan.blocks()
    index = {(b.r, b.c): i for i, b in enumerate(blocks)}

    def region(b: Block) -> tuple[int, int, int, int]:
        """(y0, x0, h, w) of the block's clipped footprint: what is read and checked for tissue."""
        fy0, fy1, fx0, fx1 = plan.footprint(b)
        return fy0, fx0, fy1 - fy0, fx1 - fx0

    todo = {i for i, b in enumerate(blocks) if tissue.any(*region(b))}
    counts = {i: len(blocks[i].ys) * len(blocks[i].xs) for i in todo}
    finished = sum(counts[i] for i in todo if i in done)

    def pending(r: int, c: int) -> bool:
        i = index.get((r, c))
        return i is not None and i in todo and i not in done

    def spill_needed(r: int, c: int) -> bool:
        """A block's windows reach the cores to its right, below and below-right: needed while one is to do."""
        return pending(r, c + 1) or pending(r + 1, c) or pending(r + 1, c + 1)

    ls = plan.scale / plan.level_downsample  # level pixels per working pixel
    bar = RunProgress(progress)
    windows, t0 = 0, time.perf_counter()
    with bar, done_file.open("a") as log:
        bar.start_steps(f"{path.name} windows", sum(counts.values()), completed=finished)
        for i in sorted(todo - done):
            b = blocks[i]
            y0, x0, h, w = region(b)
            size = (max(1, math.ceil(w * ls)), max(1, math.ceil(h * ls)))
            rgb = read_rgb(slide, path, (round(x0 * plan.scale), round(y0 * plan.scale)), plan.level, size)
            if size != (w, h):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if ls > 1 else cv2.INTER_LINEAR)
            fy0, fy1, fx0, fx1 = b.footprint(plan.window)
            boxes = [(y - fy0, x - fx0) for y in b.ys for x in b.xs]
            probs, norm = run.window_sums(rgb, boxes, (fy1 - fy0, fx1 - fx0))
            sums = torch.cat([probs, norm[None]])
            neighbours = [(b.r - 1, b.c - 1), (b.r - 1, b.c), (b.r, b.c - 1)]
            _add_spills(sums, b, [p for rc in neighbours if (p := _spill_path(partial, *rc)).is_file()])
            core = sums[:, : b.y1 - b.y0, : b.x1 - b.x0]
            labels = (core[:-1] / core[-1]).argmax(0).to(torch.uint8).cpu().numpy()
            labels[~tissue.block(b.y0, b.x0, b.y1 - b.y0, b.x1 - b.x0)] = NOT_TISSUE
            store.write_block(b.y0, b.x0, labels)
            if spill_needed(b.r, b.c):
                _save_spill(_spill_path(partial, b.r, b.c), sums, b, plan)
            log.write(f"{i}\n")
            log.flush()
            os.fsync(log.fileno())
            done.add(i)
            for r, c in neighbours:  # spills every later block has now added in
                if not spill_needed(r, c):
                    _spill_path(partial, r, c).unlink(missing_ok=True)
            windows += counts[i]
            bar.step(advance=counts[i])
    return time.perf_counter() - t0, windows, sum(counts.values())
