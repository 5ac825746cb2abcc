"""``jaxnn._builds.FallbackJit``: the first build this XLA accepts runs; a refused option drops its build."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import xla_accepts

import jaxnn
from jaxnn import _builds, engine, layers
from jaxnn._builds import FallbackJit

UNKNOWN = {"xla_no_such_option_here": True}  # no XLA has it: compiling with it is refused


@pytest.fixture(autouse=True)
def no_option_refused_yet(monkeypatch):
    """Each test starts as a process whose XLA has refused nothing yet (the record is the process's)."""
    monkeypatch.setattr(_builds, "_refused_options", frozenset())


def _polynomial(x, power):
    return jnp.sum(x**power + 3 * x)


def test_the_first_accepted_build_runs_and_a_refused_one_is_dropped_for_good():
    x = np.linspace(-1.0, 1.0, 7, dtype=np.float32)
    program = FallbackJit(_polynomial, [UNKNOWN, {"xla_backend_optimization_level": 0}, None], static_argnums=1)
    assert program.builds_left == 3
    assert float(program(x, 3)) == pytest.approx(float(np.sum(x**3 + 3 * x)), rel=1e-6)
    assert program.builds_left == 2  # the unknown option's build is gone; the next one ran
    program(x, 2)
    assert program.builds_left == 2


def test_an_option_refused_once_is_skipped_untried_by_every_build_that_names_it():
    """XLA refuses an option for every program alike, and a try traces and lowers the whole program first: so after
    one refusal every FallbackJit skips the builds naming that option without compiling them (but a build list left
    with that build alone still tries it, and raises XLA's refusal)."""
    x = np.linspace(-1.0, 1.0, 7, dtype=np.float32)
    FallbackJit(_polynomial, [UNKNOWN, None], static_argnums=1)(x, 3)
    assert _builds._refused_options == {"xla_no_such_option_here"}

    unoptimised = {"xla_backend_optimization_level": 0}
    other = FallbackJit(_polynomial, [{**UNKNOWN, **unoptimised}, unoptimised, None], static_argnums=1)
    tried, jit = [], other._jit
    other._jit = lambda options: tried.append(options) or jit(options)
    assert float(other(x, 3)) == pytest.approx(float(np.sum(x**3 + 3 * x)), rel=1e-6)
    assert tried == [unoptimised] and other.builds == (unoptimised, None)

    with pytest.raises(jax.errors.JaxRuntimeError, match="No such compile option: 'xla_no_such_option_here'"):
        FallbackJit(_polynomial, [UNKNOWN], static_argnums=1)(x, 3)


def test_other_errors_and_a_last_refused_build_are_raised():
    with pytest.raises(Exception, match="compile option"):
        FallbackJit(_polynomial, [UNKNOWN], static_argnums=1)(np.ones(3, np.float32), 2)
    with pytest.raises(ValueError, match="Non-hashable static arguments"):  # not a refused option: raised as it is
        FallbackJit(_polynomial, [None], static_argnums=1)(np.ones(3, np.float32), [2])
    with pytest.raises(ValueError, match="at least one build"):
        FallbackJit(_polynomial, [])


def test_threads_refused_at_once_drop_the_refused_build_only_and_run_the_next():
    """Two threads compile the first build at the same time and are both refused: each runs the next build (before,
    the second one raised XLA's "No such compile option", or with three builds dropped the good second one too)."""
    for builds, left in (([UNKNOWN, None], 1), ([UNKNOWN, {"xla_backend_optimization_level": 0}, None], 2)):
        program, barrier = FallbackJit(_polynomial, builds, static_argnums=1), threading.Barrier(2)

        def jit_refused_together(options, jit=program._jit, barrier=barrier):
            jitted = jit(options)
            if options is not UNKNOWN:
                return jitted

            def refused_together(*args):
                try:
                    return jitted(*args)
                finally:
                    barrier.wait(timeout=10)  # both threads have been refused before either drops the build

            return refused_together

        program._jit = jit_refused_together
        results, x = [None, None], np.linspace(0.0, 1.0, 7, dtype=np.float32)

        def run(i, program=program, results=results, x=x):
            try:
                results[i] = float(program(x, 3))
            except Exception as error:
                results[i] = error

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [pytest.approx(float(np.sum(x**3 + 3 * x)), rel=1e-6)] * 2, results
        assert program.builds_left == left


OPTION_SETS = {
    "FAST_COMPILE_CPU": (_builds.FAST_COMPILE_CPU, _builds.FAST_COMPILE_CPU_BUILDS),
    "UNOPTIMISED": (_builds.UNOPTIMISED, _builds.UNOPTIMISED_BUILDS),
    "QUICK_BUILD": (_builds.QUICK_BUILD, _builds.QUICK_BUILDS),
}


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_each_named_option_set_is_accepted_by_this_xla_or_falls_back(name):
    options, builds = OPTION_SETS[name]
    assert builds[0] is options and builds[-1] is None  # most wanted first, the plain build last
    with pytest.raises(TypeError):
        options["xla_cpu_use_fusion_emitters"] = True  # shared: read-only
    x = np.linspace(0.5, 2.0, 7, dtype=np.float32)
    try:
        accepted = float(jax.jit(_polynomial, static_argnums=1, compiler_options=dict(options))(x, 3))
    except jax.errors.JaxRuntimeError as error:  # an XLA without the option: FallbackJit must move on
        assert "compile option" in str(error)
        accepted = None
    program = FallbackJit(_polynomial, builds, static_argnums=1)
    result = float(program(x, 3))
    assert result == pytest.approx(float(np.sum(x**3 + 3 * x)), rel=1e-6)
    if accepted is not None:  # this XLA knows the options: their build ran, and nothing was dropped
        assert program.builds == builds and result == accepted
    else:
        assert program.builds_left < len(builds)


def test_model_inits_programs_go_through_fallback_jit_with_the_unoptimised_builds():
    for program in (layers._draw_parameters_compiled, layers._draw_many_compiled):
        assert isinstance(program, FallbackJit)
        assert program.builds[-1] is None and _builds.UNOPTIMISED in program.builds
    model = layers.Sequential((layers.Dense(3, "relu"), layers.Dense(2)))
    params = model.init(jax.random.key(0), 4)
    assert [tuple(p["W"].shape) for p in params] == [(4, 3), (3, 2)]


def test_lbfgs_fast_build_uses_the_named_cpu_option_set():
    """Its builds are FAST_COMPILE_CPU's list, less what this XLA refused if an L-BFGS run came first (jaxlib 0.11 and
    later have no ``xla_cpu_use_fusion_emitters``)."""
    from jaxnn import lbfgs

    fast, builds = lbfgs._fast_build, _builds.FAST_COMPILE_CPU_BUILDS
    assert builds[0] is _builds.FAST_COMPILE_CPU and fast.builds == builds[len(builds) - fast.builds_left :]
    if xla_accepts(_builds.FAST_COMPILE_CPU):
        assert fast.builds == builds


# --------------------------------------------------------------------------------------------------
# The programs jaxnn holds: at most HELD_PROGRAMS_LIMIT (+ the one that went beyond it).


def _network(width: int):
    model = jaxnn.Sequential([jaxnn.Dense(width, "tanh"), jaxnn.Dense(1, "identity")])
    return model, model.init(jax.random.key(0), 3)


def _fit(width: int):
    model, params = _network(width)
    x = np.linspace(-1.0, 1.0, 24, dtype=np.float32).reshape(8, 3)
    y = x.sum(axis=1, keepdims=True)
    return jaxnn.fit(model, params, x, y, loss="mean_squared_error", epochs=3, learning_rate=0.1)


@pytest.fixture
def released():
    """jaxnn holds no program when the test starts, and none of the test's when it ends."""
    _builds.release_programs()
    yield
    _builds.release_programs()


def test_programs_beyond_the_limit_are_released_and_compiled_again_with_the_same_results(monkeypatch, released):
    first = _fit(2)
    traced = engine.compiled_programs()
    _fit(2)
    assert engine.compiled_programs() == traced  # held: refitting compiles nothing
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", 4)
    for width in range(3, 12):
        _fit(width)
        assert _builds.held_programs() <= 4
    traced = engine.compiled_programs()
    again = _fit(2)
    assert engine.compiled_programs() == traced + 1  # pushed out by the others: compiled again
    jax.tree.map(np.testing.assert_array_equal, again.params, first.params)
    np.testing.assert_array_equal(again.history, first.history)


def test_networks_used_in_turn_within_the_limit_compile_once(monkeypatch, released):
    """The least recently used go first: folds × architectures in turn (a search) reuse every program while
    the architectures fit in the limit, and compile only the one pushed out when they do not."""
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", 12)
    widths = range(3, 7)
    for width in widths:
        _fit(width)
    traced = engine.compiled_programs()
    for _ in range(2):
        for width in widths:
            _fit(width)
    assert engine.compiled_programs() == traced


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="counts the process's memory regions (Linux)")
def test_released_programs_give_their_memory_back(released):
    """What the limit is for: XLA's CPU backend maps each program's code into memory regions of its own, and a
    release unmaps them (Linux allows a process a fixed number of regions)."""

    def regions() -> int:
        return len(Path("/proc/self/maps").read_text().splitlines())

    for width in range(20, 26):
        _fit(width)
    gc.collect()
    before = regions()
    _builds.release_programs()
    gc.collect()
    assert before - regions() >= 6 * 50  # about 150 a training loop on XLA:CPU today


def test_a_held_function_called_inside_another_that_pushes_it_out_still_gives_its_result(monkeypatch, released):
    """With room for one program, the inner function's call (while the outer one is traced) pushes the outer one
    out of the set: the running trace finishes, and the next call compiles it again."""
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", 1)
    inner = FallbackJit(_polynomial, _builds.PLAIN_BUILDS, static_argnums=1)
    outer = FallbackJit(lambda x: inner(x, 2) + 1.0, _builds.PLAIN_BUILDS)
    x = np.linspace(-1.0, 1.0, 5, dtype=np.float32)
    expected = float(np.sum(x**2 + 3 * x)) + 1.0
    for _ in range(2):
        assert float(outer(x)) == pytest.approx(expected, rel=1e-6)
        assert _builds.held_programs() == 1


def test_runs_under_disable_jit_compile_nothing_and_hold_nothing(monkeypatch, released):
    _fit(2)
    held = _builds.held_programs()
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", held)  # one static key more would push one out
    with jax.disable_jit():  # a new network: were anything held, it would push one out
        _fit(3)
    assert _builds.held_programs() == held
    traced = engine.compiled_programs()
    _fit(2)
    assert engine.compiled_programs() == traced  # nothing was pushed out


def test_the_step_factorys_programs_are_held_with_the_others(monkeypatch, released):
    """A step made by ``make_train_step`` compiles into the same set: one key per model, loss and optimiser,
    released and compiled again with the same numbers, and pushed out by other networks' beyond the limit."""
    model, params = _network(2)
    x = np.linspace(-1.0, 1.0, 24, dtype=np.float32).reshape(8, 3)
    y = x.sum(axis=1, keepdims=True)
    optimizer = optax.sgd(0.1)
    held = _builds.held_programs()
    step = jaxnn.make_train_step(model, "mean_squared_error", optimizer)
    first = step(params, optimizer.init(params), x, y)
    assert _builds.held_programs() == held + 1
    step(params, optimizer.init(params), x, y)
    jaxnn.make_train_step(model, "mean_squared_error", optimizer)(params, optimizer.init(params), x, y)
    assert _builds.held_programs() == held + 1  # the same program for every step of that model
    _builds.release_programs()
    again = step(params, optimizer.init(params), x, y)
    assert _builds.held_programs() == 1
    jax.tree.map(np.testing.assert_array_equal, again, first)
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", 3)
    for width in range(3, 8):
        other_model, other_params = _network(width)
        jaxnn.make_train_step(other_model, "mean_squared_error", optimizer)(
            other_params, optimizer.init(other_params), x, y
        )
        assert _builds.held_programs() <= 3


def test_prediction_programs_are_held_with_the_others(monkeypatch, released):
    """The estimators' prediction keeps its programs in the same set, a key for each network, dtype and row bucket
    (one network meets many buckets: a key each keeps the limit a bound on programs): reused while held,
    compiled again (with the same predictions) once released."""
    from jaxnn.estimators import NeuralNetRegressor
    from jaxnn.sklearn import prediction

    compiled_rows = []
    compile_program = prediction._compiled
    monkeypatch.setattr(prediction, "_compiled", lambda *args: compiled_rows.append(args[2]) or compile_program(*args))
    X = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(10, 3)
    estimator = NeuralNetRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, X.sum(axis=1))
    held = _builds.held_programs()
    one_row = estimator.predict(X[:1])
    estimator.predict(X[:5])
    estimator.predict(X[1:2])
    assert compiled_rows == [1, 8] and _builds.held_programs() == held + 2
    estimator.predict(X[:1].astype(np.float64))
    assert compiled_rows == [1, 8, 1] and _builds.held_programs() == held + 3  # and a key per dtype
    _builds.release_programs()
    np.testing.assert_array_equal(estimator.predict(X[:1]), one_row)
    assert compiled_rows == [1, 8, 1, 1] and _builds.held_programs() == 1


def test_each_data_size_of_a_network_is_a_key_so_the_limit_bounds_programs(monkeypatch, released):
    """One network fitted to many data sizes (a learning curve, data that grows) compiles a loop per padded size:
    each is a key of its own, so the limit bounds them as it bounds networks."""
    model, params = _network(2)

    def fit_rows(n):
        x = np.linspace(-1.0, 1.0, 3 * n, dtype=np.float32).reshape(n, 3)
        y = x.sum(axis=1, keepdims=True)  # minibatches of 4 rows: the same loop settings whatever the rows
        options = {"loss": "mean_squared_error", "epochs": 2, "batch_size": 4, "key": jax.random.key(1)}
        return jaxnn.fit(model, params, x, y, **options)

    fit_rows(8)
    held = _builds.held_programs()
    fit_rows(40)  # another padded size: the loop (and what else depends on the rows) under keys of their own
    assert _builds.held_programs() > held
    monkeypatch.setattr(_builds, "HELD_PROGRAMS_LIMIT", 3)
    for n in (100, 300, 1000, 3000):
        fit_rows(n)
        assert _builds.held_programs() <= 3
