"""``jaxnn.metrics`` against scikit-learn's own metrics, weights and edge cases included."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, r2_score

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


@pytest.mark.parametrize(
    "call, shapes",
    [
        (lambda a, b: metrics.accuracy(a, b), "(5, 1) and true (5, 5)"),  # broadcast to (5, 5): scored 0.0
        (lambda a, b: metrics.r2_score(a, b), "(5, 1) and predicted (5, 5)"),
        (lambda a, b: metrics.mean_squared_error(a, b), "(5, 1) and predicted (5, 5)"),
    ],
)
def test_arrays_of_different_shapes_are_refused_not_broadcast(call, shapes):
    labels = np.array([0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=rf"has shape {re.escape(shapes)}; they must be the same shape"):
        call(labels[:, None], np.tile(labels, (5, 1)))
    assert float(call(labels[:, None], labels)) in (1.0, 0.0)  # a column and a vector of one length: one shape


def test_scores_need_samples_and_sound_weights():
    labels = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"\(2, 2, 2\); they must be the same shape, \(n_samples,\) or"):
        metrics.accuracy(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))  # it scored 4.0
    with pytest.raises(ValueError, match="at least one sample"):
        metrics.accuracy(np.array([]), np.array([]))  # it was NaN
    for weight in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]):  # NaN, NaN, a broadcasting TypeError
        with pytest.raises(ValueError, match="weight must be 3 finite, non-negative numbers with a positive sum"):
            metrics.accuracy(labels, labels, weight)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        metrics.balanced_accuracy(labels, labels, 0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 1\)"):
        metrics.balanced_accuracy(labels, labels, 1)  # class 1 was ignored: it scored 1.0
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        metrics.balanced_accuracy(np.array([0.5, 1.5, 1.5]), labels, 3)  # no class matched: it scored 0.0
    with pytest.raises(ValueError, match=r"log_loss: probabilities has shape \(3, 2\) and true_indicators \(3,\)"):
        metrics.log_loss(np.full((3, 2), 0.5), labels)
    one_hot, probabilities = np.eye(2)[[0, 1, 1]], np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    with pytest.raises(ValueError, match=r"true_indicators must be 0/1 .* got a value 0.8; .*reverse of sklearn"):
        metrics.log_loss(one_hot, probabilities)  # scikit-learn's order: it scored 10.8 instead of 0.36


def test_host_float64_input_is_scored_in_float64_with_x64_off():
    """In float32, targets 1e8 + 1..3 were one constant (R² 1.0 for a prediction 0.1 off) and weights of 1e39
    infinite (accuracy NaN); scikit-learn scores them in float64."""
    true, predicted = np.array([1e8 + 1, 1e8 + 2, 1e8 + 3]), np.array([1e8 + 1, 1e8 + 2, 1e8 + 3.1])
    np.testing.assert_allclose(float(metrics.r2_score(true, predicted)), r2_score(true, predicted), rtol=1e-9)
    weights = [1e39, 1e39, 1e39]
    assert float(metrics.accuracy([0, 1, 1], [0, 1, 0], weights)) == pytest.approx(2 / 3)
    p = np.array([[1.0, 0.0], [0.3, 0.7]])
    t = np.array([[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(float(metrics.log_loss(p, t)), log_loss(t, p), rtol=1e-12)
    assert not jax.config.jax_enable_x64  # the call's own 64-bit mode ended with it
    pd = pytest.importorskip("pandas")  # pandas float64 is host float64 too: it scored R² 1.0 and MSE 0.0
    expected_r2, expected_mse = r2_score(true, predicted), float(np.mean((true - predicted) ** 2))
    for wrap in (pd.Series, pd.DataFrame):
        np.testing.assert_allclose(float(metrics.r2_score(wrap(true), wrap(predicted))), expected_r2, rtol=1e-9)
        np.testing.assert_allclose(float(metrics.mean_squared_error(wrap(true), wrap(predicted))), expected_mse)
    assert float(metrics.accuracy(pd.Series([0, 1, 1]), pd.Series([0, 1, 0]), pd.Series(weights))) == 2 / 3


def test_integer_targets_do_not_overflow_and_labels_beyond_int32_are_not_truncated():
    """(100000 − 0)² wrapped in int32 (MSE 7.05e8 for 5e9; R² 0.79 for −0.50) and 2**40 became 0 with x64 off."""
    true, predicted = np.array([100000, 0, 5]), np.array([0, 0, 1])
    np.testing.assert_allclose(float(metrics.mean_squared_error(true, predicted)), 1e10 / 3 + 16 / 3, rtol=1e-12)
    np.testing.assert_allclose(float(metrics.r2_score(true, predicted)), r2_score(true, predicted), rtol=1e-9)
    assert float(metrics.mean_absolute_error(np.array([2**31 - 1]), np.array([-(2**31 - 1)]))) == 2**32 - 2
    assert float(metrics.accuracy(np.array([2**40, 1]), np.array([2**41, 1]))) == 0.5
    assert float(metrics.mean_squared_error([True, False], [False, False])) == 0.5  # a TypeError from jax
    assert float(metrics.mean_squared_error(np.array([300.0], np.float16), np.zeros(1, np.float16))) == 90000.0


def test_r2_of_a_weighted_constant_column_is_exact_and_huge_values_do_not_overflow():
    true = np.full((7, 2), 3.0)  # the weighted mean rounded: a variance of 1e-32 scored R² −1.2e28
    weight = np.array([0.0, 0.977, 0.504, 0.0, 0.862, 0.0, 0.0])
    predicted = true + np.random.default_rng(0).normal(size=true.shape)
    assert float(metrics.r2_score(true, predicted, weight)) == 0.0
    assert float(metrics.r2_score([1e200, -1e200, 0.0], [0.0, 0.0, 0.0])) == 0.0  # NaN (scikit-learn's too)
    assert float(metrics.r2_score([2.0], [2.0])) == 1.0  # one sample: the constant rule, not NaN


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.r2_score([1.0, np.nan, 3.0], [1, 2, 3]), "r2_score: true contains NaN"),  # it was 1.0
        (lambda: metrics.mean_squared_error([1.0, 2.0], [np.inf, 2.0]), "predicted contains NaN or infinity"),
        (lambda: metrics.accuracy([np.nan, 1.0], [np.nan, 1.0]), "accuracy: predicted contains NaN"),
        (lambda: metrics.log_loss([[np.nan, 1.0]], [[0, 1]]), "probabilities contains NaN"),
        (lambda: metrics.log_loss([[-0.1, 1.1]], [[0, 1]]), r"probabilities must be in \[0, 1\], got -0.1"),
        (lambda: metrics.log_loss([[0.3], [0.6]], [[1], [0]]), r"at least 2\); .* rows \[1 - p, p\]"),
        (lambda: metrics.log_loss([[0.3, 0.7]], [[0, 0]]), "must be one-hot rows"),
    ],
)
def test_bad_values_are_refused_as_scikit_learn_refuses_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_balanced_accuracy_takes_boolean_labels_as_the_classes_0_and_1():
    """Issue: bool labels (``y == 1``) raised NumPy's "data type bool not inexact" from inside ``jnp.round``."""
    from sklearn.metrics import balanced_accuracy_score

    predicted, true = np.array([True, False, True, True]), np.array([True, False, False, True])
    expected = balanced_accuracy_score(true, predicted)
    np.testing.assert_allclose(metrics.balanced_accuracy(predicted, true, 2), expected)
    np.testing.assert_allclose(metrics.balanced_accuracy(predicted.astype(int), true, 2), expected)


@pytest.mark.parametrize("scale", [1e30, 1e-40])
def test_huge_or_tiny_weights_on_float32_input_score_as_unit_weights(scale):
    """Weights of 1e30 (float64, finite) overflowed float32 products w·e² (MSE inf, R² −inf); weights of 1e-40
    flushed to 0 in float32 (every score NaN, R² 1.0); a score only depends on the weights' ratios."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    true = np.array([0.0, 1e5, 2e5, 3.0], np.float32)
    predicted = np.array([1e5, 0.0, 2e5, 4.0], np.float32)
    weight = np.array([1.0, 2.0, 0.5, 1.0]) * scale
    for ours, theirs in [
        (metrics.mean_squared_error, mean_squared_error),
        (metrics.mean_absolute_error, mean_absolute_error),
        (metrics.r2_score, r2_score),
    ]:
        expected = theirs(true, predicted, sample_weight=weight)
        np.testing.assert_allclose(float(ours(true, predicted, weight)), expected, rtol=1e-5)
    small = np.array([1e-5, -1e-5, 2e-5], np.float32)  # R² scales the errors up by 1 / max|y|
    expected = r2_score(small, np.array([1.0, -1.0, 0.5]), sample_weight=weight[:3])
    np.testing.assert_allclose(
        float(metrics.r2_score(small, np.array([1.0, -1.0, 0.5], np.float32), weight[:3])), expected, rtol=1e-5
    )
    p = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [0.3, 0.7]], np.float32)
    labels = np.array([1, 0, 0, 1])
    expected = log_loss(labels, p, sample_weight=weight)
    np.testing.assert_allclose(float(metrics.log_loss(p, np.eye(2)[labels], weight)), expected, rtol=1e-5)
    f32_weight = jax.numpy.asarray(weight, jax.numpy.float32)  # float32 weights: 1e-40 is subnormal, flushed
    assert float(metrics.accuracy(jax.numpy.array([0, 1, 1, 0]), jax.numpy.array([0, 1, 0, 0]), f32_weight)) == (
        pytest.approx(accuracy_score([0, 1, 0, 0], [0, 1, 1, 0], sample_weight=weight), rel=1e-6)
    )


def test_a_column_vector_matches_n_samples_in_either_argument_and_errors_name_the_shapes_given():
    """balanced_accuracy took true (n, 1) but refused predicted (n, 1) with "predicted has shape (2, 1) and true
    (2, 1); they must be the same shape" (the second argument reshaped to the first's before the message);
    scikit-learn takes a column either side."""
    from sklearn.metrics import balanced_accuracy_score

    predicted, true = np.array([0, 1, 1]), np.array([0, 1, 0])
    expected = balanced_accuracy_score(true, predicted)
    assert float(metrics.balanced_accuracy(predicted[:, None], true, 2)) == pytest.approx(expected)
    assert float(metrics.balanced_accuracy(predicted, true[:, None], 2)) == pytest.approx(expected)
    with pytest.raises(ValueError, match=re.escape("probabilities has shape (2,) and true_indicators (2, 1);")):
        metrics.log_loss([0.3, 0.7], [[1], [0]])


def test_weights_scaled_for_range_keep_scikit_learns_score_and_its_ties_bit_for_bit():
    """Weights divided by their largest were rounded (17/36, 13/36, ...): accuracy_score's tie of 0.3125 and
    0.3125 (two sets of right answers of equal weight) became 0.3125 against 0.31250000000000006, so early
    stopping's ``score > best`` took a later epoch that MLP does not; scaled by a power of two they round as
    scikit-learn's own sums."""
    weight = np.array([17.0, 13.0, 30.0, 36.0])
    true, first, second = np.zeros(4, int), np.array([0, 0, 1, 1]), np.array([1, 1, 0, 1])
    expected = accuracy_score(true, first, sample_weight=weight)
    assert expected == accuracy_score(true, second, sample_weight=weight)
    assert float(metrics.accuracy(first, true, weight)) == expected
    assert float(metrics.accuracy(second, true, weight)) == expected
    with jax.enable_x64(True):  # the traced weights of the compiled early-stopping rule, in float64 as MLP's
        scored = jax.jit(metrics.accuracy)
        traced = [float(scored(p, true, jax.numpy.asarray(weight))) for p in (first, second)]
        assert traced == [expected, expected]
        assert float(scored(first, true, jax.numpy.asarray(weight.astype(int)))) == expected


def test_every_metric_scores_mixed_dtypes_under_strict_type_promotion_as_under_the_standard_one():
    """int32 predicted labels against int64 true ones, float32 predictions against float64 targets, one-hot
    int64 rows against float32 probabilities: each metric raised TypePromotionError when the user had set
    ``jax_numpy_dtype_promotion="strict"`` (and so did every estimator fit with early stopping)."""
    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, 40)
    predicted = rng.integers(0, 3, 40).astype(np.int32)
    target, estimate = rng.normal(size=40), rng.normal(size=40).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(3), 40).astype(np.float32)
    calls = [
        lambda: metrics.accuracy(jax.numpy.asarray(predicted), true),
        lambda: metrics.balanced_accuracy(predicted, true.astype(np.float32), 3),
        lambda: metrics.r2_score(target, estimate),
        lambda: metrics.mean_squared_error(target, estimate, weight=[1.0] * 40),
        lambda: metrics.mean_absolute_error(target, estimate),
        lambda: metrics.log_loss(probabilities, np.eye(3, dtype=np.int64)[true]),
    ]
    for call in calls:
        standard = call()
        with jax.numpy_dtype_promotion("strict"):
            strict = call()
        assert strict.dtype == standard.dtype and np.array_equal(strict, standard)


@pytest.mark.parametrize("offset", [1e8, 1e10, 1e12, 3e12])
def test_r2_of_targets_far_from_zero_is_exact_to_rounding(offset):
    """Each column is scaled by a power of two, which is exact: dividing by the largest |y| rounded every value,
    and R² near 1e12 came out 2e-6 from the exact value, 1e4 times scikit-learn's own error."""
    from fractions import Fraction

    rng = np.random.default_rng(0)
    deviations = rng.normal(size=50)
    true, predicted = offset + deviations, offset + deviations + 0.3 * rng.normal(size=50)
    exact_true, exact_predicted = [Fraction(v) for v in true], [Fraction(v) for v in predicted]
    mean = sum(exact_true) / len(true)
    residual = sum((a - b) ** 2 for a, b in zip(exact_true, exact_predicted, strict=True))
    exact = float(1 - residual / sum((a - mean) ** 2 for a in exact_true))
    assert abs(float(metrics.r2_score(true, predicted)) - exact) <= 1e-13
