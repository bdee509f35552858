"""`any_of`: one dataset distributed in several release layouts; read whichever is under the root.

Kumar exists as the MoNuSeg TIFF+XML release and as HoVer-Net's `.mat` copy; CPM-15 and TNBC have
an original release and a HoVer-Net copy too. The dataset config lists each layout under
`releases.<name>` (its own `format` and `layout`, overriding the shared keys); the source reads the
one whose files exist. Finding two at once is an error, because mixing copies would duplicate images.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from densebench.config import merge
from densebench.data import SOURCES
from densebench.data.base import Record, Sample, SegmentationSource
from densebench.data.formats._nuclei import NothingFound
from densebench.errors import ConfigError, DataError


@SOURCES.register("any_of")
class AnyOf(SegmentationSource):
    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        releases = cfg.get("releases")
        if not releases:
            raise ConfigError(f"dataset '{cfg.name}': format any_of needs `releases` (one entry per release layout)")
        self.variants: dict[str, SegmentationSource] = {}
        for name, spec in releases.items():
            base = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k not in ("releases", "format", "layout")])
            merged = merge(base, spec)
            self.variants[str(name)] = SOURCES.get(merged.format)(merged)
        self.chosen: SegmentationSource | None = None

    @property
    def has_instances(self) -> bool:  # type: ignore[override]
        return self.chosen.has_instances if self.chosen is not None else False

    @property
    def decoder_version(self) -> dict[str, int]:
        """Versions of every layout's decoder, so the cache notices a change in any of them."""
        return {k: getattr(v, "decoder_version", 0) for k, v in self.variants.items()}

    @property
    def release(self) -> str | None:
        """Name of the release layout found under the root (after `samples()`)."""
        return next((k for k, v in self.variants.items() if v is self.chosen), None)

    def samples(self) -> list[Sample]:
        found: dict[str, list[Sample]] = {}
        misses = []
        for name, source in self.variants.items():
            try:
                found[name] = source.samples()
            except NothingFound as exc:
                misses.append(f"{name}: {exc}")
        if not found:
            raise DataError(
                f"dataset '{self.cfg.name}': no known release layout under {self.root} ({'; '.join(misses)})"
            )
        if len(found) > 1:
            raise DataError(
                f"dataset '{self.cfg.name}': found both the {' and the '.join(found)} release under {self.root}; "
                "point dataset.root at one copy"
            )
        name, samples = next(iter(found.items()))
        self.chosen = self.variants[name]
        return samples

    def load(self, sample: Sample) -> Record:
        if self.chosen is None:
            self.samples()  # chooses the release (or fails naming what it found)
        assert self.chosen is not None
        return self.chosen.load(sample)
