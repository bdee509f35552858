"""User-facing errors: the CLI prints their message on one line instead of a traceback."""

from __future__ import annotations


class DenseBenchError(Exception):
    """A mistake the user can fix (bad option, missing file); the message names the fix."""


class ConfigError(DenseBenchError):
    """An unknown name or an invalid value in the configuration."""


class DataError(DenseBenchError):
    """A dataset file that is missing, unreadable or inconsistent."""


class WeightsError(DenseBenchError):
    """Model weights that cannot be found, read or loaded strictly."""
