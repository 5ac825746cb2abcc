"""``jaxnn.metrics`` against scikit-learn's own metrics, weights and edge cases included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score

from jaxnn import metrics

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_scikit_learn(weighted):
    true, predicted = RNG.integers(0, 3, 50), RNG.integers(0, 3, 50)
    weight = RNG.uniform(0.0, 2.0, 50) if weighted else None
    expected = accuracy_score(true, predicted, sample_weight=weight)
    assert float(metrics.accuracy(predicted, true, weight)) == pytest.approx(expected, rel=1e-6)


def test_multilabel_accuracy_counts_whole_rows():
    true = np.array([[1, 0], [1, 1], [0, 0]])
    predicted = np.array([[1, 0], [1, 0], [0, 0]])
    assert float(metrics.accuracy(predicted, true)) == pytest.approx(accuracy_score(true, predicted))


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2_matches_scikit_learn(outputs, weighted):
    true = RNG.normal(size=(40, outputs))
    predicted = true + 0.5 * RNG.normal(size=(40, outputs))
    weight = RNG.uniform(0.1, 2.0, 40) if weighted else None
    expected = r2_score(true, predicted, sample_weight=weight)
    assert float(metrics.r2_score(true, predicted, weight)) == pytest.approx(expected, rel=1e-5)


def test_r2_of_a_constant_target_is_scikit_learns():
    """A constant target: 1.0 when predicted exactly, else 0.0 (not NaN)."""
    constant = np.full(5, 3.0)
    for predicted in (constant, constant + np.arange(5)):
        assert float(metrics.r2_score(constant, predicted)) == r2_score(constant, predicted)
    assert float(metrics.r2_score(constant[:, None], constant[:, None] + 1.0)) == 0.0
