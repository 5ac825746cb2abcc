"""Full-batch L-BFGS (``jaxnn.lbfgs``): its gradient, its recursion, the strong Wolfe steps, the minimum
it reaches against scipy's L-BFGS-B, the stopping counters, compile-once and determinism."""

from __future__ import annotations

import functools
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from cli_support import environment
from helpers import ATOL, RTOL, assert_trees_close, assert_trees_equal, xla_accepts
from jax.experimental.compilation_cache.compilation_cache import reset_cache
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import jaxnn
from jaxnn import NeuralNetClassifier, NeuralNetRegressor, compile_cache, engine, lbfgs, line_search
from jaxnn._builds import FAST_COMPILE_CPU, FallbackJit
from jaxnn.data import one_hot
from jaxnn.engine import decide_layout

# 30 iris rows (10 per class), standardised; a 4-5-3 tanh network with the fused softmax cross-entropy.
_IRIS_X, _IRIS_LABELS = load_iris(return_X_y=True)
_ROWS = np.r_[0:10, 50:60, 100:110]
IRIS_X = (_IRIS_X[_ROWS] - _IRIS_X[_ROWS].mean(0)) / _IRIS_X[_ROWS].std(0)
IRIS_Y = one_hot(_IRIS_LABELS[_ROWS], 3).astype(float)
CLASSIFIER = jaxnn.Sequential((jaxnn.Dense(5, "tanh", init="glorot"), jaxnn.Dense(3, "identity", init="glorot")))
SOFTMAX_CE = jaxnn.get_loss("softmax_cross_entropy")

# A small regression: 30 rows, 3 features, a smooth target; a 3-5-1 tanh network with the mean squared error.
_RNG = np.random.default_rng(0)
REG_X = _RNG.normal(size=(30, 3))
REG_Y = (np.sin(REG_X[:, 0]) + REG_X[:, 1] * REG_X[:, 2])[:, None]
REG_W = _RNG.uniform(0.5, 2.0, size=30)  # non-uniform sample weights
REGRESSOR = jaxnn.Sequential((jaxnn.Dense(5, "tanh", init="glorot"), jaxnn.Dense(1, "identity", init="glorot")))
MSE = jaxnn.get_loss("mean_squared_error")

PROBLEMS = {
    "classification": (CLASSIFIER, SOFTMAX_CE, IRIS_X, IRIS_Y, np.ones(30), 1e-2),
    "regression": (REGRESSOR, MSE, REG_X, REG_Y, REG_W, 0.3),
}


def _start(model, n_features, dtype=np.float64, seed=0):
    with jax.enable_x64(dtype == np.float64):
        return jax.tree.map(np.array, model.init(jax.random.key(seed), n_features, dtype))


def _flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(layer[name])) for layer in params for name in ("W", "b")])


def _unflat(theta, like):
    params, start = [], 0
    for layer in like:
        w_size, b_size = layer["W"].size, layer["b"].size
        params.append(
            {
                "W": theta[start : start + w_size].reshape(layer["W"].shape),
                "b": theta[start + w_size : start + w_size + b_size],
            }
        )
        start += w_size + b_size
    return params


def _plain_objective(model, loss, x, y, weight, alpha):
    """The same objective written independently: plain forwards (JAX autodiff only) and the penalty."""

    def objective(params):
        data = loss.forward(model.apply(params, x, custom_rules=False), y, weight)
        return data + alpha / (2 * jnp.sum(weight)) * sum(jnp.sum(layer["W"] ** 2) for layer in params)

    return objective


def _minimize(name, dtype=np.float64, **options):
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    params = _start(model, x.shape[1], dtype)
    with jax.enable_x64(dtype == np.float64):
        return lbfgs.minimize(
            model, params, x.astype(dtype), y.astype(dtype), loss=loss, weight=weight, alpha=alpha, **options
        )


@functools.cache
def _plain_value_and_grad(name):
    """The plain objective's compiled value and flat gradient on a flat θ (float64), one per problem."""
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    start = _start(model, x.shape[1])
    objective = _plain_objective(model, loss, x, y, weight, alpha)
    with jax.enable_x64(True):
        return jax.jit(lambda theta: jax.value_and_grad(objective)(_unflat(theta, start)))


def _scipy(name, *, gtol=1e-5, ftol=lbfgs.FTOL, max_iter=15000, max_fun=15000):
    """scipy's L-BFGS-B on the plain objective from the same start, in float64."""
    model, _, x, *_ = PROBLEMS[name]
    value_and_grad = _plain_value_and_grad(name)

    def fun(theta):
        with jax.enable_x64(True):
            value, grads = value_and_grad(theta)
        return float(value), _flat(grads)

    options = {"gtol": gtol, "ftol": ftol, "maxiter": max_iter, "maxfun": max_fun}
    return scipy.optimize.minimize(fun, _flat(_start(model, x.shape[1])), jac=True, method="L-BFGS-B", options=options)


# --------------------------------------------------------------------------------------------------
# (a) The gradient the loop uses is the gradient of the objective.


@pytest.mark.parametrize(
    ("name", "dtype", "layout"),
    [
        ("classification", np.float64, "columns"),
        ("classification", np.float32, "columns"),
        ("regression", np.float64, "columns"),
        ("regression", np.float32, "rows"),
    ],
)
def test_loss_and_gradient_equal_autodiff_of_the_plain_objective(name, dtype, layout):
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    params = _start(model, x.shape[1], dtype, seed=3)
    spec = lbfgs.LbfgsSpec(model, loss, layout=layout)
    x, y, weight = x.astype(dtype), y.astype(dtype), weight.astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        value, grads = jax.jit(lbfgs.loss_and_gradient, static_argnums=0)(spec, params, x, y, weight, alpha=alpha)
        plain = _plain_objective(model, loss, x, y, weight, alpha)
        expected_value, expected = jax.jit(jax.value_and_grad(plain))(params)
    rtol, atol = (1e-5, 1e-12) if dtype == np.float64 else (1e-5, 1e-6)
    np.testing.assert_allclose(value, expected_value, rtol=rtol)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("name", "layout"), [("classification", "columns"), ("regression", "rows")])
def test_loss_and_gradient_agree_with_finite_differences(name, layout):
    """The objective's gradient (the hand-written rules plus the penalty's ``(alpha/Σw)·W``) as a backward rule
    of its own value: against ``jax.vjp`` and float64 central differences (``jaxnn.check_vjp``)."""
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    params = _start(model, x.shape[1], np.float64, seed=3)
    spec = lbfgs.LbfgsSpec(model, loss, layout=layout)
    with jax.enable_x64(True):
        theta = jnp.asarray(_flat(params))

        def objective(theta):
            return lbfgs.loss_and_gradient(spec, _unflat(theta, params), x, y, weight, alpha=alpha)[0]

        def objective_vjp(cotangent, theta):
            _, grads = lbfgs.loss_and_gradient(spec, _unflat(theta, params), x, y, weight, alpha=alpha)
            return (cotangent * jnp.concatenate([jnp.ravel(layer[k]) for layer in grads for k in ("W", "b")]),)

        jaxnn.check_vjp(objective, objective_vjp, theta)


# --------------------------------------------------------------------------------------------------
# The two-loop recursion and the memory.


def _bfgs_inverse(pairs, gamma, n):
    """H of the BFGS inverse update applied to H⁰ = γI pair by pair, oldest first: H ← VᵀHV + ρssᵀ."""
    h = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


@pytest.mark.parametrize("n_pairs", [0, 1, 4, 13])
def test_two_loop_recursion_is_the_bfgs_inverse_hessian_of_the_last_pairs(n_pairs):
    n, m = 6, 5
    rng = np.random.default_rng(n_pairs)
    a = rng.normal(size=(n, n))
    hessian = a @ a.T + n * np.eye(n)  # y = A s for a positive definite A: sᵀy > 0
    pairs = [(s, hessian @ s) for s in rng.normal(size=(n_pairs, n))]
    with jax.enable_x64(True):
        memory = lbfgs.Memory(
            s=np.zeros((m, n)), y=np.zeros((m, n)), rho=np.zeros(m), gamma=np.asarray(1.0), count=np.int32(0)
        )
        for s, y in pairs:
            memory = lbfgs.remember(memory, jnp.asarray(s), jnp.asarray(y), jnp.asarray(s @ y))
        grad = rng.normal(size=n)
        got = np.asarray(lbfgs.two_loop(jnp.asarray(grad), memory))
    kept = pairs[-m:]
    gamma = kept[-1][0] @ kept[-1][1] / (kept[-1][1] @ kept[-1][1]) if kept else 1.0
    assert int(memory.count) == len(kept)
    np.testing.assert_allclose(got, _bfgs_inverse(kept, gamma, n) @ grad, rtol=1e-10)


# --------------------------------------------------------------------------------------------------
# (b) Every step satisfies the strong Wolfe conditions.


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_iteration_satisfies_sufficient_decrease_and_curvature(name):
    """Iterate k is the result of max_iter=k (the run is deterministic), so consecutive results are the
    ends of one line search: θ_k − θ_{k−1} = t·d."""
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    spec = lbfgs.LbfgsSpec(model, loss)
    iterates = [_start(model, x.shape[1])] + [_minimize(name, max_iter=k).params for k in range(1, 16)]
    evaluate = jax.jit(lbfgs.loss_and_gradient, static_argnums=0)
    with jax.enable_x64(True):
        evaluated = [evaluate(spec, p, x, y, weight, alpha=alpha) for p in iterates]
    for k in range(1, len(iterates)):
        (f_old, g_old), (f_new, g_new) = evaluated[k - 1], evaluated[k]
        step = _flat(iterates[k]) - _flat(iterates[k - 1])
        slope_old, slope_new = _flat(g_old) @ step, _flat(g_new) @ step
        assert slope_old < 0, f"iteration {k}: not a descent direction"
        assert float(f_new) <= float(f_old) + line_search.SUFFICIENT_DECREASE * slope_old, f"iteration {k}: Armijo"
        assert abs(slope_new) <= line_search.CURVATURE * abs(slope_old), f"iteration {k}: curvature"


# --------------------------------------------------------------------------------------------------
# (c) It reaches a minimum, as scipy's L-BFGS-B does from the same start.


@pytest.mark.parametrize("name", PROBLEMS)
def test_reaches_a_minimum_at_least_as_low_as_scipy(name):
    """ftol=0: both stop on the gradient test alone."""
    ours = _minimize(name, gtol=1e-6, ftol=0.0, max_iter=3000)
    reference = _scipy(name, gtol=1e-6, ftol=0.0, max_iter=3000)
    assert ours.status == lbfgs.Status.CONVERGED_GRADIENT and reference.status == 0, (ours.status, reference.message)
    assert ours.grad_max <= 1e-6
    assert ours.loss <= reference.fun + 1e-9
    assert np.all(np.diff(ours.loss_curve) <= 0) and ours.loss_curve[-1] == ours.loss
    assert np.all(np.isfinite(_flat(ours.params)))


def test_follows_scipys_iterations_in_float64():
    """Same algorithm, same constants: the first iterations' losses agree with scipy's to rounding."""
    ours = _minimize("classification", max_iter=10)
    reference = _scipy("classification", max_iter=10)
    np.testing.assert_allclose(ours.loss, reference.fun, rtol=1e-9)
    np.testing.assert_allclose(_flat(ours.params), reference.x, rtol=1e-6, atol=1e-9)
    assert (ours.n_iter, ours.n_fun) == (reference.nit, reference.nfev)


# --------------------------------------------------------------------------------------------------
# (d) The stopping counters mean what scipy's mean.


def test_max_iter_stops_after_that_many_iterations():
    result = _minimize("classification", max_iter=3)
    assert result.n_iter == 3 and result.status == lbfgs.Status.MAX_ITER and len(result.loss_curve) == 3
    message = lbfgs.convergence_message(result, max_iter=3)
    assert message.startswith("lbfgs failed to converge after 3 iteration(s) (status=1):\n")
    assert "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT" in message and "(max_iter=3)" in message


@pytest.mark.parametrize("max_fun", [1, 5, 12])
def test_max_fun_counts_evaluations_as_scipy_does(max_fun):
    """scipy checks the count between iterations only, so it stops at the first iteration that ends with
    more than max_fun evaluations (the first evaluation counts)."""
    result = _minimize("regression", max_fun=max_fun)
    reference = _scipy("regression", max_fun=max_fun)
    assert result.status == lbfgs.Status.MAX_FUN and reference.status == 1
    assert (result.n_iter, result.n_fun) == (reference.nit, reference.nfev)
    assert result.n_fun > max_fun and len(result.loss_curve) == result.n_iter
    assert "EVALUATIONS EXCEEDS LIMIT" in lbfgs.convergence_message(result, max_iter=15000)


POISSON = jaxnn.make_loss(
    "poisson",
    lambda p, y: jnp.sum(jnp.exp(p) - y * p, axis=1),
    lambda p, y: (jnp.exp(p) - y, -p),
    task="regression",
    output_activation="identity",
)


def test_a_start_whose_loss_is_not_finite_stops_at_once_with_the_start_returned():
    """Finite weights whose loss overflows (exp of 1000 in float32) end at once; NaN weights are refused, as
    ``fit`` refuses them (they were run and returned as the "always finite" params)."""
    model = jaxnn.Sequential((jaxnn.Dense(1),))
    params = [{"W": np.full((1, 1), 100.0, np.float32), "b": np.zeros(1, np.float32)}]
    x, y = np.full((4, 1), 10.0, np.float32), np.ones((4, 1), np.float32)
    result = lbfgs.minimize(model, params, x, y, loss=POISSON)
    assert result.status == lbfgs.Status.NON_FINITE and result.diverged and result.n_iter == 0
    assert result.n_fun == 1
    np.testing.assert_array_equal(_flat(result.params), _flat(params))
    params[0]["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params contain NaN or infinity, which training cannot repair"):
        lbfgs.minimize(model, params, x, y, loss=POISSON)


def test_a_trial_step_that_overflows_is_shortened_not_taken():
    """A Poisson loss exp(p) − y·p in float32 on inputs of scale 100: the first trial (a unit step along −g)
    overflows exp to inf; the search halves the step until the values are finite and goes on from there."""
    rng = np.random.default_rng(1)
    x = (100 * rng.normal(size=(20, 2))).astype(np.float32)
    y = np.exp(x @ np.array([[0.004], [-0.003]], np.float32)).astype(np.float32)
    model = jaxnn.Sequential((jaxnn.Dense(1, "identity"),))
    params = [{"W": np.zeros((2, 1), np.float32), "b": np.zeros(1, np.float32)}]
    evaluate = jax.jit(lbfgs.loss_and_gradient, static_argnums=0)
    spec = lbfgs.LbfgsSpec(model, POISSON)
    start_value, start_grad = evaluate(spec, params, x, y)
    unit_step = _unflat(_flat(params) - _flat(start_grad) / np.linalg.norm(_flat(start_grad)), params)
    assert np.isfinite(start_value) and not np.isfinite(evaluate(spec, unit_step, x, y)[0])  # the premise

    result = lbfgs.minimize(model, params, x, y, loss=POISSON, max_iter=30)
    assert result.status != lbfgs.Status.NON_FINITE and result.n_iter >= 5
    assert result.loss < float(start_value) and np.all(np.diff(result.loss_curve) <= 0)
    np.testing.assert_allclose(_flat(result.params), [0.004, -0.003, 0.0], atol=1e-4)  # the weights behind y


def test_checks_its_arguments():
    model, loss, x, y, *_ = PROBLEMS["classification"]
    params = _start(model, x.shape[1])
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match="max_iter must be a positive integer"):
            lbfgs.minimize(model, params, x, y, loss=loss, max_iter=0)
        with pytest.raises(ValueError, match="gtol must be a finite number >= 0"):
            lbfgs.minimize(model, params, x, y, loss=loss, gtol=-1.0)
        with pytest.raises(ValueError, match="y must have shape"):
            lbfgs.minimize(model, params, x, y[:, :2], loss=loss)
        labels = np.argmax(y, axis=1)  # named by the shape given, not the (30, 1) column it is read as
        with pytest.raises(ValueError, match=r"got \(30,\) \(class labels\? one-hot encode them: jaxnn.data.one_hot"):
            lbfgs.minimize(model, params, x, labels, loss=loss)
        with pytest.raises(ValueError, match="weight must be 30 finite"):
            lbfgs.minimize(model, params, x, y, loss=loss, weight=np.zeros(30))


# --------------------------------------------------------------------------------------------------
# (e) Compiled once; (f) deterministic.


def test_new_max_iter_alpha_or_tolerances_compile_nothing_and_chunks_change_no_bit():
    model, loss, x, y, weight, alpha = PROBLEMS["regression"]
    params = _start(model, x.shape[1])
    spec = lbfgs.LbfgsSpec(model, loss, layout=decide_layout(None, model))
    arrays = {"params": params, "x": x, "y": y, "weight": weight}
    with jax.enable_x64(True):
        whole = lbfgs.run(spec, **arrays, alpha=alpha, max_iter=23)
        before = lbfgs.compiled_programs()
        for max_iter, new_alpha, gtol in ((7, 0.5, 1e-3), (40, 0.0, 1e-9), (2, 1e-6, 0.0)):
            lbfgs.run(spec, **arrays, alpha=new_alpha, max_iter=max_iter, gtol=gtol, max_fun=100)
        assert lbfgs.compiled_programs() == before
        chunked = lbfgs.run(spec._replace(chunk=5), **arrays, alpha=alpha, max_iter=23)  # five calls, one program
        assert lbfgs.compiled_programs() == before + 1
    assert chunked.n_iter == whole.n_iter == 23 and chunked.n_fun == whole.n_fun
    assert_trees_equal(chunked.params, whole.params)
    np.testing.assert_array_equal(chunked.loss_curve, whole.loss_curve)


def _run_classification(dtype, **spec_options):
    model, loss, x, y, weight, alpha = PROBLEMS["classification"]
    spec = lbfgs.LbfgsSpec(model, loss, layout=decide_layout(None, model), **spec_options)
    arrays = {"x": x.astype(dtype), "y": y.astype(dtype), "weight": weight.astype(dtype)}
    with jax.enable_x64(dtype == np.float64):
        return lbfgs.run(spec, params=_start(model, x.shape[1], dtype), **arrays, alpha=alpha, max_iter=40)


def _assert_same_run(got, want):
    def summary(result):
        return result.loss, result.grad_max, result.n_iter, result.n_fun, result.status

    assert_trees_equal(got.params, want.params)
    np.testing.assert_array_equal(got.loss_curve, want.loss_curve)
    assert summary(got) == summary(want)


def assert_the_fast_compile_build_runs_the_same_minimisation(dtype) -> None:
    before = lbfgs.compiled_programs()
    fast, plain = _run_classification(dtype, fast_compile=True), _run_classification(dtype, fast_compile=False)
    # One program per build at most (fewer if compiled before).  An XLA that refuses the fast build's option (jaxlib
    # 0.12's) runs the plain build in its place, traced once more for the try it refused.
    assert lbfgs.compiled_programs() <= before + (2 if xla_accepts(FAST_COMPILE_CPU) else 3)
    assert fast.n_iter == 40
    assert (fast.n_iter, fast.n_fun, fast.status) == (plain.n_iter, plain.n_fun, plain.status)
    rtol, atol = RTOL[np.dtype(dtype)], ATOL[np.dtype(dtype)]
    assert_trees_close(fast.params, plain.params, rtol, atol, what="fast build vs plain build")
    np.testing.assert_allclose(fast.loss_curve, plain.loss_curve, rtol=rtol, atol=atol)


def test_the_fast_compile_build_runs_the_same_minimisation():
    """The program built for a short compile and the plain build: the same iterations, evaluations and status, and
    the same weights and loss curve to the dtype's rounding, float32 and float64.  Not bit for bit: XLA's elemental
    emitter fuses a reduction with what feeds it otherwise than the fusion emitters, and a softmax cross-entropy's
    weighted mean can come out one ulp apart (measured on this problem: float32 weights up to 1.4e-6 apart after 40
    iterations, float64's loss curve one ulp).

    Compared in a fresh process with XLA's default options: this suite compiles every program with the emitter of
    the fast build (tests/conftest.py), which would make the two builds one."""
    script = "import numpy, test_lbfgs\nfor dtype in numpy.float32, numpy.float64:\n"
    script += "    test_lbfgs.assert_the_fast_compile_build_runs_the_same_minimisation(dtype)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent, env=environment(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_by_default_the_build_follows_the_persistent_compilation_cache(tmp_path, monkeypatch):
    """fast_compile=None: the short compile without a persistent cache, the plain build when programs are kept
    on disk (compiled once for every later process).  A 20-row problem: shapes no other test compiles.  Where XLA
    refuses the short compile's option (jaxlib 0.12) the fast build is a plain one, and the first run may trace it
    once more for the try XLA refused (once a process: jaxnn._builds skips the option after that)."""
    model, loss, x, y, weight, alpha = PROBLEMS["regression"]
    spec = lbfgs.LbfgsSpec(model, loss, layout=decide_layout(None, model))
    arrays = {"params": _start(model, x.shape[1]), "x": x[:20], "y": y[:20], "weight": weight[:20]}

    def programs_compiled(**spec_options):
        before = lbfgs.compiled_programs()
        with jax.enable_x64(True):
            lbfgs.run(spec._replace(**spec_options), **arrays, alpha=alpha, max_iter=5)
        return lbfgs.compiled_programs() - before

    monkeypatch.setenv("JAXNN_COMPILE_CACHE", "1")
    enabled = jax.config.jax_enable_compilation_cache  # an earlier test in this process may have turned it on
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        first_run = programs_compiled()
        assert programs_compiled(fast_compile=True) == 0  # no cache: the fast build
        assert first_run == 1 or (first_run == 2 and not xla_accepts(FAST_COMPILE_CPU))
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
    # jaxnn never switches its cache off again (compile_cache: once per process); this test puts JAX back itself.
    names = ("jax_compilation_cache_dir", "jax_compilation_cache_max_size")
    names += ("jax_persistent_cache_min_compile_time_secs", "jax_enable_compilation_cache")
    saved = {name: getattr(jax.config, name) for name in names}
    try:
        compile_cache.enable(tmp_path)
        assert programs_compiled() == 1 and programs_compiled(fast_compile=False) == 0
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        reset_cache()


def test_an_xla_that_refuses_the_fast_compile_options_gets_the_plain_build(monkeypatch):
    """An XLA without the fast-compile options (another jaxlib) refuses them when compiling: the run goes on
    with the plain build, and later runs skip the refused one."""
    refusing = FallbackJit(lbfgs._chunk, [{"xla_no_such_option_here": True}, None], static_argnames="spec")
    monkeypatch.setattr(lbfgs, "_fast_build", refusing)
    result = _run_classification(np.float64, fast_compile=True)
    assert refusing.builds_left == 1
    _assert_same_run(result, _run_classification(np.float64, fast_compile=False))


def test_the_callback_sees_each_chunk_and_can_stop_the_run_where_it_is():
    """scipy's convention: the callback gets the result so far between compiled calls (here every 7
    iterations) and changes nothing; StopIteration ends the run with status STOPPED at that point, with
    the iterate a run of that many iterations reaches."""
    whole = _minimize("classification", max_iter=40)
    seen = []
    watched = _minimize("classification", max_iter=40, chunk=7, callback=seen.append)
    _assert_same_run(watched, whole)
    assert [r.n_iter for r in seen] == [7, 14, 21, 28, 35] and {r.status for r in seen} == {lbfgs.Status.RUNNING}
    np.testing.assert_array_equal(seen[-1].loss_curve, whole.loss_curve[:35])

    def stop_at_the_second_call(result):
        if result.n_iter >= 14:
            raise StopIteration

    stopped = _minimize("classification", max_iter=40, chunk=7, callback=stop_at_the_second_call)
    assert (stopped.status, stopped.n_iter, stopped.status.scipy_status) == (lbfgs.Status.STOPPED, 14, 99)
    assert_trees_equal(stopped.params, _minimize("classification", max_iter=14).params)
    with pytest.raises(TypeError, match="callback must be callable"):
        _minimize("classification", callback=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_start_gives_the_same_bits(dtype):
    first, second = _minimize("classification", dtype, max_iter=40), _minimize("classification", dtype, max_iter=40)
    assert np.asarray(first.params[0]["W"]).dtype == dtype and first.loss_curve.dtype == dtype
    assert_trees_equal(first.params, second.params)
    np.testing.assert_array_equal(first.loss_curve, second.loss_curve)
    assert (first.n_iter, first.n_fun, first.status) == (second.n_iter, second.n_fun, second.status)
    assert first.loss_curve[-1] < 0.5 * first.loss_curve[0]


# --------------------------------------------------------------------------------------------------
# (g) The state: a minimisation split into calls is the uninterrupted one.


def _run_problem(name, dtype, **options):
    """lbfgs.run on a problem (in ``dtype``, chunks of 7 iterations): from its start, or from ``state=``."""
    model, loss, x, y, weight, alpha = PROBLEMS[name]
    spec = lbfgs.LbfgsSpec(model, loss, layout=decide_layout(None, model), chunk=7)
    arrays = {"x": x.astype(dtype), "y": y.astype(dtype), "weight": weight.astype(dtype)}
    if "state" not in options:
        options["params"] = _start(model, x.shape[1], dtype)
    with jax.enable_x64(dtype == np.float64):
        return lbfgs.run(spec, **arrays, alpha=alpha, **options)


def _assert_same_state(got: lbfgs.LbfgsState, want: lbfgs.LbfgsState):
    assert type(got) is lbfgs.LbfgsState and jax.tree.structure(got) == jax.tree.structure(want)
    for got_leaf, want_leaf in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert np.asarray(got_leaf).dtype == np.asarray(want_leaf).dtype
        np.testing.assert_array_equal(np.asarray(got_leaf), np.asarray(want_leaf))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["classification", "regression"])
def test_a_minimisation_continued_from_its_state_ends_with_the_bits_of_the_uninterrupted_one(name, dtype):
    """max_iter 13, then on to 30 in pieces of 5 (pause_after), then on to 40: the counts go on, max_iter is
    the total, and every leaf of the state (parameters, gradient, memory, counts) is the uninterrupted run's."""
    whole = _run_problem(name, dtype, max_iter=40)
    before = lbfgs.compiled_programs()
    first = _run_problem(name, dtype, max_iter=13)
    assert (first.status, first.n_iter, len(first.loss_curve)) == (lbfgs.Status.MAX_ITER, 13, 13)
    parts, state = [first], first.state
    while int(state.n_iter) < 30:
        part = _run_problem(name, dtype, state=state, max_iter=30, pause_after=5)
        assert len(part.loss_curve) == part.n_iter - int(state.n_iter) <= 5
        parts.append(part)
        state = part.state
    assert [p.status for p in parts] == [lbfgs.Status.MAX_ITER] + [lbfgs.Status.RUNNING] * 3 + [lbfgs.Status.MAX_ITER]
    last = _run_problem(name, dtype, state=state, max_iter=40)
    assert lbfgs.compiled_programs() == before  # continuing compiles nothing
    assert (last.status, last.n_iter, last.n_fun) == (whole.status, 40, whole.n_fun)
    _assert_same_state(last.state, whole.state)
    assert_trees_equal(last.params, whole.params)
    np.testing.assert_array_equal(np.concatenate([p.loss_curve for p in [*parts, last]]), whole.loss_curve)
    assert (last.loss, last.grad_max) == (whole.loss, whole.grad_max)
    assert int(whole.state.memory.count) == lbfgs.MEMORY  # the memory was full: it was carried, not rebuilt


def test_a_state_stopped_on_a_limit_where_the_minimisation_converged_ends_converged():
    """scipy tests the limits first: a run cut at the iteration where it converges says MAX_ITER; continued
    under a larger max_iter it ends there as the uninterrupted run does, with no further iteration."""
    whole = _run_problem("classification", np.float64, gtol=1e-3)
    assert whole.status in (lbfgs.Status.CONVERGED_GRADIENT, lbfgs.Status.CONVERGED_REDUCTION)
    cut = _run_problem("classification", np.float64, gtol=1e-3, max_iter=whole.n_iter)
    assert (cut.status, cut.n_iter) == (lbfgs.Status.MAX_ITER, whole.n_iter)
    went_on = _run_problem("classification", np.float64, gtol=1e-3, state=cut.state, max_iter=whole.n_iter + 50)
    assert (went_on.status, went_on.n_iter, len(went_on.loss_curve)) == (whole.status, whole.n_iter, 0)
    _assert_same_state(went_on.state, whole.state)
    again = _run_problem("classification", np.float64, gtol=1e-3, state=went_on.state, max_iter=15000)
    assert (again.status, again.n_iter, again.n_fun) == (whole.status, whole.n_iter, whole.n_fun)  # it stays ended
    same_limit = _run_problem(
        "classification",
        np.float64,
        state=_run_problem("classification", np.float64, max_iter=9, pause_after=4).state,
        max_iter=4,
    )
    assert (same_limit.status, same_limit.n_iter, len(same_limit.loss_curve)) == (lbfgs.Status.MAX_ITER, 4, 0)


@pytest.mark.parametrize("max_fun", [5, 12])
def test_max_fun_is_the_total_of_every_call(max_fun):
    """A minimisation stopped on a small max_fun goes on under a larger one to where a single call stops."""
    whole = _run_problem("regression", np.float64, max_fun=max_fun + 20)
    cut = _run_problem("regression", np.float64, max_fun=max_fun)
    assert cut.status == lbfgs.Status.MAX_FUN and cut.n_fun > max_fun
    went_on = _run_problem("regression", np.float64, state=cut.state, max_fun=max_fun + 20)
    assert (went_on.status, went_on.n_iter, went_on.n_fun) == (whole.status, whole.n_iter, whole.n_fun)
    _assert_same_state(went_on.state, whole.state)


def test_a_run_stopped_by_its_callback_continues_from_its_state():
    def stop_at_the_second_call(result):
        if result.n_iter >= 14:
            raise StopIteration

    whole = _run_problem("classification", np.float64, max_iter=40)
    stopped = _run_problem("classification", np.float64, max_iter=40, callback=stop_at_the_second_call)
    assert stopped.status == lbfgs.Status.STOPPED and stopped.state.status == lbfgs.Status.RUNNING
    went_on = _run_problem("classification", np.float64, state=stopped.state, max_iter=40)
    _assert_same_state(went_on.state, whole.state)


def test_a_fresh_state_and_the_start_of_run():
    model, _, x, *_ = PROBLEMS["regression"]
    params = _start(model, x.shape[1], np.float32)
    state = lbfgs.initial_state(params)
    assert state.theta.dtype == np.float32 and state.memory.s.shape == (lbfgs.MEMORY, state.theta.size)
    assert (int(state.n_iter), int(state.n_fun), state.status) == (0, 0, lbfgs.Status.RUNNING)
    assert np.isnan(state.value) and not state.grad.any() and int(state.memory.count) == 0
    _assert_same_state(
        _run_problem("regression", np.float32, state=state, max_iter=9).state,
        _run_problem("regression", np.float32, max_iter=9).state,
    )
    for options in ({}, {"params": params, "state": state}):
        with pytest.raises(TypeError, match="pass one of them"):
            lbfgs.run(lbfgs.LbfgsSpec(model, MSE), x=x, y=REG_Y, weight=REG_W, **options)


def test_the_engine_counts_the_lbfgs_programs_with_the_training_loops():
    before, before_lbfgs = engine.compiled_programs(), lbfgs.compiled_programs()
    _run_classification(np.float32, chunk=13)  # a chunk length no other test uses: one new program
    assert lbfgs.compiled_programs() == before_lbfgs + 1 and engine.compiled_programs() == before + 1


# --------------------------------------------------------------------------------------------------
# Through the estimators: solver='lbfgs' as scikit-learn's MLP has it.


def _iris_split():
    x_train, x_test, y_train, y_test = train_test_split(_IRIS_X, _IRIS_LABELS, stratify=_IRIS_LABELS, random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


@pytest.fixture(scope="module")
def iris_fits():
    """jaxnn's and scikit-learn's L-BFGS classifiers on standardised iris (same hidden sizes and max_iter)."""
    x_train, x_test, y_train, y_test = _iris_split()
    settings = {"hidden_layer_sizes": (10,), "solver": "lbfgs", "random_state": 0, "max_iter": 200}
    ours = NeuralNetClassifier(**settings).fit(x_train, y_train)
    with threadpool_limits(limits=1, user_api="blas"):  # OpenBLAS's threads only slow these tiny products
        theirs = MLPClassifier(**settings).fit(x_train, y_train)
    return ours, theirs, x_test, y_test


def test_estimator_accuracy_is_close_to_scikit_learns_lbfgs(iris_fits):
    ours, theirs, x_test, y_test = iris_fits
    assert ours.score(x_test, y_test) >= theirs.score(x_test, y_test) - 1 / len(y_test)  # one mistake more at most


def _result_types(net) -> set:
    """The types of ``loss_``, ``best_loss_`` and ``loss_curve_``'s values: np.float64 alone, as after sgd or adam."""
    return {type(net.loss_), type(net.best_loss_), *map(type, net.loss_curve_)}


def test_estimator_attributes_after_lbfgs(iris_fits):
    ours, _, x_test, _ = iris_fits
    assert 1 <= ours.n_iter_ < 200 and len(ours.loss_curve_) == ours.n_iter_
    assert _result_types(ours) == {np.float64}
    assert ours.loss_ == ours.loss_curve_[-1] == ours.best_loss_ == min(ours.loss_curve_)
    assert ours.t_ == 0 and ours.validation_scores_ is None and ours.best_validation_score_ is None
    assert ours.coefs_[0].shape == (4, 10) and ours.coefs_[0].dtype == np.float64
    np.testing.assert_allclose(ours.predict_proba(x_test).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("alpha", "weight", "message"),
    [
        (1e39, 1.0, r"alpha has values beyond float32's range"),
        (1e37, 1e-30, r"alpha over the sample weights' sum \(1e\+37 / [\d.]+e-28\) has values beyond float32's range"),
    ],
)
def test_estimator_lbfgs_refuses_an_alpha_x_dtype_cannot_hold_naming_it(alpha, weight, message):
    """The objective takes alpha in X's dtype and divides it by Σw there: beyond float32 it ended the minimisation at
    its start with "not finite at the starting weights" and the advice to standardise X."""
    x_train, _, y_train, _ = _iris_split()
    estimator = NeuralNetClassifier((3,), solver="lbfgs", alpha=alpha, max_iter=5)
    with pytest.raises(ValueError, match=message + r".*pass a smaller alpha, or pass X as float64"):
        estimator.fit(x_train.astype(np.float32), y_train, sample_weight=np.full(len(y_train), weight))


def test_estimator_lbfgs_has_no_partial_fit_and_ignores_early_stopping():
    x_train, _, y_train, _ = _iris_split()
    estimator = NeuralNetClassifier(
        (10,), solver="lbfgs", random_state=0, max_iter=50, early_stopping=True, learning_rate_init=0.01
    )
    assert not hasattr(estimator, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        estimator.partial_fit(x_train, y_train, classes=[0, 1, 2])
    plain = NeuralNetClassifier((10,), solver="lbfgs", random_state=0, max_iter=50, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x_train, y_train)
        plain.fit(x_train, y_train)
    assert estimator.validation_scores_ is None and estimator.loss_curve_ == plain.loss_curve_


def test_estimator_warns_with_scikit_learns_text_and_compiles_once():
    """max_iter reached: the same ConvergenceWarning text as MLPClassifier's; a new max_iter, alpha or tol
    and a warm start compile no new L-BFGS program."""
    x_train, _, y_train, _ = _iris_split()
    settings = {"hidden_layer_sizes": (10,), "solver": "lbfgs", "random_state": 0, "max_iter": 3}
    with pytest.warns(ConvergenceWarning) as ours:
        estimator = NeuralNetClassifier(**settings).fit(x_train, y_train)
    with pytest.warns(ConvergenceWarning) as theirs, threadpool_limits(limits=1, user_api="blas"):
        MLPClassifier(**settings).fit(x_train, y_train)
    assert str(ours[0].message) == str(theirs[0].message)
    assert ours[0].filename == __file__  # pointed at the caller of fit

    before = lbfgs.compiled_programs()
    first_curve = list(estimator.loss_curve_)
    with pytest.warns(ConvergenceWarning):
        estimator.set_params(warm_start=True, max_iter=4, alpha=1e-3).fit(x_train, y_train)
    assert estimator.n_iter_ == 4 and estimator.loss_curve_[:3] == first_curve and len(estimator.loss_curve_) == 7
    assert estimator.loss_curve_[3] < first_curve[-1]  # continued from the fitted weights
    assert _result_types(estimator) == {np.float64}
    with pytest.warns(ConvergenceWarning, match="EVALUATIONS EXCEEDS LIMIT"):
        NeuralNetClassifier(**settings, max_fun=2, tol=1e-6).set_params(max_iter=100).fit(x_train, y_train)
    assert lbfgs.compiled_programs() == before


def test_regressor_lbfgs_fits_as_well_as_scikit_learns():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, size=(200, 2))
    y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + 0.05 * rng.normal(size=200)
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
    settings = {"hidden_layer_sizes": (20,), "solver": "lbfgs", "random_state": 0, "max_iter": 300}
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = NeuralNetRegressor(**settings).fit(x_train, y_train)
        theirs = MLPRegressor(**settings).fit(x_train, y_train)
    assert ours.score(x_test, y_test) >= theirs.score(x_test, y_test) - 0.02
    assert ours.score(x_test, y_test) > 0.95 and ours.predict(x_test).shape == (50,)
    assert _result_types(ours) == {np.float64}


def test_minimize_refuses_data_without_rows():
    """It failed in a NumPy reshape (a NaN start is reported, not refused: see the test above)."""
    model = jaxnn.Sequential((jaxnn.Dense(3),))
    params = model.init(jax.random.key(0), 2)
    x, y = np.ones((0, 2), np.float32), np.ones((0, 3), np.float32)
    with pytest.raises(ValueError, match="the number of samples in x must be a positive integer, got 0"):
        lbfgs.minimize(model, params, x, y, loss="softmax_cross_entropy")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": 1e300}, r"x has values beyond float32's range"),
        ({"y": 1e300}, r"y has values beyond float32's range"),
        ({"weight": 1e300}, r"weight has values beyond float32's range.*and alpha by the same constant"),
        ({"weight": 1e-40}, r"below float32's smallest normal number.*and alpha by the same constant"),
        ({"weight": 1e38}, r"weight sums to [\d.]+e\+38, beyond float32's range.*and alpha by the same constant"),
    ],
    ids=["x", "y", "weight", "subnormal-weight", "weight-sum"],
)
def test_minimize_refuses_data_that_does_not_fit_the_params_dtype(change, message):
    """Finite in float64, not in the float32 params: the cast gave infinity (or a weight flushed to 0) and a
    minimisation that ended NON_FINITE at its start, with NumPy's overflow warning only; fit refused the same.  The
    advice about weights names alpha: the penalty alpha/(2·Σw)·Σ‖W‖² divides by their sum, so rescaling them alone
    changed the objective."""
    model = jaxnn.Sequential((jaxnn.Dense(3),))
    params = model.init(jax.random.key(0), 2)
    arrays = {"x": np.ones((4, 2)), "y": np.ones((4, 3)), "weight": np.ones(4)}
    arrays |= {name: np.full_like(arrays[name], value) for name, value in change.items()}
    with pytest.raises(ValueError, match=message):
        lbfgs.minimize(model, params, arrays["x"], arrays["y"], loss="mean_squared_error", weight=arrays["weight"])


def test_status_messages_are_scipys_for_the_same_endings():
    """Each ending's message is the one the pinned scipy's L-BFGS-B gives for it (tiny NumPy problems, no compile):
    a failed line search is scipy's ``'ABNORMAL: '`` since its C translation (1.15), not Fortran's old
    ``ABNORMAL_TERMINATION_IN_LNSRCH``, whose wording the other messages no longer follow either."""

    def message(fun, x0, **options):
        return scipy.optimize.minimize(fun, np.asarray(x0, float), jac=True, method="L-BFGS-B", options=options).message

    def rosenbrock(x):
        return scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)

    def uphill(x):  # the gradient's sign flipped: no step along −g lowers f, and the memory is empty
        return float(x @ x), -2 * x

    start = [-1.2, 1.0]
    assert lbfgs.Status.CONVERGED_GRADIENT.message == message(rosenbrock, [1.0, 1.0])
    assert lbfgs.Status.CONVERGED_REDUCTION.message == message(rosenbrock, start)
    assert lbfgs.Status.MAX_ITER.message == message(rosenbrock, start, maxiter=1)
    assert lbfgs.Status.MAX_FUN.message == message(rosenbrock, start, maxfun=1)
    assert lbfgs.Status.LINE_SEARCH_FAILED.message == message(uphill, [1.0, 1.0])


def test_a_finite_minimisation_gives_jax_debug_nans_nothing_to_report():
    """The compiled chunk's loss curve was NaN past the iterations run, and a state stopped at its start kept
    the initial NaN ``previous_value``: JAX's NaN debugger, which checks every compiled program's outputs,
    raised FloatingPointError on every finite minimisation."""
    with jax.debug_nans(True), jax.debug_infs(True):
        result = _minimize("classification", max_iter=3)
        at_start = _minimize("classification", gtol=1e3)
    assert result.n_iter == 3 and np.isfinite(result.loss_curve).all()
    assert_trees_equal(result.params, _minimize("classification", max_iter=3).params)
    assert at_start.n_iter == 0 and np.isfinite(at_start.state.previous_value)


def test_a_float64_minimisation_runs_under_strict_dtype_promotion():
    """The two-loop recursion compared ``arange`` (int64 in 64-bit mode) with the int32 memory count, which
    jax_numpy_dtype_promotion="strict" refuses: every float64 L-BFGS fit raised TypePromotionError."""
    with jax.numpy_dtype_promotion("strict"):
        strict = _minimize("classification", max_iter=3)
    assert_trees_equal(strict.params, _minimize("classification", max_iter=3).params)


def test_an_estimators_lbfgs_fit_is_paced_so_ctrl_c_lands_soon(monkeypatch):
    """Without callbacks too, the estimator's L-BFGS runs in compiled calls of about a second (Python sees a
    KeyboardInterrupt only between them), not one call of up to 1,024 full-batch iterations."""
    paces = []
    real = lbfgs.run

    def spy(*args, pace=None, **kwargs):
        paces.append(pace)
        return real(*args, pace=pace, **kwargs)

    monkeypatch.setattr(lbfgs, "run", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        NeuralNetRegressor((5,), solver="lbfgs", max_iter=5, random_state=0).fit(REG_X, REG_Y[:, 0])
    assert [type(pace) for pace in paces] == [engine.Pace]
