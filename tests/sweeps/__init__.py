"""Sweeps at scale: presets, launchers, skip-finished, preemption, failure isolation, status, DDP, locks."""

from tests.conftest import FAST

# FAST with a small decoder (the default one has 512 stem channels): a whole run in about a second.
TINY = [*FAST, "decoder.stem_channels=32", "decoder.channels=[16,16,8,8]"]
