"""A sweep's grid: the cartesian product of swept values, shared by the sweeper and `densebench plan`."""

from __future__ import annotations

import itertools
from typing import Any

from hydra.errors import HydraException


def expand(overrides: list[Any]) -> list[list[str]]:
    """Every combination of the swept values, one override list per job (later keys vary fastest)."""
    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(
                f"{key}: the densebench sweeper takes lists, range(), glob() and choice(); "
                f"not {override.value_type.name}"
            )
    return [list(job) for job in itertools.product(*choices.values())]
