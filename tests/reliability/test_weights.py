"""Weights given with `model.weights`: missing, wrong keys, truncated, a folder without weights, a pickle
that would run code. Each is one line naming the file and the fix, before any training."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from tests.reliability.cases import Case, line
from tests.reliability.conftest import RUN, assert_one_line_error, cli

# demo_vit at its full size (the weights must fit the architecture the config builds)
FULL = [o for o in RUN if not o.startswith("model.variant")]


def _case(id_: str, given: str, *needles: str) -> Case:
    return Case(id_, "weights", given, line(*needles), needles)


CASES = [
    _case("missing-file", "`model.weights` naming no file", "model.weights=", "does not exist"),
    _case("wrong-keys", "a state dict of another architecture", "w.safetensors", "does not match the architecture"),
    _case("truncated-safetensors", "a safetensors file cut in half", "w.safetensors", "re-download it"),
    _case(
        "folder-without-weights",
        "`model.weights` naming a folder without weights",
        "is a folder without a weights file",
    ),
    _case(
        "malicious-pickle", "a pickle whose unpickling would run a command", "refusing to load", "w.pt", "safetensors"
    ),
]
BY_ID = {c.id: c for c in CASES}


class RunsCode:
    """Unpickling this would call os.system: the safe loader must refuse it (and never run it)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _weights(name: str, tmp_path) -> str:
    from safetensors.torch import save_file

    if name == "missing-file":
        return str(tmp_path / "nope.safetensors")
    if name == "folder-without-weights":
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / "README.md").write_text("no weights here")
        return str(tmp_path / "folder")
    if name == "malicious-pickle":
        path = tmp_path / "w.pt"
        path.write_bytes(pickle.dumps({"state_dict": RunsCode(str(tmp_path / "PWNED"))}))
        return str(path)
    path = tmp_path / "w.safetensors"
    save_file({"unrelated.weight": torch.zeros(3, 3)}, str(path))
    if name == "truncated-safetensors":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return str(path)


@pytest.mark.parametrize("name", list(BY_ID))
def test_bad_weights_are_one_line_naming_the_file_and_nothing_trains(name, tmp_path, capsys):
    weights = _weights(name, tmp_path)
    code, _, err = cli(
        capsys, "run", *FULL, "model.pretrained=true", f"model.weights={weights}", f"output_dir={tmp_path / 'out'}"
    )
    assert_one_line_error(code, err, *BY_ID[name].needles)
    assert not list((tmp_path / "out").rglob("last.pt")) and not (tmp_path / "PWNED").exists()


def test_refusing_a_pickle_shows_no_torch_warning_before_the_error(tmp_path):
    """Outside pytest's warning capture torch's UserWarning about the pickle protocol would print above the one line."""
    from densebench.backbones.weights import read_state_dict
    from densebench.errors import WeightsError

    path = _weights("malicious-pickle", tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsError, match="refusing to load"):
            read_state_dict(path)
    assert [str(w.message) for w in caught] == []
