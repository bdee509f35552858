"""`densebench analyze tokens`: per-layer statistics of the built backbone and of a trained run's tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from densebench.analysis.cli import main
from densebench.errors import ConfigError
from tests.analysis.conftest import TINY

KEYS = ("mean_cosine", "effective_rank", "class_within", "class_between", "class_gap")


def _options(**kw):
    from densebench.config import config_dir

    return OmegaConf.merge(OmegaConf.load(config_dir() / "analysis.yaml").tokens, kw)


def _analyze(run, **options):
    from densebench.analysis.options import run_config
    from densebench.analysis.tokens import analyze

    doc, _, _ = analyze(run_config(run.dir, []), _options(n_images=1, **options), run.dir)
    return doc


@pytest.fixture(scope="module")
def analysed(runs):
    """adapter -> tokens.json document of its run (one image), computed once."""
    docs: dict[str, dict] = {}

    def get(adapter: str) -> dict:
        if adapter not in docs:
            docs[adapter] = _analyze(runs(adapter))
        return docs[adapter]

    return get


def _values(entry):
    return [entry[k]["mean"] for k in KEYS]


def test_analyze_tokens_on_demo_data_writes_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    assert main(["tokens", *TINY, f"output_dir={tmp_path}", "n_images=2", f"out={out}"]) == 0
    doc = json.loads((out / "tokens.json").read_text())
    assert doc["model"]["name"] == "demo_vit" and doc["dataset"] == "synthetic" and len(doc["images"]) == 2
    entries = doc["series"]["backbone"]["entries"]
    assert [e["name"] for e in entries] == ["block 1", "block 2"]  # every block of the tiny ViT
    for e in entries:
        assert -1 <= e["mean_cosine"]["mean"] <= 1 and e["mean_cosine"]["n"] == 2
        assert 1 <= e["effective_rank"]["mean"] <= 32
        assert e["class_gap"]["mean"] == pytest.approx(e["class_within"]["mean"] - e["class_between"]["mean"])
        assert e["distance"]["patches"][0] == 1 and len(e["distance"]["mean_cosine"]) == len(e["distance"]["pairs"])
    assert set(doc["query"]) == {"image", "row", "col", "grid"}
    for name in ("layers", "distance", "heatmap"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and (out / f"{name}.svg").is_file()


@pytest.mark.parametrize(
    ("adapter", "series"),
    [
        ("frozen", {"backbone", "decoder_input"}),
        ("lora", {"backbone", "adapted_backbone", "decoder_input"}),
        ("transformer", {"backbone", "adapter_blocks", "decoder_input"}),
        ("cnn", {"backbone", "decoder_input", "decoder_fused"}),
    ],
)
def test_a_runs_adapted_tokens_follow_its_strategy(analysed, adapter: str, series: set[str]) -> None:
    doc = analysed(adapter)
    assert set(doc["series"]) == series and doc["adapter"] == adapter


def test_frozen_and_cnn_decoders_receive_the_backbones_last_block(analysed) -> None:
    for adapter in ("frozen", "cnn"):
        doc = analysed(adapter)
        last = doc["series"]["backbone"]["entries"][-1]
        assert _values(doc["series"]["decoder_input"]["entries"][0]) == pytest.approx(_values(last))


def test_lora_training_changes_the_backbones_tokens(analysed) -> None:
    doc = analysed("lora")
    before, after = doc["series"]["backbone"]["entries"], doc["series"]["adapted_backbone"]["entries"]
    assert len(after) == len(before) == 2
    assert _values(after[-1]) != pytest.approx(_values(before[-1]))


def test_transformer_adapter_blocks_sit_after_the_backbone(analysed) -> None:
    doc = analysed("transformer")
    positions = [e["position"] for e in doc["series"]["adapter_blocks"]["entries"]]
    assert positions == [3, 4]  # two backbone blocks, then the adapter's two


def test_query_outside_the_grid_is_a_clear_error(runs) -> None:
    with pytest.raises(ConfigError, match=r"query=\[0, 99\] is outside"):
        _analyze(runs("frozen"), query=[0, 99])


def test_run_fixes_the_model(runs) -> None:
    with pytest.raises(ConfigError, match="fixes the model"):
        main(["tokens", f"run={runs('frozen').dir}", "model=uni"])


def _model_configs() -> list[Path]:
    from densebench.config import config_dir

    return sorted((config_dir() / "model").glob("*.yaml"))


@pytest.mark.parametrize("path", _model_configs(), ids=lambda p: p.stem)
def test_every_backbone_gives_statistics_for_each_of_its_blocks(path: Path) -> None:
    import torch

    from densebench.analysis.tokens import Collector, View, add_blocks
    from densebench.backbones import build_backbone

    cfg = OmegaConf.merge(OmegaConf.load(path), {"variant": "tiny", "pretrained": False})
    backbone = build_backbone(cfg).eval()
    side = int(cfg.get("fixed_input_size") or 4 * backbone.patch_size)
    generator = torch.Generator().manual_seed(0)
    mask = torch.randint(0, 2, (side, side), generator=generator)
    view = View(
        "x",
        torch.randn(1, 3, side, side, generator=generator),
        mask,
        torch.ones(side, side, dtype=torch.bool),
        torch.zeros(side, side, 3, dtype=torch.uint8).numpy(),
    )
    collector = Collector(2, 255, "center")
    with torch.no_grad():
        add_blocks(collector, "backbone", backbone, view, first=True)
    entries = collector.result()["backbone"]["entries"]
    assert len(entries) == backbone.num_blocks
    assert all(-1 <= e["mean_cosine"]["mean"] <= 1 and e["effective_rank"]["mean"] >= 1 for e in entries)
    assert backbone.layers == cfg.get("layers")  # restored after the analysis


def test_unknown_split_is_a_clear_error(runs) -> None:
    with pytest.raises(ConfigError, match="split=nope is not known; use one of train, val, test"):
        _analyze(runs("frozen"), split="nope")
