"""Model = backbone (adapted) + decoder: the composition `densebench run` trains and evaluates."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor, nn

from densebench.adapters import Adapter, build_adapter
from densebench.backbones import Backbone, build_backbone, pad_to_multiple
from densebench.decoders import ProgressiveDecoder
from densebench.fastpath import apply_runtime


class Segmenter(nn.Module):
    """Pads the image to the patch grid, adapts the backbone, decodes, and crops back to H×W."""

    def __init__(self, adapter: Adapter, decoder: ProgressiveDecoder) -> None:
        super().__init__()
        self.adapter = adapter
        self.decoder = decoder

    @property
    def backbone(self) -> Backbone:
        return self.adapter.backbone

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.adapter.backbone.patch_size)
        feats = self.adapter(x)
        logits = self.decoder(feats.map, out_size=tuple(x.shape[-2:]), skips=feats.skips)
        return logits[..., :h, :w]

    def parameter_counts(self) -> dict[str, int]:
        """Counts for metrics.json: backbone total, trainable total/in backbone, adapter, decoder."""
        own = {id(p) for _, p in self.adapter.own_parameters()}
        backbone = [p for p in self.adapter.backbone.parameters() if id(p) not in own]
        adapter = [p for _, p in self.adapter.own_parameters()]
        return {
            "backbone_total": sum(p.numel() for p in backbone),
            "backbone_trainable": sum(p.numel() for p in backbone if p.requires_grad),
            "adapter": sum(p.numel() for p in adapter),
            "adapter_trainable": sum(p.numel() for p in adapter if p.requires_grad),
            "decoder": sum(p.numel() for p in self.decoder.parameters()),
            "trainable_total": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "total": sum(p.numel() for p in self.parameters()),
        }

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Only what training changed (adapter + decoder + trainable backbone parts), plus BN buffers."""
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        buffers = {n for n, _ in self.decoder.named_buffers(prefix="decoder")}
        buffers |= {n for n, _ in self.adapter.named_buffers(prefix="adapter") if not n.startswith("adapter.backbone.")}
        keep = trainable | buffers
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in keep}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.trainable_state_dict()) - set(state)
        if missing:
            raise KeyError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[:3]}")
        self.load_state_dict(state, strict=False)


def build_model(cfg: DictConfig, num_classes: int) -> Segmenter:
    backbone = build_backbone(cfg.model)
    adapter = build_adapter(backbone, cfg.adapter)
    decoder = ProgressiveDecoder(
        adapter.embed_dim,
        num_classes,
        channels=tuple(cfg.decoder.channels),
        stem_channels=cfg.decoder.stem_channels,
        skip_channels=adapter.skip_channels,
    )
    model = Segmenter(adapter, decoder)
    branches = [m for m in adapter.children() if m is not adapter.backbone]
    apply_runtime(model, [decoder, *branches], cfg.runtime)
    return model
