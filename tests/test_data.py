"""Data helpers: one-hot labels, standardisation, the bundled iris data and the shuffled split."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from jaxnn.data import (
    Split,
    Standardiser,
    iris_split,
    load_iris,
    one_hot,
    shuffle_split,
    standardise,
    stratified_split,
)


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert encoded.dtype == np.float64
    np.testing.assert_array_equal(one_hot(np.array([0, 1]), n_classes=4), [[1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(np.argmax(one_hot(np.arange(5)), axis=1), np.arange(5))


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (np.array([0.0, 1.0]), {}, r"1-D array of integer labels, got dtype float64"),
        (np.array([[0, 1]]), {}, r"1-D array of integer labels, got dtype int64 shape \(1, 2\)"),
        (np.array([0, -1]), {}, r"non-negative labels"),
        (np.array([0, 3]), {"n_classes": 3}, r"label 3 does not fit 3 classes"),
    ],
)
def test_one_hot_rejects_bad_labels(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        one_hot(labels, **kwargs)


def test_standardise_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(3.0, 2.0, (50, 3)), rng.normal(3.0, 2.0, (10, 3))
    scaler = standardise(x_train)
    assert isinstance(scaler, Standardiser)
    reference = StandardScaler().fit(x_train)
    np.testing.assert_allclose(scaler(x_train), reference.transform(x_train), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaler(x_test), reference.transform(x_test), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaler(x_train).mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaler(x_train).std(axis=0), 1.0, rtol=1e-12)


def test_standardise_a_constant_feature_does_not_divide_by_zero():
    x = np.column_stack([np.full(6, 4.0), np.arange(6.0)])
    scaler = standardise(x)
    assert scaler.scale[0] == 1.0
    out = scaler(x)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_array_equal(scaler(np.array([[5.0, 0.0]]))[:, 0], 1.0)  # shifted, not scaled


def test_iris_split_is_the_seeds_split():
    split = iris_split()
    assert isinstance(split, Split)
    assert split.x_train.shape == (112, 4) and split.x_test.shape == (38, 4)
    assert split.y_train.shape == (112,) and split.y_test.shape == (38,)
    assert set(np.unique(split.y_train)) == {0, 1, 2}
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(split.x_train.std(axis=0), 1.0, rtol=1e-12)
    # Standardised with the training split's statistics only: the test split is not centred exactly.
    assert np.abs(split.x_test.mean(axis=0)).max() > 1e-3
    # The seed's recipe done with scikit-learn directly: split (test_size 0.25, random_state 42), then
    # a scaler fitted on the training rows only.
    x, y = datasets.load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42)
    scaler = StandardScaler().fit(x_train)
    np.testing.assert_array_equal(split.y_train, y_train)
    np.testing.assert_array_equal(split.y_test, y_test)
    np.testing.assert_allclose(split.x_train, scaler.transform(x_train), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split.x_test, scaler.transform(x_test), rtol=1e-12, atol=1e-12)


def test_iris_split_is_reproducible_and_follows_its_arguments():
    first, again = iris_split(), iris_split()
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = iris_split(test_size=0.2, seed=0)
    assert other.x_train.shape == (120, 4) and other.x_test.shape == (30, 4)
    assert not np.array_equal(other.y_test[:30], first.y_test[:30])


def test_bundled_iris_is_scikit_learns_iris():
    iris, reference = load_iris(), datasets.load_iris()
    np.testing.assert_array_equal(iris.x, reference.data)
    np.testing.assert_array_equal(iris.y, reference.target)
    assert iris.class_names == tuple(reference.target_names)
    assert len(iris.feature_names) == 4 and iris.x.dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(
    n_samples=st.integers(2, 400),
    test_size=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_shuffle_split_is_scikit_learns_train_test_split(n_samples, test_size, seed):
    rows = np.arange(n_samples)
    try:
        expected_train, expected_test = train_test_split(rows, test_size=test_size, random_state=seed)
    except ValueError:  # scikit-learn refuses a split leaving no training rows: so must we
        with pytest.raises(ValueError, match="leaves no training rows"):
            shuffle_split(n_samples, test_size, seed)
        return
    train, test = shuffle_split(n_samples, test_size, seed)
    np.testing.assert_array_equal(train, expected_train)
    np.testing.assert_array_equal(test, expected_test)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 0.25, 0), r"at least 2 rows, got 1"),
        ((10, 0.0, 0), r"test_size must be a fraction between 0 and 1 \(exclusive\), got 0.0"),
        ((10, 1.0, 0), r"got 1.0"),
        ((10, "0.2", 0), r"got '0.2'"),
        ((10, 0.25, -1), r"seed must be an integer in \[0, 2\*\*32\), got -1"),
        ((10, 0.25, 0.5), r"got 0.5"),
        ((2, 0.6, 0), r"test_size 0.6 of 2 rows leaves no training rows"),
    ],
)
def test_shuffle_split_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        shuffle_split(*args)


def test_iris_needs_no_scikit_learn_import():
    # A script training on iris starts without scikit-learn's import (about 0.7 s of a fresh process).
    code = "import sys, jaxnn; from jaxnn.data import iris_split; iris_split(); print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_standardise_is_overflow_safe():
    # squaring 1e160 overflows: the old scale was inf and such a column became all zeros
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (40, 2))
    huge = x * np.array([1e160, 1e-160])
    scaler = standardise(huge)
    assert np.all(np.isfinite(scaler.scale)) and np.all(np.isfinite(scaler.mean))
    np.testing.assert_allclose(scaler(huge), standardise(x)(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaler(huge).std(axis=0), 1.0, rtol=1e-12)
    extreme = np.array([[1.7e308], [-1.7e308], [1e308]])  # near float64's largest number
    assert np.all(np.isfinite(standardise(extreme)(extreme)))


@settings(max_examples=80, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    test_size=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
    order_seed=st.integers(0, 100),
)
def test_stratified_split_is_scikit_learns_stratified_train_test_split(counts, test_size, seed, order_seed):
    labels = np.random.default_rng(order_seed).permutation(np.repeat(np.arange(len(counts)), counts))
    rows = np.arange(len(labels))
    try:
        expected_train, expected_test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)
    except ValueError:  # a class of one row, too few rows for the classes, or no training rows: refused alike
        with pytest.raises(ValueError, match=r"cannot stratify|leaves no training rows|at least 2 rows"):
            stratified_split(labels, test_size, seed)
        return
    train, test = stratified_split(labels, test_size, seed)
    np.testing.assert_array_equal(train, expected_train)
    np.testing.assert_array_equal(test, expected_test)


def test_stratified_split_names_what_makes_it_impossible():
    with pytest.raises(ValueError, match="cannot stratify: class 2 has a single row"):
        stratified_split(np.array([0, 0, 1, 1, 2]), 0.4, 0)
    with pytest.raises(ValueError, match="cannot stratify: the test part has 2 rows, fewer than the 3 classes"):
        stratified_split(np.array([0, 0, 1, 1, 2, 2]), 0.3, 0)
    with pytest.raises(ValueError, match="1-D array of labels"):
        stratified_split(np.zeros((4, 2)), 0.5, 0)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ([1.0, 2.0, 3.0], ValueError, r"x_train must be 2-D .* got shape \(3,\)"),  # one scalar mean for a vector
        (np.zeros((0, 3)), ValueError, r"at least one row, got shape \(0, 3\)"),  # NaN means and RuntimeWarnings
        ([[1.0], [np.nan]], ValueError, "x_train contains NaN or infinity"),  # a NaN mean: every value became NaN
        ([["a"]], TypeError, "x_train must hold real numbers"),  # NumPy's "could not convert string to float"
    ],
)
def test_standardise_refuses_what_it_cannot_learn_from(x, error, message):
    with pytest.raises(error, match=message):
        standardise(x)


@pytest.mark.parametrize("n_classes", ["3", 2.5, -1, 0])
def test_one_hot_needs_a_positive_class_count(n_classes):
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        one_hot([0, 1], n_classes)


def test_one_hot_of_no_labels_and_a_standardiser_of_another_width_say_what_to_do():
    # NumPy's "zero-size array to reduction operation" and "operands could not be broadcast" before
    with pytest.raises(ValueError, match=r"one_hot of no labels cannot tell the number of classes: pass n_classes"):
        one_hot(np.array([], int))
    assert one_hot(np.array([], int), n_classes=3).shape == (0, 3)
    scaler = standardise(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"learnt on 2 features, but x has shape \(3, 3\)"):
        scaler(np.ones((3, 3)))
    assert scaler(np.ones((5, 2))).shape == (5, 2)


def test_standardising_is_exact_for_a_column_with_an_offset_and_zero_for_one_constant_up_to_rounding():
    """x/scale − mean/scale cancelled: 1e12 + [0, 1, 2] was off by about 1e-4, and a column constant up to
    rounding ([0.1 + 0.2, 0.3, 0.3]) came out as [2, 0, 0], where StandardScaler gives zeros."""
    x = np.array([[1e12, 0.1 + 0.2], [1e12 + 1, 0.3], [1e12 + 2, 0.3]])
    z = standardise(x)(x)
    np.testing.assert_allclose(z[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z[:, 1], StandardScaler().fit_transform(x)[:, 1], atol=1e-15)
    assert np.all(np.abs(z[:, 1]) < 1e-15)
    huge = np.array([[1.7e308], [-1.7e308]])  # the difference overflows: the overflow-free form is used there
    np.testing.assert_allclose(standardise(huge)(huge)[:, 0], [1.0, -1.0])


def test_one_hot_is_scikit_learns_encoding_in_n_times_k_memory():
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    for k in (1, 2, 3, 7):
        labels = rng.integers(0, k, 20)
        expected = OneHotEncoder(categories=[list(range(k))]).fit_transform(labels[:, None]).toarray()
        np.testing.assert_array_equal(one_hot(labels, k), expected)
    wide = one_hot([3, 99_999], 100_000)  # np.eye(100000)[labels] asked for 80 GB: a MemoryError
    assert wide.shape == (2, 100_000) and wide.sum() == 2 and wide[0, 3] == wide[1, 99_999] == 1
    assert one_hot([], 3).shape == (0, 3)  # [] is float64 to NumPy: it was "needs integer labels"


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: shuffle_split(10.0, 0.2, 0), ValueError, "n_samples must be an integer"),  # "at least 2 rows"
        (lambda: stratified_split([np.nan, np.nan, 1.0, 1.0], 0.5, 0), ValueError, "labels contain NaN"),
        (lambda: stratified_split([None, None, 1, 1], 0.5, 0), TypeError, "one sortable kind"),  # numpy's '<'
        (lambda: standardise([[0.0], [1.0]])([["a"]]), TypeError, "x must hold real numbers"),  # numpy's message
    ],
)
def test_split_and_standardiser_inputs_that_cannot_work_say_why(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("label", [10**12, 2**63 - 1, 2**63])
def test_one_hot_of_a_label_too_large_to_allocate_names_it_and_what_to_do(label):
    """NumPy's MemoryError (7 TiB) or "Maximum allowed dimension exceeded" said neither."""
    with pytest.raises(ValueError, match=rf"label {label} means {label + 1} classes.*np.unique"):
        one_hot(np.array([0, label], dtype=np.uint64))


def test_standardise_names_a_ragged_list():
    """NumPy's "setting an array element with a sequence ... inhomogeneous shape" named no argument."""
    with pytest.raises(ValueError, match="x_train must be a rectangular array: its rows have different lengths"):
        standardise([[1.0, 2.0], [1.0]])


def test_standardise_a_small_spread_around_a_large_mean_is_exact_to_rounding():
    """The variance left out the square of the deviations' mean (the mean is known only to its rounding, ~1e-8
    here): the scale of a spread of 2e-7 around 1.6e8 was 3e-3 off, StandardScaler's 1e-16 (exact: fractions)."""
    from fractions import Fraction

    x = np.array([[-161787042.56028467], [-161787042.56028512], [-161787042.56028515], [-161787042.56028512]])
    values = [Fraction(v) for v in x[:, 0]]
    mean = sum(values) / len(values)
    exact = float(sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    np.testing.assert_allclose(standardise(x).scale, [exact], rtol=1e-12)
    np.testing.assert_allclose(standardise(x).scale, StandardScaler().fit(x).scale_, rtol=1e-12)


def test_shuffle_split_of_more_rows_than_numpy_indexes_names_n_samples():
    """NumPy's "Maximum allowed size exceeded" named nothing."""
    with pytest.raises(ValueError, match="n_samples 1180591620717411303424 is more rows than NumPy can index"):
        shuffle_split(2**70, 0.5, 0)
