"""Prediction galleries in report.html: every model side by side per image, and each run's own overlays.

Runs write `gallery/index.json` and JPEG panels into their run directory (engine/gallery.py); the
choice of images depends only on the test keys and a fixed seed, so runs of one dataset share images.
Each panel is written once: copied beside report.html (`gallery/`, the default: a 70-run report stays
a few MB) or, for one self-contained file, embedded as a data URI. A run's drill-down shows the same
images by reference (a few lines of JS copy the source), so galleries do not double the file size.
Captions use display names; a row of many runs wraps instead of running off the page.
"""

from __future__ import annotations

import base64
import json
import shutil
from html import escape
from pathlib import Path
from typing import Any

from densebench.names import Catalog

GALLERY_CSS = """
.gallery{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin:6px 0}
.gallery figure{margin:0;flex:none}.gallery img{width:200px;border:1px solid var(--line)}
.gallery figcaption{font-size:11px;width:200px}
.legend span{display:inline-block;margin-right:10px}.legend i{display:inline-block;width:11px;height:11px;
border:1px solid #555;margin-right:3px;vertical-align:-1px}
"""
GALLERY_JS = """
document.querySelectorAll('img[data-same-as]').forEach(function(img){
  var source=document.getElementById(img.getAttribute('data-same-as'));if(source){img.src=source.src;}
});
"""


def read_index(run_dir: str) -> tuple[Path, dict[str, Any]] | None:
    """(gallery folder, index.json) of a run directory (where its metrics.json was found), or None."""
    folder = Path(run_dir) / "gallery"
    try:
        return folder, json.loads((folder / "index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def legend(index: dict[str, Any]) -> str:
    items = "".join(
        f'<span><i style="background:rgb({r},{g},{b})"></i>{escape(name)}</span>'
        for name, (r, g, b) in zip(index.get("classes", []), index.get("colors", []))
    )
    return f'<div class="legend note">{items}</div>'


def _figure(image: str, caption: str) -> str:
    return f"<figure>{image}<figcaption>{escape(caption)}</figcaption></figure>"


def _dice(entry: dict[str, Any]) -> str:
    value = entry.get("Mean_Dice")
    return "Mean_Dice —" if value is None else f"Mean_Dice {value:.3f}"


class Galleries:
    """The galleries of all runs: `section` (side by side per dataset) and `for_run` (one run's drill-down)."""

    def __init__(
        self, details: dict[str, dict[str, Any]], catalog: Catalog | None = None, assets: Path | None = None
    ) -> None:
        """`assets`: folder beside report.html to copy panels into (None: embed them as data URIs)."""
        self.catalog = catalog or Catalog()
        self.assets = assets
        self.ids: dict[tuple[str, ...], str] = {}  # (dataset, key, panel) or (run_dir, key, "pred") -> img id
        self.runs: dict[str, tuple[str, Path, dict[str, Any]]] = {}  # run_dir -> (dataset, folder, index)
        for run_dir, doc in sorted(details.items()):
            found = read_index(run_dir)
            if found is not None:
                self.runs[run_dir] = (str(doc["run"]["dataset"]), *found)
        self.details = details
        self.section = self._section()

    def _img(self, ref: tuple[str, ...], path: Path, alt: str) -> str:
        """The panel, copied beside the report or embedded (first use), under a new id; never repeated."""
        ident = f"g{len(self.ids)}"
        try:
            if self.assets is None:
                src = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()
            else:
                self.assets.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, self.assets / f"{ident}{path.suffix}")
                src = f"{self.assets.name}/{ident}{path.suffix}"
        except OSError:
            return f"<em>missing: {escape(path.name)}</em>"
        self.ids[ref] = ident
        return f'<img id="{ident}" alt="{escape(alt)}" loading="lazy" src="{escape(src)}">'

    def _ref(self, ref: tuple[str, ...], alt: str) -> str:
        if ref not in self.ids:
            return f"<em>{escape(alt)}: not embedded</em>"
        return f'<img data-same-as="{self.ids[ref]}" alt="{escape(alt)}">'

    def _label(self, run_dir: str) -> str:
        run = self.details[run_dir].get("run", {})
        return (
            f"{self.catalog.display('model', str(run.get('model')))} · "
            f"{self.catalog.display('strategy', str(run.get('adapter')))} · seed {run.get('seed')}"
        )

    def _section(self) -> str:
        """Per dataset and gallery image: the image and ground truth once, then every run's prediction."""
        datasets = sorted({d for d, _, _ in self.runs.values()})
        parts = []
        for dataset in datasets:
            runs = [(r, folder, index) for r, (d, folder, index) in self.runs.items() if d == dataset]
            parts.append(f"<h3>{escape(self.catalog.display('dataset', dataset))}</h3>{legend(runs[0][2])}")
            keys = list(dict.fromkeys(e["key"] for _, _, index in runs for e in index.get("images", [])))
            for key in keys:
                cells = []
                for run_dir, folder, index in runs:
                    entry = next((e for e in index.get("images", []) if e["key"] == key), None)
                    if entry is None:
                        continue
                    for panel in ("image", "truth"):
                        if (dataset, key, panel) not in self.ids:
                            caption = key if panel == "image" else "ground truth"
                            cells.append(
                                _figure(
                                    self._img((dataset, key, panel), folder / entry["panels"][panel], caption), caption
                                )
                            )
                    caption = f"{self._label(run_dir)} — {_dice(entry)}"
                    cells.append(
                        _figure(self._img((run_dir, key, "pred"), folder / entry["panels"]["pred"], caption), caption)
                    )
                parts.append(f'<div class="gallery">{"".join(cells)}</div>')
        return "".join(parts)

    def for_run(self, run_dir: str) -> str:
        """One run's image | ground truth | prediction rows with the class legend (images by reference)."""
        if run_dir not in self.runs:
            return ""
        dataset, _, index = self.runs[run_dir]
        rows = []
        for entry in index.get("images", []):
            key = entry["key"]
            cells = [
                _figure(self._ref((dataset, key, "image"), key), key),
                _figure(self._ref((dataset, key, "truth"), "ground truth"), "ground truth"),
                _figure(self._ref((run_dir, key, "pred"), "prediction"), f"prediction — {_dice(entry)}"),
            ]
            rows.append(f'<div class="gallery">{"".join(cells)}</div>')
        return f"<h4>Prediction gallery</h4>{legend(index)}{''.join(rows)}"
