"""Average ranks with ties, Friedman/Nemenyi against scipy and Demšar's table, and the paired bootstrap."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from densebench.errors import DenseBenchError
from densebench.report.analysis import aggregate, model_ranks
from densebench.report.load import VALUE_COLUMNS
from densebench.names import Catalog
from densebench.report.stats import Arm, cliques, friedman, nemenyi_cd, paired_bootstrap


def _cells(table: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """Cells from {(dataset, strategy, model): value} of one source."""
    rows = [
        {
            "run": f"{d}/{s}/{m}",
            "source": "runs",
            "dataset": d,
            "model": m,
            "strategy": s,
            "variant": "",
            "seed": 0,
            "metric": "Mean_Dice",
            "value": v,
            "point": v,
            "ci_lower": math.nan,
            "ci_upper": math.nan,
            "input_size": math.nan,
            "adapter_rank": math.nan,
            "params": math.nan,
        }
        for (d, s, m), v in table.items()
    ]
    return aggregate(pd.DataFrame(rows, columns=VALUE_COLUMNS), Catalog())


def test_tied_models_share_the_average_rank_and_order_is_by_average() -> None:
    cells = _cells(
        {
            ("d1", "frozen", "A"): 0.9,
            ("d1", "frozen", "B"): 0.9,
            ("d1", "frozen", "C"): 0.5,  # A, B: 1.5; C: 3
            ("d2", "frozen", "A"): 0.7,
            ("d2", "frozen", "B"): 0.8,
            ("d2", "frozen", "C"): 0.9,  # A 3, B 2, C 1
        }
    )
    ranks = model_ranks(cells).set_index("entry")
    assert ranks["avg_rank"].to_dict() == {"B": 1.75, "C": 2.0, "A": 2.25}
    assert list(ranks.index) == ["B", "C", "A"]
    assert ranks["n_cells"].tolist() == [2, 2, 2]


def test_a_model_missing_from_a_cell_is_ranked_only_where_it_ran() -> None:
    cells = _cells(
        {
            ("d1", "lora", "A"): 0.9,
            ("d1", "lora", "B"): 0.8,
            ("d2", "lora", "A"): 0.1,
            ("d2", "lora", "B"): 0.5,
            ("d2", "lora", "C"): 0.9,
        }
    )
    ranks = model_ranks(cells).set_index("entry")
    assert ranks.loc["C", "n_cells"] == 1 and ranks.loc["C", "avg_rank"] == 1.0
    assert ranks.loc["A", "avg_rank"] == 2.0  # 1 in d1, 3 in d2


def test_friedman_statistic_and_p_value_match_scipy() -> None:
    rng = np.random.default_rng(0)
    table = {}
    for d in range(8):
        for m, shift in zip("ABCD", (0.0, 0.02, 0.05, 0.1)):
            table[(f"d{d}", "frozen", m)] = round(0.5 + shift + rng.normal(0, 0.03), 2)  # rounding makes ties
    table[("d0", "frozen", "A")] = table[("d0", "frozen", "B")]
    result = friedman(_cells(table), ["dataset"], "entry")
    columns = [[table[(f"d{d}", "frozen", m)] for d in range(8)] for m in "ABCD"]
    expected = scipy_stats.friedmanchisquare(*columns)
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p_value"] == pytest.approx(expected.pvalue)
    ranks = pd.DataFrame(columns).T.rank(axis=1, ascending=False).mean()
    assert [result["average_ranks"][m] for m in "ABCD"] == pytest.approx(ranks.tolist())


def test_nemenyi_critical_difference_matches_demsar_table() -> None:
    # Demšar (2006) Table 5(a): q_0.05 = 2.569 for k = 4, 2.728 for k = 5, 3.164 for k = 10
    for k, q in ((4, 2.569), (5, 2.728), (10, 3.164)):
        assert nemenyi_cd(k, 20) == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * 20)), abs=2e-3)


def test_friedman_skips_with_a_reason_when_blocks_are_too_few() -> None:
    result = friedman(
        _cells({("d1", "frozen", "A"): 0.5, ("d1", "frozen", "B"): 0.6, ("d1", "frozen", "C"): 0.7}),
        ["dataset"],
        "entry",
    )
    assert result["status"] == "skipped" and "≥2 complete blocks" in result["reason"]


def test_cliques_join_maximal_runs_within_the_critical_difference() -> None:
    ranks = pd.Series({"A": 1.0, "B": 1.5, "C": 2.4, "D": 4.0})
    assert cliques(ranks, 1.0) == [("A", "B"), ("B", "C")]


def _npz(path: Path, cm: np.ndarray, keys: list[str]) -> Path:
    path.mkdir(parents=True)
    np.savez_compressed(path / "confusion_per_image.npz", cm=cm.astype(np.int64), keys=np.array(keys))
    return path


def _binary_cms(n: int, errors: np.ndarray) -> np.ndarray:
    """(n, 2, 2) matrices of 100 foreground + 100 background pixels with `errors[i]` misses per class."""
    cm = np.zeros((n, 2, 2), dtype=np.int64)
    cm[:, 0, 0] = cm[:, 1, 1] = 100 - errors
    cm[:, 0, 1] = cm[:, 1, 0] = errors
    return cm


def test_paired_bootstrap_finds_the_clearly_better_arm(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    keys = [f"img{i}" for i in range(20)]
    good = _npz(tmp_path / "good", _binary_cms(20, rng.integers(0, 5, 20)), keys)
    bad = _npz(tmp_path / "bad", _binary_cms(20, rng.integers(20, 30, 20))[::-1], keys[::-1])  # other order
    result = paired_bootstrap(Arm("good", good, "glas"), Arm("bad", bad, "glas"), "Mean_Dice", n_resamples=500)
    assert result["significant"] and result["difference_ci"][0] > 0
    assert result["verdict"].startswith("good is better than bad")


def test_paired_bootstrap_says_plainly_when_the_difference_is_within_the_ci(tmp_path: Path) -> None:
    keys = [f"img{i}" for i in range(20)]
    errors = np.arange(20) % 10
    a = _npz(tmp_path / "a", _binary_cms(20, errors), keys)
    b = _npz(tmp_path / "b", _binary_cms(20, errors[::-1].copy()), keys)  # same errors, other images
    result = paired_bootstrap(Arm("A", a, "glas"), Arm("B", b, "glas"), "Mean_Dice", n_resamples=500)
    assert result["a_point"] == pytest.approx(result["b_point"])
    assert not result["significant"] and result["arm_cis_overlap"]
    lo, hi = result["difference_ci"]
    assert lo < 0 < hi
    assert result["verdict"].startswith("No significant difference") and "contains 0" in result["verdict"]


def test_paired_bootstrap_uses_the_same_resamples_for_both_arms(tmp_path: Path) -> None:
    keys = [f"img{i}" for i in range(15)]
    cm = _binary_cms(15, np.arange(15))
    a, b = _npz(tmp_path / "a", cm, keys), _npz(tmp_path / "b", cm, keys)
    result = paired_bootstrap(Arm("A", a, "glas"), Arm("B", b, "glas"), "Mean_Dice", n_resamples=200)
    assert result["difference_ci"] == [0.0, 0.0]  # identical arms differ by exactly 0 on every shared resample


def test_paired_bootstrap_refuses_runs_on_different_test_images(tmp_path: Path) -> None:
    a = _npz(tmp_path / "a", _binary_cms(3, np.zeros(3, dtype=int)), ["x", "y", "z"])
    b = _npz(tmp_path / "b", _binary_cms(3, np.zeros(3, dtype=int)), ["x", "y", "w"])
    with pytest.raises(DenseBenchError, match="same test images"):
        paired_bootstrap(Arm("A", a, "glas"), Arm("B", b, "glas"), "Mean_Dice")


def test_scaling_correlates_parameters_with_means_over_shared_cells() -> None:
    from densebench.report.plots import scaling

    table = {}
    for d, bonus in (("d1", 0.0), ("d2", 0.1)):
        for m, v in zip("ABCD", (0.5, 0.6, 0.55, 0.7)):
            table[(d, "frozen", m)] = v + bonus
    table[("d3", "frozen", "A")] = 0.99  # only A has d3: left out of the means, or A would look best
    cells = _cells(table)
    cells["params"] = cells["model"].map({"A": 1e8, "B": 3e8, "C": 6e8, "D": None})
    result = scaling(cells, ["frozen"])
    assert result["skipped_no_params"] == ["D"]
    assert result["points"]["frozen"] == {
        "A": [1e8, pytest.approx(0.55)],
        "B": [3e8, pytest.approx(0.65)],
        "C": [6e8, pytest.approx(0.6)],
    }
    expected = scipy_stats.spearmanr([1e8, 3e8, 6e8], [0.55, 0.65, 0.6])
    assert result["by_strategy"]["frozen"]["rho"] == pytest.approx(expected.statistic)
    assert result["overall"]["n_models"] == 3
