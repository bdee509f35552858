"""Decoders turn adapter `Features` into per-pixel logits."""

from densebench.decoders.progressive import ProgressiveDecoder

__all__ = ["ProgressiveDecoder"]
