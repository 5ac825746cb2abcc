"""Losses: values against independent references, the reductions and weights, extreme logits, errors.

The rule-vs-autodiff-vs-finite-differences checks of every loss live in ``test_gradcheck.py``.
"""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import LOSS_NAMES, loss_inputs
from sklearn.metrics import log_loss

import jaxnn
from jaxnn.losses import CLIP_EPS, LOSSES, scikit_learn_squared_error

RNG = np.random.default_rng(0)


def _with_x64(fn):
    with jax.enable_x64(True):
        return float(fn())


# ---------------------------------------------------------------------------------------------
# Values against references that share no code with jaxnn.


def test_sum_of_squares_value():
    p, y = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    assert _with_x64(lambda: jaxnn.sum_of_squares(p, y)) == pytest.approx(np.sum((p - y) ** 2), rel=1e-14)


def test_mean_squared_error_value():
    p, y = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    assert _with_x64(lambda: jaxnn.mean_squared_error(p, y)) == pytest.approx(np.mean((p - y) ** 2), rel=1e-14)


def test_binary_cross_entropy_value_matches_sklearn():
    p, y = RNG.uniform(0.05, 0.95, 20), RNG.integers(0, 2, 20)
    assert _with_x64(lambda: jaxnn.binary_cross_entropy(p, y)) == pytest.approx(log_loss(y, p), rel=1e-12)
    # Several outputs: the per-sample loss sums over them (seed 001b's cost for each output).
    p2, y2 = RNG.uniform(0.05, 0.95, (6, 2)), RNG.uniform(0, 1, (6, 2))
    expected = -np.mean(np.sum(y2 * np.log(p2) + (1 - y2) * np.log(1 - p2), axis=1))
    assert _with_x64(lambda: jaxnn.binary_cross_entropy(p2, y2)) == pytest.approx(expected, rel=1e-12)


def test_categorical_cross_entropy_value_matches_sklearn():
    p = RNG.uniform(0.1, 1.0, (8, 3))
    p /= p.sum(axis=1, keepdims=True)
    labels = RNG.integers(0, 3, 8)
    value = _with_x64(lambda: jaxnn.categorical_cross_entropy(p, np.eye(3)[labels]))
    assert value == pytest.approx(log_loss(labels, p, labels=[0, 1, 2]), rel=1e-12)


def test_categorical_cross_entropy_normalises_rows_like_the_seed():
    """The seed divides the prediction by its row sum first, so scaling a row changes nothing."""
    p, y = RNG.uniform(0.1, 1.0, (4, 3)), np.eye(3)[[0, 2, 1, 1]]
    assert _with_x64(lambda: jaxnn.categorical_cross_entropy(5.0 * p, y)) == pytest.approx(
        _with_x64(lambda: jaxnn.categorical_cross_entropy(p, y)), rel=1e-14
    )


def test_softmax_cross_entropy_value_matches_optax():
    z, y = RNG.normal(size=(6, 4)), np.eye(4)[RNG.integers(0, 4, 6)]
    expected = _with_x64(lambda: np.mean(optax.softmax_cross_entropy(z, y)))
    assert _with_x64(lambda: jaxnn.softmax_cross_entropy(z, y)) == pytest.approx(expected, rel=1e-12)
    # Fused == softmax followed by the (unclipped here) categorical cross-entropy.
    fused = _with_x64(lambda: jaxnn.softmax_cross_entropy(z, y))
    assert fused == pytest.approx(_with_x64(lambda: jaxnn.categorical_cross_entropy(jaxnn.softmax(z), y)), rel=1e-12)


def test_sigmoid_binary_cross_entropy_value_matches_optax():
    z, y = RNG.normal(size=(6, 2)), RNG.uniform(0, 1, (6, 2))
    expected = _with_x64(lambda: np.mean(np.sum(optax.sigmoid_binary_cross_entropy(z, y), axis=1)))
    assert _with_x64(lambda: jaxnn.sigmoid_binary_cross_entropy(z, y)) == pytest.approx(expected, rel=1e-12)
    fused = _with_x64(lambda: jaxnn.sigmoid_binary_cross_entropy(z, y))
    assert fused == pytest.approx(_with_x64(lambda: jaxnn.binary_cross_entropy(jaxnn.sigmoid(z), y)), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_call_and_forward_agree(name):
    loss = LOSSES[name]
    pred, target = loss_inputs(name, RNG, 4, 3, jnp.float32)
    np.testing.assert_array_equal(loss(pred, target), loss.forward(pred, target))
    on_logits = ("poisson", "log_loss", "binary_log_loss")
    assert loss.from_logits == (name.startswith(("softmax_", "sigmoid_")) or name in on_logits)


def _scikit_learns_log_loss(p, y):
    """scikit-learn's MLP (neural_network/_base.py) transcribed: −Σ y·log(clip(p, ε, 1 − ε)) / n, the binary form with
    its (1 − y)·log(1 − clip(p)) term, ε the machine epsilon of p's dtype."""
    epsilon = np.finfo(p.dtype).eps
    c = np.clip(p, epsilon, 1 - epsilon)
    terms = y * np.log(c) if p.shape[1] > 1 else y * np.log(c) + (1 - y) * np.log(1 - c)
    return -np.sum(terms) / p.shape[0]


@pytest.mark.parametrize("n_targets", [1, 4])
def test_the_estimators_squared_error_reports_scikit_learns_mean_and_steps_on_its_sum_over_targets(n_targets):
    """MLPRegressor's squared_loss is ½·mean over all n·k entries (weighted rows: np.average), while its backward pass
    starts from (p − y)·w/Σw for every target: the gradient of ½·Σ_j.  The estimators stepped on the mean's gradient,
    1/k of MLP's: plain sgd with 4 targets reached R² 0.06 where MLP reached 0.65 (tests/test_estimators_dropin.py).
    jaxnn's own squared_error keeps the gradient of the value it reports."""
    rng = np.random.default_rng(n_targets)
    p, y, w = rng.normal(size=(6, n_targets)), rng.normal(size=(6, n_targets)), rng.uniform(0.5, 2.0, 6)
    estimators, own = scikit_learn_squared_error, jaxnn.squared_error
    with jax.enable_x64(True):
        reported = 0.5 * np.average((y - p) ** 2, weights=w, axis=0).mean()
        for loss in (estimators, own):
            assert float(loss(p, y, w)) == pytest.approx(reported, rel=1e-14)
            assert float(loss.forward(p, y, w)) == float(loss(p, y, w))
        summed = 0.5 * np.sum(w[:, None] * (p - y) ** 2) / np.sum(w)
        assert float(estimators.differentiated(p, y, w)) == pytest.approx(summed, rel=1e-14)
        assert float(own.differentiated(p, y, w)) == pytest.approx(reported, rel=1e-14)
        mlps_gradient = (p - y) * w[:, None] / np.sum(w)
        for value_of in (
            estimators,
            estimators.forward,
            estimators.differentiated,
        ):  # the rule, autodiff of the forwards
            np.testing.assert_allclose(jax.grad(value_of)(jnp.asarray(p), y, w), mlps_gradient, rtol=1e-13)
        np.testing.assert_allclose(jax.grad(own)(jnp.asarray(p), y, w), mlps_gradient / n_targets, rtol=1e-13)
        for loss in (estimators, own):  # each rule against finite differences of its objective, in every argument
            jaxnn.check_vjp(loss.op.forward, loss.op.vjp, jnp.asarray(p), jnp.asarray(y), jnp.asarray(w))
    assert "scikit_learn_squared_error" not in LOSSES and LOSSES["squared_error"] is own
    assert pickle.loads(pickle.dumps(estimators)) is estimators
    # a search's cv_results_ tells the two apart
    assert (repr(own), repr(estimators)) == ("Loss(squared_error)", "Loss(scikit_learn_squared_error)")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("name", "fused"), [("log_loss", "softmax_cross_entropy"), ("binary_log_loss", "sigmoid_binary_cross_entropy")]
)
def test_scikit_learns_log_losses_report_its_clipped_value_and_train_with_the_fused_gradient(name, fused, dtype):
    """A confidently wrong sample counts at most −log ε in MLP's reported loss, while its gradient stays p − y: the
    value the stopping rule and L-BFGS's line search read is MLP's (unclipped it was 76 where MLP's was 19.9)."""
    columns = 3 if name == "log_loss" else 1
    z = np.array([[60.0, 0.0, -60.0], [0.5, 1.0, 2.0], [-40.0, 40.0, 0.0], [3.0, -2.0, 0.0]])[:, :columns]
    y = np.eye(3)[[2, 1, 0, 0]] if columns == 3 else np.array([[0.0], [1.0], [1.0], [0.0]])  # rows 0 and 2 wrong
    with jax.enable_x64(dtype == np.float64):
        z, y = jnp.asarray(z, dtype), jnp.asarray(y, dtype)
        loss, unclipped = LOSSES[name], LOSSES[fused]
        p = jax.nn.softmax(z) if columns == 3 else jax.nn.sigmoid(z)
        expected = _scikit_learns_log_loss(np.asarray(p), np.asarray(y))
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(loss(z, y), expected, rtol=rtol)
        np.testing.assert_allclose(loss.forward(z, y), expected, rtol=rtol)
        assert float(unclipped(z, y)) > float(loss(z, y)) + 5  # the clip holds the wrong rows' terms at −log ε
        for value_of in (loss, loss.forward):  # hand-written rule and autodiff of the plain forward alike
            np.testing.assert_allclose(jax.grad(value_of)(z, y), jax.grad(unclipped)(z, y), rtol=rtol, atol=1e-15)
        np.testing.assert_allclose(jax.grad(loss)(z, y), (p - y) / 4, atol=1e-7)


@pytest.mark.parametrize(
    ("name", "fused"), [("log_loss", "softmax_cross_entropy"), ("binary_log_loss", "sigmoid_binary_cross_entropy")]
)
def test_the_reported_log_loss_is_exact_beside_a_huge_fused_value(name, fused):
    """Unscaled data gives logits of 1e9: the fused float32 loss is ~1e9, whose ulp (64) swallowed MLP's clipped
    value (≤ 15.94 per sample) when it was reported as ``L + stop_gradient(R − L)``: 0.0 came back."""
    columns = 2 if name == "log_loss" else 1
    z = jnp.asarray(np.array([[1e9, -1e9], [-1e9, 1e9], [3.0, 0.0]])[:, :columns], jnp.float32)
    y = jnp.asarray(np.eye(2)[[1, 1, 0]][:, :columns] if columns == 2 else [[0.0], [1.0], [1.0]], jnp.float32)
    loss, unclipped = LOSSES[name], LOSSES[fused]
    p = jax.nn.softmax(z) if columns == 2 else jax.nn.sigmoid(z)
    assert float(unclipped(z, y)) > 1e8
    np.testing.assert_allclose(loss(z, y), _scikit_learns_log_loss(np.asarray(p), np.asarray(y)), rtol=1e-6)
    np.testing.assert_array_equal(jax.grad(loss)(z, y), jax.grad(unclipped)(z, y))


def test_categorical_cross_entropy_gradient_is_orthogonal_to_the_row():
    """Scale invariance, differentiated: Σ_i p_i ∂l/∂p_i = 0 for every row."""
    p, y = RNG.uniform(0.1, 1.0, (4, 3)), np.eye(3)[[0, 2, 1, 1]]
    with jax.enable_x64(True):
        grad = jax.grad(jaxnn.categorical_cross_entropy)(jnp.asarray(p), jnp.asarray(y))
    np.testing.assert_allclose(np.sum(p * np.asarray(grad), axis=1), 0.0, atol=1e-15)
    assert np.abs(grad).min() > 1e-3  # ... while the gradient itself is not zero


def test_softmax_then_categorical_cross_entropy_gives_p_minus_y_over_n():
    z, y = RNG.normal(size=(5, 3)), np.eye(3)[[0, 1, 2, 0, 1]]
    with jax.enable_x64(True):
        grad = jax.grad(lambda z: jaxnn.categorical_cross_entropy(jaxnn.softmax(z), jnp.asarray(y)))(jnp.asarray(z))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (p - y) / 5, rtol=1e-10, atol=1e-15)


def test_fused_losses_give_p_minus_y_over_n():
    """∂L/∂z of the fused mean losses is (p − y)/n: softmax(z) or σ(z), minus the target, averaged."""
    z, y = RNG.normal(size=(5, 3)), np.eye(3)[[0, 1, 2, 0, 1]]
    with jax.enable_x64(True):
        softmax_grad = jax.grad(jaxnn.softmax_cross_entropy)(jnp.asarray(z), jnp.asarray(y))
        sigmoid_grad = jax.grad(jaxnn.sigmoid_binary_cross_entropy)(jnp.asarray(z), jnp.asarray(y))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax_grad, (p - y) / 5, rtol=1e-12)
    np.testing.assert_allclose(sigmoid_grad, (1 / (1 + np.exp(-z)) - y) / 5, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Reductions and per-sample weights.


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_a_weight_of_two_is_a_duplicated_row(name):
    loss = LOSSES[name]
    with jax.enable_x64(True):
        pred, target = loss_inputs(name, RNG, 3, 2, jnp.float64)
        weighted = loss(pred, target, jnp.array([1.0, 2.0, 1.0]))
        rows = np.array([0, 1, 1, 2])
        duplicated = loss(pred[rows], target[rows])
    np.testing.assert_allclose(weighted, duplicated, rtol=1e-13)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_zero_weight_rows_are_masked_out(name):
    """Rows of weight 0 change neither the loss nor anyone's gradient, and get no gradient themselves."""
    loss = LOSSES[name]
    with jax.enable_x64(True):
        pred, target = loss_inputs(name, RNG, 4, 2, jnp.float64)
        masked, kept = np.array([1, 3]), np.array([0, 2])
        garbage = pred.at[masked].set(pred[masked] * 0.5 + 0.2)
        weight = jnp.array([1.0, 0.0, 1.0, 0.0])
        np.testing.assert_allclose(loss(garbage, target, weight), loss(pred[kept], target[kept]), rtol=1e-13)
        grad_masked = jax.grad(loss)(garbage, target, weight)
        grad_kept = jax.grad(loss)(pred[kept], target[kept])
    np.testing.assert_allclose(grad_masked[kept], grad_kept, rtol=1e-13)
    np.testing.assert_array_equal(grad_masked[masked], 0.0)


def test_mean_and_sum_reductions():
    p, y, w = RNG.normal(size=(4, 2)), RNG.normal(size=(4, 2)), np.array([0.5, 1.0, 2.0, 0.0])
    per_sample = np.sum((p - y) ** 2, axis=1)
    with jax.enable_x64(True):
        assert float(jaxnn.sum_of_squares(p, y, w)) == pytest.approx(np.sum(w * per_sample), rel=1e-14)
        mse = float(jaxnn.mean_squared_error(p, y, w))
    assert mse == pytest.approx(np.sum(w * per_sample / 2) / np.sum(w), rel=1e-14)


def test_one_dimensional_predictions_are_one_output_column():
    p, y = np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 1.0])
    np.testing.assert_array_equal(jaxnn.binary_cross_entropy(p, y), jaxnn.binary_cross_entropy(p[:, None], y[:, None]))


def test_make_loss_builds_a_checked_loss():
    absolute = jaxnn.make_loss(
        "sum_of_absolute_errors",
        lambda p, y: jnp.sum(jnp.abs(p - y), axis=-1),
        lambda p, y: (jnp.sign(p - y), -jnp.sign(p - y)),
        task="regression",
        output_activation="identity",
        reduction="sum",
    )
    assert (absolute.task, absolute.output_activation, absolute.last_layer_activation) == (
        "regression",
        "identity",
        "identity",
    )
    p, y, w = jnp.array([[1.0, -2.0]]), jnp.array([[0.5, 0.0]]), jnp.array([3.0])
    assert float(absolute(p, y, w)) == pytest.approx(3.0 * 2.5)
    with jax.enable_x64(True):
        jaxnn.check_vjp(absolute.op.forward, absolute.op.vjp, *(jnp.asarray(a, jnp.float64) for a in (p, y, w)))
    with pytest.raises(ValueError, match=r"reduction must be 'mean' or 'sum', got 'median'"):
        jaxnn.make_loss(
            "bad",
            absolute.op.forward,
            absolute.op.backward,
            task="regression",
            output_activation="identity",
            reduction="median",
        )
    with pytest.raises(TypeError, match="task"):  # the facts a front end reads cannot be left out
        jaxnn.make_loss("bare", absolute.op.forward, absolute.op.backward)
    with pytest.raises(ValueError, match="task must be one of regression, binary, categorical"):
        jaxnn.make_loss("odd", absolute.op.forward, absolute.op.backward, task="ranking", output_activation="identity")


def _squares_loss(**changes):
    """A sum-of-squares loss built by make_loss, with ``changes`` to its arguments."""
    arguments = {
        "name": "mine",
        "per_sample": lambda p, y: jnp.sum((p - y) ** 2, axis=-1),
        "per_sample_grads": lambda p, y: (2 * (p - y), -2 * (p - y)),
        "task": "regression",
        "output_activation": "identity",
    }
    return jaxnn.make_loss(**(arguments | changes))


@pytest.mark.parametrize("flag", ["from_logits", "nonnegative_targets"])
def test_make_loss_flags_must_be_booleans(flag):
    # from_logits="no" was kept as it came, and read as True
    with pytest.raises(TypeError, match=rf"{flag} must be True or False, got 'no'"):
        _squares_loss(**{flag: "no"})
    assert getattr(_squares_loss(**{flag: np.bool_(True)}), flag)


@pytest.mark.parametrize(
    "per_sample", [lambda p, y: jnp.sum((p - y) ** 2), lambda p, y: (p - y) ** 2], ids=["summed-over-samples", "2-D"]
)
def test_make_loss_per_sample_must_give_one_loss_per_sample(per_sample):
    # a per_sample that summed over the samples too gave 6.0 for this mean loss (the sum), not 2.0, silently
    p, y = jnp.ones((3, 2)), jnp.zeros((3, 2))
    assert float(_squares_loss()(p, y)) == 2.0
    with pytest.raises(ValueError, match=r"loss 'mine': per_sample\(pred, target\) must return one loss per sample, "):
        _squares_loss(per_sample=per_sample)(p, y)


@pytest.mark.parametrize(
    ("per_sample_grads", "got"),
    [
        (lambda p, y: (2 * (p - y),), "a tuple of 1"),  # was "not enough values to unpack (expected 2, got 1)"
        (lambda p, y: 2 * (p - y), "one array"),
        (
            lambda p, y: (jnp.sum(2 * (p - y), axis=-1), -2 * (p - y)),
            r"shape \(3,\) for pred, which has shape \(3, 2\)",
        ),
        # was refused only by make_op's check of the loss op, which named neither the loss nor per_sample_grads
        (lambda p, y: ((2 * (p - y)).astype(jnp.int32), -2 * (p - y)), "dtype int32 for pred, which is float32"),
    ],
    ids=["one-value", "one-array", "wrong-shape", "integer"],
)
def test_make_loss_per_sample_grads_must_be_a_pair_like_pred_and_target(per_sample_grads, got):
    loss = _squares_loss(per_sample_grads=per_sample_grads)
    with pytest.raises(
        TypeError, match=rf"loss 'mine': per_sample_grads\(pred, target\) must return a pair .*; got {got}"
    ):
        jax.grad(lambda p: loss(p, jnp.zeros((3, 2))))(jnp.ones((3, 2)))


def test_make_loss_per_sample_grads_may_return_the_pair_as_a_list():
    as_list = _squares_loss(per_sample_grads=lambda p, y: [2 * (p - y), -2 * (p - y)])
    p, y = jnp.arange(6.0).reshape(3, 2), jnp.zeros((3, 2))
    np.testing.assert_array_equal(jax.grad(as_list)(p, y), jax.grad(_squares_loss())(p, y))


@pytest.mark.parametrize("loss", [*LOSSES.values(), scikit_learn_squared_error], ids=lambda loss: loss.name)
def test_every_loss_carries_its_own_math_in_its_docstring(loss):
    """A learner's ``loss.__doc__`` (or IPython's ``loss?``) shows that loss's value and hand-written rule, as each
    activation's does, not the generic Loss class docstring."""
    doc = loss.__doc__
    assert doc is not type(loss).__doc__ and repr(loss.name) in doc
    assert "l_i" in doc and "∂l/∂" in doc  # the per-sample value and its derivatives
    assert ("L = Σ_i w_i l_i (summed)" in doc) == (loss.reduction == "sum")
    if loss.reported_per_sample is not None:
        assert "report" in doc


def test_a_loss_made_by_the_user_gets_a_docstring_from_its_functions():
    def per_sample(p, y):
        """l_i = Σ_j |p − y|³"""
        return jnp.sum(jnp.abs(p - y) ** 3, axis=-1)

    def per_sample_grads(p, y):
        """∂l/∂p = 3(p − y)|p − y|"""
        d = 3 * (p - y) * jnp.abs(p - y)
        return d, -d

    cubes = jaxnn.make_loss("cubes", per_sample, per_sample_grads, task="regression", output_activation="identity")
    assert "l_i = Σ_j |p − y|³" in cubes.__doc__ and "∂l/∂p = 3(p − y)|p − y|" in cubes.__doc__
    assert "weighted mean" in cubes.__doc__


# ---------------------------------------------------------------------------------------------
# Clipping and extreme logits.


# The clip bounds as float32 holds them: 1 − 1e-7 rounds to 1 − 1.19e-7, so in float32 a certain
# mistake costs −log(1e-7) ≈ 16.12 at p = 0 but −log(1.19e-7) ≈ 15.94 at p = 1.
LOW_32, HIGH_32 = float(np.float32(CLIP_EPS)), float(np.float32(1 - CLIP_EPS))
CERTAIN_MISTAKE_AT_0, CERTAIN_MISTAKE_AT_1 = -np.log(LOW_32), -np.log1p(-HIGH_32)


def test_binary_cross_entropy_clip_keeps_certain_mistakes_finite():
    """p is clipped to [1e-7, 1 − 1e-7]: a certain mistake costs about −log(1e-7) ≈ 16, not infinity,
    and the clip's derivative (0 where it holds) stops the gradient there."""
    p, y = jnp.array([0.0, 1.0, 0.0, 1.0]), jnp.array([1.0, 0.0, 0.0, 1.0])
    per_sample = [float(jaxnn.binary_cross_entropy(p[i : i + 1], y[i : i + 1])) for i in range(4)]
    np.testing.assert_allclose(per_sample[:2], [CERTAIN_MISTAKE_AT_0, CERTAIN_MISTAKE_AT_1], rtol=1e-6)
    np.testing.assert_allclose(per_sample[2:], 0.0, atol=2e-7)
    with jax.enable_x64(True):  # in float64 the bounds are exact and the two mistakes cost the same
        p64, y64 = jnp.asarray(np.asarray(p), jnp.float64), jnp.asarray(np.asarray(y), jnp.float64)
        per_sample_64 = [float(jaxnn.binary_cross_entropy(p64[i : i + 1], y64[i : i + 1])) for i in range(2)]
    np.testing.assert_allclose(per_sample_64, -np.log(CLIP_EPS), rtol=1e-9)  # 1 − (1 − 1e-7) is 1e-7 to 1e-10
    grad = jax.grad(jaxnn.binary_cross_entropy)(p, y)
    np.testing.assert_array_equal(grad, np.zeros(4))


def test_categorical_cross_entropy_clip_stops_the_gradient_where_it_holds():
    """Where the clip holds a normalised probability q at ε or 1 − ε its derivative is 0, so no gradient flows
    through that term (as through binary cross-entropy's clip above); a rule that forgot it gave −y/ε ≈ −10⁷ for
    a certain mistake.  Row 2 is inside the clip, where the rule must still be the plain forward's derivative."""
    p = jnp.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    y = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    loss = jaxnn.categorical_cross_entropy
    with jax.enable_x64(True):
        p64, y64 = jnp.asarray(np.asarray(p), jnp.float64), jnp.asarray(np.asarray(y), jnp.float64)
        rule = jax.grad(loss)(p64, y64)
        plain = jax.grad(loss.forward)(p64, y64)
    np.testing.assert_array_equal(rule[:2], np.zeros((2, 3)))
    np.testing.assert_allclose(rule, plain, rtol=1e-12, atol=1e-15)
    assert np.abs(rule[2]).min() > 0.1  # ... while row 2's gradient is not zero
    np.testing.assert_array_equal(jax.grad(loss)(p, y)[:2], np.zeros((2, 3)))  # float32 too


@pytest.mark.parametrize("loss_name", ["binary_cross_entropy", "categorical_cross_entropy"])
def test_at_a_clip_bound_itself_the_rule_takes_the_clips_half_slope_as_autodiff_and_finite_differences_do(
    loss_name,
):
    """At p = ε or 1 − ε exactly the clip has a kink: the rule takes ½, the mean of its one-sided slopes, which is
    what jax.grad of the plain forward (``jnp.clip``) and a central finite difference across the bound both give.
    A rule taking 0 there (as jaxnn's did) disagreed with both by half the slope: 5·10⁶ for a certain mistake."""
    loss = LOSSES[loss_name]
    if loss_name == "binary_cross_entropy":
        p, y = np.array([[CLIP_EPS, 1 - CLIP_EPS, CLIP_EPS, 0.3]]), np.array([[1.0, 0.0, 0.0, 1.0]])
    else:  # rows of already-normalised probabilities, so q = p; a zero-target column at a bound is a zero term
        p, y = np.array([[CLIP_EPS, 1 - CLIP_EPS], [1 - CLIP_EPS, CLIP_EPS]]), np.array([[1.0, 0.0], [1.0, 0.0]])
    with jax.enable_x64(True):
        p64, y64 = jnp.asarray(p), jnp.asarray(y)
        rule = np.asarray(jax.grad(loss)(p64, y64))
        plain = np.asarray(jax.grad(loss.forward)(p64, y64))
        step = 1e-12
        central = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            shift = np.zeros_like(p)
            shift[index] = step
            ahead, behind = (float(loss.forward(jnp.asarray(p + sign * shift), y64)) for sign in (1, -1))
            central[index] = (ahead - behind) / (2 * step)
    np.testing.assert_allclose(rule, plain, rtol=1e-12)
    # the step must stay below ε, so the differences of O(1) entries carry rounding of about 1e-4/|loss| (atol)
    np.testing.assert_allclose(rule, central, rtol=1e-3, atol=1e-2)
    assert np.abs(rule).max() > 1e6  # a certain mistake at the bound: half of 1/ε's slope, not 0


def test_a_float32_sigmoid_saturated_onto_the_clip_bound_gets_the_plain_forwards_gradient():
    """σ(z) rounds to exactly 1 − ε in float32 for z in about [15.5, 16.6]: reachable in training, where a rule and
    JAX's autodiff of the same network must not disagree."""
    model = jaxnn.Sequential((jaxnn.Dense(1, "sigmoid"),))
    params = [{"W": jnp.array([[15.8]], jnp.float32), "b": jnp.zeros(1, jnp.float32)}]
    x, y = jnp.ones((1, 1), jnp.float32), jnp.zeros((1, 1), jnp.float32)
    assert float(model.apply(params, x)[0, 0]) == HIGH_32

    def objective(custom_rules):
        return lambda q: jaxnn.binary_cross_entropy(model.apply(q, x, custom_rules=custom_rules), y)

    rules, plain = jax.grad(objective(True))(params), jax.grad(objective(False))(params)
    np.testing.assert_allclose(rules[0]["W"], plain[0]["W"], rtol=1e-5)
    assert abs(float(rules[0]["W"][0, 0])) > 0.1


def _loss_and_grad(loss, logits, target, activation=None):
    def total(z):
        return loss(z if activation is None else activation(z), target)

    return jax.value_and_grad(total)(logits)


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_softmax_cross_entropy_extreme_logits(scale):
    z = jnp.array([[scale, -scale, 0.0]], jnp.float32)
    right, right_grad = _loss_and_grad(jaxnn.softmax_cross_entropy, z, jnp.array([[1.0, 0.0, 0.0]]))
    wrong, wrong_grad = _loss_and_grad(jaxnn.softmax_cross_entropy, z, jnp.array([[0.0, 1.0, 0.0]]))
    assert float(right) == 0.0
    assert float(wrong) == pytest.approx(2 * scale, rel=1e-6)  # logsumexp(z) − z_wrong = scale + scale
    np.testing.assert_array_equal(right_grad, [[0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(wrong_grad, [[1.0, -1.0, 0.0]])  # p − y


@pytest.mark.parametrize("offset", [1e6, 1e7, -1e7])
def test_softmax_cross_entropy_of_large_logits_close_together_is_their_differences_loss(offset):
    """Softmax is unchanged by adding a constant to a row, so logits near a large offset have the loss and the
    gradient of their differences from it.  lse(z) was m + log Σ e^{z − m}: the log rounded to m's ulp (1 at 10⁷ in
    float32), so row 0's loss, log 3 ≈ 1.10, came out 1 and the gradient's p did not sum to 1."""
    differences = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    y = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], jnp.float32)
    near_zero, near_zero_grad = _loss_and_grad(jaxnn.softmax_cross_entropy, jnp.asarray(differences, jnp.float32), y)
    offset_loss, offset_grad = _loss_and_grad(
        jaxnn.softmax_cross_entropy, jnp.asarray(differences, jnp.float32) + jnp.float32(offset), y
    )
    np.testing.assert_allclose(offset_loss, near_zero, rtol=1e-6)
    np.testing.assert_allclose(offset_grad, near_zero_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_binary_cross_entropy_keeps_a_confident_right_answers_small_loss_and_gradient(dtype):
    """softplus(z) − y·z and σ(z) − y cancelled to 0 once σ(z) rounded to 1 (z = 20 in float32, 40 in float64);
    the loss is log(1 + e^{−|z|}) ≈ e^{−|z|} there and its gradient −σ(−z) (y = 1) or σ(z) (y = 0)."""
    z = np.array([[20.0], [40.0], [-20.0], [-40.0], [60.0]])
    y = np.array([[1.0], [1.0], [0.0], [0.0], [1.0]])
    exact_losses = np.log1p(np.exp(-np.abs(z)))
    exact_grads = -np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))) * np.where(y == 1.0, 1.0, -1.0)
    loss = jaxnn.sigmoid_binary_cross_entropy
    with jax.enable_x64(dtype == np.float64):
        weight = jnp.asarray([1.0, 0.0, 0.0, 0.0, 0.0], dtype)  # the z = 20 row alone, as a one-row loss
        value = loss(jnp.asarray(z, dtype), jnp.asarray(y, dtype), weight)
        grad = jax.grad(loss)(jnp.asarray(z, dtype), jnp.asarray(y, dtype)) * len(z)
        plain = jax.grad(loss.forward)(jnp.asarray(z, dtype), jnp.asarray(y, dtype)) * len(z)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(value, exact_losses[0, 0], rtol=rtol)
    np.testing.assert_allclose(grad, exact_grads.astype(dtype), rtol=rtol)
    np.testing.assert_allclose(plain, exact_grads.astype(dtype), rtol=rtol)


def test_sigmoid_binary_cross_entropy_plain_forward_differentiates_to_the_rule_at_zero():
    """At z = 0 exactly (a dead layer before it, a zero bias) autodiff of the plain forward gave −y, reading
    jnp.maximum's and jnp.abs's derivatives at their corners; the derivative is σ(0) − y = ½ − y, as the rule says."""
    z = jnp.zeros((3, 1))
    y = jnp.array([[0.0], [1.0], [0.25]])
    loss = jaxnn.sigmoid_binary_cross_entropy
    expected = (0.5 - np.asarray(y)) / 3
    np.testing.assert_allclose(jax.grad(loss)(z, y), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(loss.forward)(z, y), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_half_poisson_deviance_of_a_zero_count_at_an_underflowed_mean_is_zero_not_nan(dtype):
    """l = y log(y/μ) − y + μ with 0·log 0 = 0 is μ at y = 0, so 0 at μ = 0 (exp underflows to it below z ≈ −104 in
    float32), with ∂l/∂μ = 1; y·log μ made it 0·(−∞) = NaN, and the rule's y/μ 0/0."""
    mu, y = np.array([[0.0], [0.5]]), np.zeros((2, 1))
    loss = jaxnn.half_poisson_deviance
    with jax.enable_x64(dtype == np.float64):
        mu, y = jnp.asarray(mu, dtype), jnp.asarray(y, dtype)
        value = loss(mu, y)
        grad = jax.grad(loss)(mu, y)
        plain = jax.grad(loss.forward)(mu, y)
        through_exp = jax.grad(lambda z: loss(jaxnn.exp(z), y))(jnp.asarray([[-1e3], [np.log(0.5)]], dtype))
    np.testing.assert_allclose(value, 0.25, rtol=1e-6)
    np.testing.assert_allclose(grad, [[0.5], [0.5]], rtol=1e-6)
    np.testing.assert_allclose(plain, [[0.5], [0.5]], rtol=1e-6)
    np.testing.assert_allclose(through_exp, [[0.0], [0.25]], rtol=1e-6)  # (μ − y)/n


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_sigmoid_binary_cross_entropy_extreme_logits(scale):
    z = jnp.array([[scale], [-scale]], jnp.float32)
    right, right_grad = _loss_and_grad(jaxnn.sigmoid_binary_cross_entropy, z, jnp.array([[1.0], [0.0]]))
    wrong, wrong_grad = _loss_and_grad(jaxnn.sigmoid_binary_cross_entropy, z, jnp.array([[0.0], [1.0]]))
    assert float(right) == 0.0
    assert float(wrong) == pytest.approx(scale, rel=1e-6)
    np.testing.assert_array_equal(right_grad, [[0.0], [0.0]])
    np.testing.assert_array_equal(wrong_grad, [[0.5], [-0.5]])  # (σ(z) − y)/n


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_softmax_then_categorical_cross_entropy_extreme_logits(scale):
    z = jnp.array([[scale, -scale, 0.0]], jnp.float32)
    right, right_grad = _loss_and_grad(jaxnn.categorical_cross_entropy, z, jnp.array([[1.0, 0.0, 0.0]]), jaxnn.softmax)
    wrong, wrong_grad = _loss_and_grad(jaxnn.categorical_cross_entropy, z, jnp.array([[0.0, 1.0, 0.0]]), jaxnn.softmax)
    assert 0.0 <= float(right) < 1e-6  # −log(1 − 1e-7)
    assert float(wrong) == pytest.approx(CERTAIN_MISTAKE_AT_0, rel=1e-6)  # held at the clip: large but finite
    assert np.all(np.isfinite(right_grad)) and np.all(np.isfinite(wrong_grad))


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_sigmoid_then_binary_cross_entropy_extreme_logits(scale):
    z = jnp.array([[scale], [-scale]], jnp.float32)
    right, right_grad = _loss_and_grad(jaxnn.binary_cross_entropy, z, jnp.array([[1.0], [0.0]]), jaxnn.sigmoid)
    wrong, wrong_grad = _loss_and_grad(jaxnn.binary_cross_entropy, z, jnp.array([[0.0], [1.0]]), jaxnn.sigmoid)
    assert 0.0 <= float(right) < 1e-6
    assert float(wrong) == pytest.approx((CERTAIN_MISTAKE_AT_0 + CERTAIN_MISTAKE_AT_1) / 2, rel=1e-6)
    assert np.all(np.isfinite(right_grad)) and np.all(np.isfinite(wrong_grad))


# ---------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_shape_mismatch_names_both_shapes(name):
    with pytest.raises(ValueError, match=rf"{name}: predictions have shape \(4, 3\) but targets have shape \(4, 2\)"):
        LOSSES[name](jnp.ones((4, 3)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match=r"predictions have shape \(4,\) but targets have shape \(4, 1\)"):
        LOSSES[name].forward(jnp.ones(4), jnp.ones((4, 1)))
    with pytest.raises(ValueError, match=r"must be \(n_samples, n_outputs\)"):
        LOSSES[name](jnp.ones((2, 2, 2)), jnp.ones((2, 2, 2)))


def test_wrong_weight_shape():
    with pytest.raises(ValueError, match=r"sample weights have shape \(3,\), expected \(4,\) — one weight per sample"):
        jaxnn.mean_squared_error(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones(3))


def test_get_loss():
    assert jaxnn.get_loss("mean_squared_error") is jaxnn.mean_squared_error
    assert jaxnn.get_loss(jaxnn.sum_of_squares) is jaxnn.sum_of_squares
    with pytest.raises(ValueError, match=r"unknown loss 'mse'; choose one of: ") as error:
        jaxnn.get_loss("mse")
    for name in LOSSES:
        assert name in str(error.value)
    with pytest.raises(TypeError, match=r"loss must be a name .* or a Loss, got function"):
        jaxnn.get_loss(lambda p, y: 0.0)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_integer_predictions_are_not_truncating_float_targets(name):
    """Integer predictions used to pull the targets down to int32 (0.9 → 0) and return an int loss."""
    pred = np.array([[0, 1], [1, 0]])
    target = np.array([[0.1, 0.9], [0.7, 0.3]])
    expected = LOSSES[name](pred.astype(np.float32), target)
    for integers in (pred, jnp.asarray(pred), pred.tolist()):
        value = LOSSES[name](integers, target)
        assert value.dtype == jnp.float32
        assert float(value) == float(expected)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_non_numeric_and_complex_input_is_a_type_error(name):
    loss = LOSSES[name]
    with pytest.raises(TypeError, match=rf"{name}: predictions must be real numbers, got dtype complex64"):
        loss(jnp.ones((2, 2), jnp.complex64), jnp.ones((2, 2)))
    with pytest.raises(TypeError, match=rf"{name}: targets must be real numbers, got dtype <U1"):
        loss(jnp.ones((2, 1)), np.array([["a"], ["b"]]))
    with pytest.raises(TypeError, match=rf"{name}: targets must be real numbers, got dtype object"):
        loss(jnp.ones((2, 1)), None)
    with pytest.raises(TypeError, match=rf"{name}: sample weights must be real numbers"):
        loss(jnp.ones((2, 1)), jnp.ones((2, 1)), ["heavy", "light"])


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_empty_input_is_refused_instead_of_nan(name):
    with pytest.raises(ValueError, match=rf"{name}: predictions and targets of shape \(0, 3\) hold no values"):
        LOSSES[name](jnp.ones((0, 3)), jnp.ones((0, 3)))
    with pytest.raises(ValueError, match=r"of shape \(2, 0\) hold no values"):
        LOSSES[name].forward(jnp.ones((2, 0)), jnp.ones((2, 0)))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_that_are_negative_or_not_finite_are_refused(name):
    pred, target = loss_inputs(name, np.random.default_rng(1), 3, 2, jnp.float32)
    loss = LOSSES[name]
    for weight in ([1.0, -1.0, 1.0], [1.0, np.nan, 1.0], [np.inf, 1.0, 1.0]):
        with pytest.raises(ValueError, match=rf"{name}: sample weights must be finite and non-negative"):
            loss(pred, target, np.asarray(weight))
    zeros = jnp.zeros(3)
    if loss.reduction == "mean":
        with pytest.raises(ValueError, match=r"sample weights sum to 0, so the weighted mean is undefined"):
            loss(pred, target, zeros)
    else:
        assert float(loss(pred, target, zeros)) == 0.0
    # Inside jit the values are unknown; the training loop masks all-zero batches itself.
    assert jnp.isfinite(jax.jit(loss)(pred, target, jnp.ones(3)))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_whose_sum_or_values_the_dtype_cannot_hold_are_refused_not_a_nan_mean(name):
    """Called directly, a mean loss divides by Σw in the predictions' dtype: a float32 sum past its largest number
    was infinite, and weights all below its smallest normal number were flushed to 0 (0/0): a NaN, silently.  Both
    are refused saying to rescale, and the rescaled weights give the same mean as weights of 1 would (all equal)."""
    pred, target = loss_inputs(name, np.random.default_rng(2), 3, 2, jnp.float32)
    loss = LOSSES[name]
    huge, tiny = np.full(3, 2e38), np.array([1e-45, 0.0, 1e-44])
    if loss.reduction == "sum":  # no division: nothing to refuse
        assert float(loss(pred, target, tiny)) == 0.0
        return
    with jax.enable_x64(False):  # the unchecked mean, as it came out before
        assert np.isnan(float(loss.op(pred, target, jnp.asarray(huge, jnp.float32))))
        assert np.isnan(float(loss.op(pred, target, jnp.asarray(tiny, jnp.float32))))
    with pytest.raises(
        ValueError,
        match=rf"{name}'s weight sums to 5\.99999\d*e\+38, beyond float32's range .*predictions' dtype.*towards 1",
    ):
        loss(pred, target, huge)
    with pytest.raises(
        ValueError,
        match=rf"{name}'s weight is [\d.]+e-45, below float32's smallest normal .*0/0; multiply .* towards 1",
    ):
        loss(pred, target, tiny)
    np.testing.assert_allclose(loss(pred, target, huge / huge.max()), loss(pred, target), rtol=1e-6)
    assert np.isfinite(float(loss(pred, target, np.array([1e-40, 1.0, 1.0]))))  # a subnormal beside normal ones


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_are_judged_as_given_and_in_the_type_xla_adds_them_in(name):
    """The checks read the weights before their cast to the predictions' dtype: a finite weight beyond float32's
    range was called "NaN or infinity" and positive weights that round to 0 "sum to 0"; now each says to rescale.
    float16 numbers are added in float32, so 9,000 weights of 1 are a valid float16 mean (they were refused by a
    bound with float16's epsilon); and the weighted sums are divided in float32 before their one rounding to
    float16, so weights or a row count whose sum float16 cannot hold give the mean too (the sum was rounded to
    float16 first: infinite, and the mean NaN, so they were refused)."""
    loss = LOSSES[name]
    pred, target = loss_inputs(name, np.random.default_rng(3), 3, 2, jnp.float32)
    with pytest.raises(ValueError, match=rf"{name}'s weight has values beyond float32's range .*towards 1"):
        loss(pred, target, np.array([1e39, 1.0, 1.0]))
    if loss.reduction == "mean":
        zeros = rf"{name}'s weight rounds to all zeros in float32, .* 0/0: multiply .* towards 1"
        with pytest.raises(ValueError, match=zeros):
            loss(pred, target, np.full(3, 1e-50))
    pred16, target16 = (jnp.tile(a.astype(jnp.float16), (3000, 1)) for a in (pred, target))  # 9,000 rows
    assert float(loss(pred16, target16, np.ones(pred16.shape[0]))) == float(loss(pred16, target16))
    if loss.reduction == "mean":
        mean = float(loss(pred16, target16))
        assert float(loss(pred16, target16, np.full(pred16.shape[0], 8.0))) == mean  # weights summing to 72,000
        many, many_targets = jnp.tile(pred16, (8, 1)), jnp.tile(target16, (8, 1))  # 72,000 rows
        assert float(loss(many, many_targets)) == pytest.approx(mean, rel=2e-3)  # the same rows: the same mean


# ---------------------------------------------------------------------------------------------
# The facts each loss states, checked against what it computes.


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_a_loss_on_logits_is_its_output_activation_followed_by_a_loss_on_probabilities(name):
    """``from_logits`` and ``output_activation`` are true: the fused loss of z equals the same task's loss on
    probabilities applied to ``output_activation(z)`` (a loss not on logits has a partner too, or none)."""
    loss = jaxnn.get_loss(name)
    assert loss.task in ("regression", "binary", "categorical")
    assert loss.output_activation in ("identity", "sigmoid", "softmax", "exp")
    assert loss.last_layer_activation == ("identity" if loss.from_logits else loss.output_activation)
    if not loss.from_logits:
        return
    partners = [
        other
        for other in LOSSES.values()
        if other.task == loss.task and other.output_activation == loss.output_activation and not other.from_logits
    ]
    assert partners, f"{name} takes logits but no loss on {loss.output_activation} probabilities pairs with it"
    with jax.enable_x64(True):
        z, target = loss_inputs(name, np.random.default_rng(4), 6, 3, jnp.float64)
        probabilities = jaxnn.get_activation(loss.output_activation).forward(jnp.asarray(z, jnp.float64))
        for partner in partners:
            np.testing.assert_allclose(loss(z, target), partner(probabilities, target), rtol=1e-6)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_binary_cross_entropy", "softmax_cross_entropy"])
@pytest.mark.parametrize("bad", [2.0, -1.0])
def test_targets_outside_zero_one_are_refused_by_the_binary_and_categorical_losses(name, bad):
    """Outside [0, 1] such a loss has no minimum: it was computed (-4.07 after three L-BFGS steps on y = 2)."""
    target = np.array([[0.0, 1.0], [1.0, bad]])
    with pytest.raises(ValueError, match=rf"{name}: targets must lie in \[0, 1\].*one_hot"):
        jaxnn.get_loss(name)(np.full((2, 2), 0.5), target)


@pytest.mark.parametrize(
    "name, pred, fused",
    [
        ("binary_cross_entropy", [[3.0], [-2.0]], "sigmoid_binary_cross_entropy"),  # logits: loss ~1e-7, gradient 0
        ("binary_cross_entropy", [[1.5], [0.5]], "sigmoid_binary_cross_entropy"),
        ("categorical_cross_entropy", [[-3.0], [2.0]], "softmax_cross_entropy"),
    ],
)
def test_a_loss_on_probabilities_refuses_predictions_that_cannot_be_probabilities(name, pred, fused):
    pred = np.asarray(pred)
    target = np.ones_like(pred) if name == "categorical_cross_entropy" else np.array([[1.0], [0.0]])
    with pytest.raises(ValueError, match=rf"{name}: predictions must be .*pass raw scores \(logits\) to '{fused}'"):
        jaxnn.get_loss(name)(pred, target)
    jaxnn.get_loss(name)(np.clip(np.abs(pred), 0, 1), target)  # probabilities pass


def test_categorical_cross_entropy_refuses_a_row_of_zeros():
    # the row has no normalisation: its loss and gradient were NaN, silently
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"a row of predictions is all zeros.*'softmax_cross_entropy'"):
        jaxnn.get_loss("categorical_cross_entropy")(np.array([[0.0, 0.0], [0.5, 0.5]]), target)
    assert np.isfinite(jaxnn.get_loss("categorical_cross_entropy")(np.array([[0.0, 1e-30], [0.5, 0.5]]), target))


@pytest.mark.parametrize(
    "row, dtype",
    [
        ([1e-45, 0.0], np.float32),
        ([2.9e-39, 0.0], np.float32),
        ([6.14e-6, 6.14e-6], np.float16),
        ([1e-39, 0.0], "bf16"),
    ],
    ids=["float32-smallest", "float32-subnormal", "float16-exp-underflow", "bfloat16-subnormal"],
)
def test_categorical_cross_entropy_refuses_a_row_that_xla_reads_as_zeros(row, dtype):
    # XLA flushes subnormal numbers to 0, so such a row was 0/0 there (NaN, or -0.0 for the float16 row of
    # exp(-12)s against [1, 0], whose loss is log 2) while NumPy's sum of it was not 0
    dtype = jnp.bfloat16 if dtype == "bf16" else dtype
    pred, target = jnp.asarray([row, [0.5, 0.5]], dtype), jnp.asarray([[1.0, 0.0], [0.0, 1.0]], dtype)
    with pytest.raises(ValueError, match=r"a row of predictions is all zeros \(or below .*smallest normal number"):
        jaxnn.get_loss("categorical_cross_entropy")(pred, target)
    smallest = jnp.finfo(dtype).tiny
    assert np.isfinite(float(jaxnn.get_loss("categorical_cross_entropy")(pred.at[0, 0].set(smallest), target)))


def test_a_refusal_names_the_range_of_the_numbers_beside_a_nan():
    with pytest.raises(ValueError, match=r"got values from -5 to 2;"):
        jaxnn.get_loss("half_poisson_deviance")(np.array([[-5.0], [np.nan], [2.0]]), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"got values from -1 to 0.5;"):
        jaxnn.get_loss("categorical_cross_entropy")(np.array([[-1.0, np.nan], [0.5, 0.5]]), np.eye(2))


@pytest.mark.parametrize("count", [0.0, 2.0])
def test_half_poisson_deviance_refuses_a_negative_mean_and_takes_a_zero_one(count):
    # at a zero count the deviance of a mean of -5 was -5 (no minimum to train towards), elsewhere NaN
    loss = jaxnn.get_loss("half_poisson_deviance")
    with pytest.raises(ValueError, match=r"predictions must be non-negative means.*from -5 to 1.*'poisson'"):
        loss(np.array([[-5.0], [1.0]]), np.array([[count], [1.0]]))
    at_zero = float(loss(np.array([[0.0]]), np.array([[count]])))  # where an exp layer underflows
    assert at_zero == (0.0 if count == 0 else np.inf)


def test_fit_and_lbfgs_check_the_targets_against_the_loss():
    from jaxnn import lbfgs

    model = jaxnn.Sequential((jaxnn.Dense(2),))
    params = model.init(jax.random.key(0), 2)
    x = np.ones((3, 2), np.float32)
    for loss, y, match in [
        ("sigmoid_binary_cross_entropy", np.full((3, 2), 2.0), r"targets must lie in \[0, 1\]"),
        ("poisson", np.full((3, 2), -1.0), "targets must be non-negative"),
    ]:
        with pytest.raises(ValueError, match=match):
            jaxnn.fit(model, params, x, y, loss=loss, epochs=1)
        with pytest.raises(ValueError, match=match):
            lbfgs.minimize(model, params, x, y, loss=loss, max_iter=1)


@pytest.mark.parametrize(
    "loss, y, match",
    # each trained silently: a 0 loss that never moved, or a softmax asked for two classes at once (a single column
    # of 0/1 labels meets the refusal of a categorical loss over one unit first: test_train.py)
    [
        ("categorical_cross_entropy", np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), r"a row sums to 0; one-hot"),
        ("softmax_cross_entropy", np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), r"sums to 2; .*several labels"),
    ],
)
def test_fit_and_lbfgs_refuse_categorical_targets_whose_rows_are_not_one_class(loss, y, match):
    from jaxnn import lbfgs

    last = "softmax" if loss == "categorical_cross_entropy" else "identity"
    model = jaxnn.Sequential((jaxnn.Dense(y.shape[1], last),))
    params = model.init(jax.random.key(0), 2)
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    with pytest.raises(ValueError, match=rf"{loss}: each target row must be one class .*{match}"):
        jaxnn.fit(model, params, x, y, loss=loss, epochs=1)
    with pytest.raises(ValueError, match=rf"{loss}: each target row must be one class .*{match}"):
        lbfgs.minimize(model, params, x, y, loss=loss, max_iter=1)
    if y.shape[1] == 2:  # distributions over the classes train, as one-hot rows do
        soft = np.array([[0.3, 0.7], [1.0, 0.0], [0.5, 0.5]], np.float32)
        assert np.isfinite(jaxnn.fit(model, params, x, soft, loss=loss, epochs=1).history).all()


def test_make_loss_and_make_op_refuse_what_would_fail_only_later():
    """make_loss took non-callables (failing at the first call); a name that is not a string failed in Python's
    own "__name__ must be set to a string object"."""
    with pytest.raises(TypeError, match="make_loss needs two callables"):
        jaxnn.make_loss("x", 3, 4, task="regression", output_activation="identity")
    with pytest.raises(TypeError, match="name must be a non-empty string, got None"):
        jaxnn.make_loss(None, lambda p, y: p, lambda p, y: (p, y), task="regression", output_activation="identity")
    with pytest.raises(TypeError, match=r"name must be a non-empty string .*got 3"):
        jaxnn.make_op(lambda x: x, lambda g, y, x: (g,), name=3)
