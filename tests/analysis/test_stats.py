"""Token statistics on token sets whose answers are known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from densebench.analysis import stats


def test_identical_tokens_have_similarity_one_and_effective_rank_one() -> None:
    tokens = torch.randn(1, 16).repeat(10, 1) * torch.arange(1, 11).float()[:, None]  # same direction, any norm
    assert stats.mean_pairwise_cosine(tokens) == pytest.approx(1.0)
    assert stats.effective_rank(tokens) == pytest.approx(1.0)


def test_orthogonal_tokens_have_similarity_zero_and_effective_rank_n() -> None:
    q, _ = torch.linalg.qr(torch.randn(32, 32, dtype=torch.float64))
    tokens = q[:12].float() * torch.linspace(0.5, 3, 12)[:, None]
    assert stats.mean_pairwise_cosine(tokens) == pytest.approx(0.0, abs=1e-6)
    assert stats.effective_rank(tokens) == pytest.approx(12.0, rel=1e-5)


def test_effective_rank_is_the_entropy_of_the_normalised_singular_values() -> None:
    tokens = torch.randn(40, 8, dtype=torch.float64)
    sigma = torch.linalg.svdvals(torch.nn.functional.normalize(tokens, dim=1))
    p = sigma / sigma.sum()
    assert stats.effective_rank(tokens) == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-6)


def test_two_clusters_give_within_one_and_between_their_angle() -> None:
    a, b = torch.tensor([1.0, 0, 0]), torch.tensor([1.0, 1.0, 0]) / math.sqrt(2)
    tokens = torch.stack([a] * 5 + [b * 3] * 7 + [torch.tensor([0, 0, 1.0])] * 2)
    labels = torch.tensor([0] * 5 + [1] * 7 + [stats.UNLABELLED] * 2)  # the unlabelled ones are left out
    sep = stats.class_separability(tokens, labels)
    assert sep["within"] == pytest.approx(1.0)
    assert sep["between"] == pytest.approx(1 / math.sqrt(2))
    assert sep["gap"] == pytest.approx(1 - 1 / math.sqrt(2))
    assert sep["n_classes"] == 2


def test_separability_weights_classes_equally_not_tokens() -> None:
    e = torch.eye(3)
    tokens = torch.stack([e[0]] * 50 + [e[1], (e[1] + e[2]) / math.sqrt(2)])
    sep = stats.class_separability(tokens, torch.tensor([0] * 50 + [1, 1]))
    assert sep["within"] == pytest.approx((1.0 + 1 / math.sqrt(2)) / 2)


def test_mean_pairwise_cosine_matches_the_explicit_pair_average() -> None:
    tokens = torch.randn(9, 5)
    unit = torch.nn.functional.normalize(tokens, dim=1)
    sim = unit @ unit.T
    expected = (sim.sum() - sim.diagonal().sum()) / (9 * 8)
    assert stats.mean_pairwise_cosine(tokens) == pytest.approx(expected.item(), rel=1e-5)


def test_similarity_by_distance_separates_alternating_columns() -> None:
    e1, e2 = torch.tensor([1.0, 0]), torch.tensor([0, 1.0])
    tokens = torch.stack([e1, e2, e1, e2])  # one row of four patches
    sums, counts = stats.cosine_by_distance(tokens, (1, 4))
    assert counts.tolist()[:4] == [0, 6, 4, 2]  # ordered pairs at distance 1, 2, 3
    assert (sums[1:4] / counts[1:4]).tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_similarity_by_distance_leaves_out_invalid_tokens() -> None:
    tokens = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]])
    sums, counts = stats.cosine_by_distance(tokens, (1, 3), valid=torch.tensor([True, True, False]))
    assert counts.sum() == 2 and sums[1] == pytest.approx(2.0)


def test_cells_take_the_majority_class_of_their_labelled_pixels() -> None:
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 255], [255, 255, 2, 2], [255, 255, 1, 2]])
    labels = stats.cell_labels(mask, (2, 2), num_classes=3, ignore_index=255)
    assert labels.tolist() == [0, 1, stats.UNLABELLED, 2]


def test_cell_ties_go_to_the_lower_class() -> None:
    labels = stats.cell_labels(torch.tensor([[2, 1], [1, 2]]), (1, 1), num_classes=3, ignore_index=255)
    assert labels.tolist() == [1]
