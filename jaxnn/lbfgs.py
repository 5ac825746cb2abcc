"""Full-batch L-BFGS for jaxnn networks: this module minimises a network's training loss over all its
parameters, the whole minimisation in one compiled loop (``solver='lbfgs'``).

**What is minimised.**  For parameters θ (every ``W`` and ``b``), per-sample losses ``l_i``, per-sample
weights ``w_i`` (all 1 by default; 0 masks a padding row out) and ``alpha ≥ 0``::

    L(θ) = Σ_i w_i l_i / Σ_i w_i  +  alpha / (2 Σ_i w_i) · Σ_layers ‖W‖²        (biases not penalised)

— the estimators' full-batch objective and scikit-learn's MLP objective, its gradient from jaxnn's
hand-written backward rules (the training loop's gradient path) plus the penalty's ``(alpha/Σw)·W``.  The data
term is the loss as its reduction computes it: for ``sum_of_squares`` (a sum) ``Σ_i w_i l_i``; the estimators'
losses report another value than their ``l_i`` (``Loss.differentiated``; their squared error with k targets: ``1/k`` of
it), and that reported value is ``L``'s data term, with the gradient of ``l_i``, as MLP hands scipy.  ``alpha`` is
scikit-learn's, not ``jaxnn.fit``'s ``l2`` (whose penalty is ``l2/2 · Σ‖W‖²``): the same objective takes
``alpha = l2 · Σ_i w_i``, as ``jaxnn-train --optimizer lbfgs --l2`` passes it.

**The contract.**  :func:`minimize` (inputs checked) and :func:`run` (arrays as given, for a
:class:`LbfgsSpec`) do what scipy's ``minimize(method='L-BFGS-B', jac=True)`` without bounds does with
``maxiter=max_iter``, ``maxfun=max_fun``, ``gtol`` and ``ftol`` (scikit-learn's ``solver='lbfgs'`` calls it
with ``gtol=tol``): the same directions, line-search trials, update skips, restarts and stopping tests, so
``n_iter``, ``n_fun`` and :class:`Status` mean scipy's ``nit``, ``nfev`` and ``status``/``message``, and in
float64 the trajectory agrees with scipy's to rounding (``tests/test_lbfgs.py``).  The defaults are scipy's
(:data:`MEMORY`, :data:`MAX_ITER`, :data:`MAX_FUN`, :data:`GTOL`, :data:`FTOL`).  Two departures: a trial
whose loss or gradient is not finite is never accepted (the search steps back; the parameters returned are
always finite; starting weights that are not finite are refused, and a start whose loss or gradient is not
finite, or a failed search with an empty memory whose last trial was not, ends with ``NON_FINITE``), and a
line search that can make no more progress keeps its last trial only if it lowers the loss enough (else it
fails, where L-BFGS-B takes it anyway).

**The state, and continuing.**  :class:`LbfgsState` is the whole minimisation between iterations: the
iterate, ``L`` and ``∇L`` there, the ``L`` before the last step (the ``ftol`` test's), the :class:`Memory` of
curvature pairs, the counts and the status, every leaf an array.  :func:`run` starts from ``params`` (a fresh
state, :func:`initial_state`) or from ``state=`` (an earlier result's ``state``) and returns the state it
reached: the counts go on, ``max_iter`` and ``max_fun`` are totals since the fresh start (a state stopped on
them goes on under larger ones, its tests after the last step made again), and ``pause_after`` ends a call
after that many iterations with the minimisation still ``RUNNING``.  On the CPU a minimisation split into
calls ends with the bits of one uninterrupted call (``tests/test_lbfgs.py``); ``jaxnn-train`` checkpoints
the state so that ``--resume`` continues exactly.  A fresh start (the estimators' fits, ``warm_start``
included, start one from their weights) is what it always was.

**Compiled once.**  The program is keyed on :class:`LbfgsSpec` (model, loss, layout) and the shapes and
dtype of the data; ``alpha``, ``max_iter``, ``max_fun``, ``gtol`` and ``ftol`` are runtime values.  It runs
at most ``spec.chunk`` iterations per call (the length of its loss-curve buffer) and :func:`run` calls it
again, carrying the state, until the minimisation stops, so any ``max_iter`` runs the same program, and so
does a continued minimisation.  :func:`jaxnn.engine.compiled_programs` counts its programs with the training
loop's.  float32 and float64 both work (float64 inside ``jax.enable_x64``, as the estimators do); same
start, same bits.  The program comes in two builds (:attr:`LbfgsSpec.fast_compile`): XLA's full build, and one
that compiles faster on CPU and runs slower (``jaxnn._builds.FAST_COMPILE_CPU``; jaxlib 0.11's and later XLAs lack
its option and build the full one), whose fused sums can round differently in the last bit (the same iterations,
results that agree to the dtype's rounding);
by default the short compile unless JAX's persistent compilation cache is on, where the program is compiled
once and loaded by every later process, which gets the faster-running build.  The timings are in
``benchmarks/README.md``.

The derivation (the algorithm step by step, the two-loop recursion, the strong Wolfe conditions and
Moré–Thuente's line search, the exact stopping conditions, the handling of non-finite values, and why this
is not ``optax.lbfgs``) is in ``docs/derivations.md``, §6; the line search itself is :mod:`jaxnn.line_search`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn._builds import FAST_COMPILE_CPU_BUILDS, PLAIN_BUILDS, FallbackJit
from jaxnn._checks import finite_real, full_batch_data, is_int, summing_type
from jaxnn.engine import Pace, RunSpec, decide_layout, forward, run_chunks, tree_where
from jaxnn.layers import Params, Sequential
from jaxnn.line_search import ACCEPTED, MAX_STEP, line_search
from jaxnn.losses import Loss
from jaxnn.train import checked_model_and_loss

__all__ = [
    "CHUNK",
    "FTOL",
    "GTOL",
    "MAX_FUN",
    "MAX_ITER",
    "MEMORY",
    "LbfgsResult",
    "LbfgsSpec",
    "LbfgsState",
    "Memory",
    "Status",
    "compiled_programs",
    "convergence_message",
    "initial_state",
    "loss_and_gradient",
    "minimize",
    "remember",
    "run",
    "two_loop",
]

MEMORY = 10  # pairs kept (scipy's maxcor default, scikit-learn's MLP uses it)
CHUNK = 1024  # iterations per compiled call: the length of one call's loss-curve buffer
MAX_ITER = 15000  # scipy's defaults for maxiter and maxfun (scikit-learn's max_fun default too)
MAX_FUN = 15000
GTOL = 1e-5  # scipy's default gtol; scikit-learn passes its tol (1e-4 by default) here
FTOL = 1e7 * float(np.finfo(np.float64).eps)  # scipy's default ftol = factr·eps = 2.220446049250313e-09


class Status(enum.IntEnum):
    """Why the minimisation stopped (``RUNNING`` only inside the loop)."""

    RUNNING = 0
    CONVERGED_GRADIENT = 1  # max |∂L/∂θ| ≤ gtol
    CONVERGED_REDUCTION = 2  # relative reduction of L ≤ ftol
    MAX_ITER = 3
    MAX_FUN = 4
    LINE_SEARCH_FAILED = 5
    NON_FINITE = 6
    STOPPED = 7  # the callback raised StopIteration

    @property
    def message(self) -> str:
        """scipy's message for the same ending (``OptimizeResult.message``)."""
        return _MESSAGES[self]

    @property
    def scipy_status(self) -> int:
        """scipy's ``OptimizeResult.status``: 0 converged, 1 ``maxiter``/``maxfun`` reached, 99 stopped by the
        callback, 2 otherwise."""
        if self in (Status.CONVERGED_GRADIENT, Status.CONVERGED_REDUCTION):
            return 0
        if self == Status.STOPPED:
            return 99
        return 1 if self in (Status.MAX_ITER, Status.MAX_FUN) else 2


_MESSAGES = {
    Status.RUNNING: "RUNNING",
    Status.CONVERGED_GRADIENT: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    Status.CONVERGED_REDUCTION: "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    Status.MAX_ITER: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    Status.MAX_FUN: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    Status.LINE_SEARCH_FAILED: "ABNORMAL: ",  # scipy >= 1.15 (C); its Fortran said ABNORMAL_TERMINATION_IN_LNSRCH
    Status.NON_FINITE: "ABNORMAL: THE LOSS OR ITS GRADIENT IS NOT FINITE",
    Status.STOPPED: "`callback` raised `StopIteration`.",
}


class LbfgsSpec(NamedTuple):
    """What selects the compiled program (hashable): the network, its loss, the layout of the forward
    pass (see ``jaxnn._loop``), hand-written rules or JAX's autodiff of the plain forwards, the memory
    size, the iterations per compiled call, and the build: ``fast_compile=True`` compiles faster on CPU, runs
    slower, with results that agree to rounding (a fused sum can differ in its last bit); ``False`` the reverse;
    None (the default) is True unless JAX's persistent compilation cache is on (see the module docstring)."""

    model: Sequential
    loss: Loss
    layout: str = "columns"
    custom_rules: bool = True
    memory: int = MEMORY
    chunk: int = CHUNK
    fast_compile: bool | None = None


class LbfgsResult(NamedTuple):
    """What :func:`run` and :func:`minimize` return.  The counts are the minimisation's since its fresh start
    (over every call that continued it); ``loss_curve`` holds this call's iterations."""

    params: Params  # the last accepted parameters (always finite)
    loss: float  # L at params, penalty included (scipy's ``fun``)
    loss_curve: np.ndarray  # L after each iteration of this call (all n_iter of them from a fresh start)
    grad_max: float  # max |∂L/∂θ| at params
    n_iter: int  # iterations (accepted line searches), scipy's ``nit``
    n_fun: int  # evaluations of L and ∇L, the first included, scipy's ``nfev``
    status: Status
    state: LbfgsState  # where the minimisation is: ``run(..., state=result.state)`` continues it

    @property
    def converged(self) -> bool:
        return self.status.scipy_status == 0

    @property
    def diverged(self) -> bool:
        return self.status == Status.NON_FINITE


class Memory(NamedTuple):
    """The last ``m`` curvature pairs, oldest first (slot ``m − 1`` is the newest), and ``γ`` of ``H⁰ = γ I``.
    Only the last ``count`` slots are in use; the others hold zeros."""

    s: jax.Array  # (m, n)
    y: jax.Array  # (m, n)
    rho: jax.Array  # (m,) 1/(sᵀy)
    gamma: jax.Array  # sᵀy / yᵀy of the newest pair; 1 with an empty memory
    count: jax.Array  # int32


class LbfgsState(NamedTuple):
    """The whole minimisation between iterations: what :func:`run` starts from (``state=``) and returns
    (``LbfgsResult.state``), so that a minimisation split into several calls is the uninterrupted one.

    Every leaf is an array (a checkpoint stores them as they are); :func:`initial_state` makes the state
    of a fresh start, nothing evaluated yet (``n_fun == 0``)."""

    theta: jax.Array  # (n,) the parameters, flattened layer by layer as W then b
    value: jax.Array  # L(θ); NaN before the first evaluation
    grad: jax.Array  # (n,) ∇L(θ); zeros before the first evaluation
    previous_value: jax.Array  # L before the last accepted step (the ftol test's L_old); NaN before the first
    # evaluation, then L at the start until the first step
    memory: Memory
    n_iter: jax.Array  # int32, iterations so far (scipy's ``nit``)
    n_fun: jax.Array  # int32, evaluations so far, the first included (scipy's ``nfev``)
    status: jax.Array  # int32, a Status: RUNNING while the minimisation can go on


class _Settings(NamedTuple):
    """The runtime values: none of them selects a compiled program."""

    alpha: jax.Array
    max_iter: jax.Array  # int32
    max_fun: jax.Array  # int32
    gtol: jax.Array
    ftol: jax.Array


# --------------------------------------------------------------------------------------------------
# Parameters as one flat vector (layer by layer, W row-major then b), and the objective on it.


def _layer_shapes(model: Sequential, n_features: int) -> tuple[tuple[int, int], ...]:
    shapes, n_in = [], n_features
    for layer in model.layers:
        shapes.append((n_in, layer.units))
        n_in = layer.units
    return tuple(shapes)


def _flatten_host(params: Params, dtype) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(layer[name], dtype)) for layer in params for name in ("W", "b")])


def _flatten(params: Params) -> jax.Array:
    return jnp.concatenate([jnp.ravel(layer[name]) for layer in params for name in ("W", "b")])


def _unflatten(theta, shapes) -> Params:
    params, start = [], 0
    for n_in, n_out in shapes:
        w_end = start + n_in * n_out
        params.append({"W": theta[start:w_end].reshape(n_in, n_out), "b": theta[w_end : w_end + n_out]})
        start = w_end + n_out
    return params


def _weight_mask(shapes, dtype) -> jax.Array:
    """1 where θ holds a weight, 0 where it holds a bias: the penalty's ``Σ‖W‖²`` is ``Σ mask·θ²``."""
    parts = [part for n_in, n_out in shapes for part in (jnp.ones(n_in * n_out, dtype), jnp.zeros(n_out, dtype))]
    return jnp.concatenate(parts)


def _objective(spec: LbfgsSpec, shapes, x, y, weight, alpha, theta):
    """``(L(θ), ∇L(θ))``: the data term through the loop's forward pass and the loss with their
    hand-written rules, plus ``(alpha/2Σw)·Σ mask·θ²`` and its gradient ``(alpha/Σw)·mask·θ``."""
    run_spec = RunSpec(
        spec.model, spec.loss, optax.identity(), batch_size=0, layout=spec.layout, custom_rules=spec.custom_rules
    )  # forward reads only the model, layout and rules of a RunSpec
    loss = spec.loss if spec.custom_rules else spec.loss.forward

    def data_loss(params):
        return loss(forward(run_spec, params, x), y, weight)

    value, grads = jax.value_and_grad(data_loss)(_unflatten(theta, shapes))
    wide, mask = summing_type(weight.dtype), _weight_mask(shapes, theta.dtype)  # a float16 Σw is taken in float32
    l2 = (jnp.asarray(alpha).astype(wide) / jnp.sum(weight.astype(wide))).astype(theta.dtype)
    return value + 0.5 * l2 * jnp.sum(mask * theta * theta), _flatten(grads) + l2 * mask * theta


def loss_and_gradient(spec: LbfgsSpec, params: Params, x, y, weight=None, *, alpha=0.0) -> tuple[jax.Array, Params]:
    """``(L, ∂L/∂params)`` exactly as the L-BFGS loop computes them (see the module docstring for ``L``).

    Inputs are used as given (no checks); ``weight`` defaults to ones."""
    x = jnp.asarray(x)
    weight = jnp.ones(x.shape[0], x.dtype) if weight is None else jnp.asarray(weight)
    shapes = _layer_shapes(spec.model, x.shape[1])
    value, grad = _objective(spec, shapes, x, jnp.asarray(y), weight, alpha, _flatten(params))
    return value, _unflatten(grad, shapes)


# --------------------------------------------------------------------------------------------------
# The direction: the two-loop recursion over the memory.


def two_loop(grad: jax.Array, memory: Memory) -> jax.Array:
    """``H·grad`` for the L-BFGS inverse Hessian ``H`` of ``memory`` (derivation: ``docs/derivations.md``, §6.3)."""
    m = memory.s.shape[0]
    # The count's own integer type: under 64-bit mode arange is int64, which jax_numpy_dtype_promotion='strict' refuses.
    pairs = (memory.s, memory.y, memory.rho, jnp.arange(m, dtype=memory.count.dtype) >= m - memory.count)

    def newest_to_oldest(q, pair):
        s, y, rho, in_use = pair
        alpha = jnp.where(in_use, rho * jnp.dot(s, q), 0.0)
        return q - alpha * y, alpha

    def oldest_to_newest(r, pair_and_alpha):
        (s, y, rho, in_use), alpha = pair_and_alpha
        beta = jnp.where(in_use, rho * jnp.dot(y, r), 0.0)
        return r + (alpha - beta) * s, None

    q, alphas = jax.lax.scan(newest_to_oldest, grad, pairs, reverse=True)
    r, _ = jax.lax.scan(oldest_to_newest, memory.gamma * q, (pairs, alphas))
    return r


def _empty_memory(m: int, n: int, dtype) -> Memory:
    return Memory(
        s=np.zeros((m, n), dtype),
        y=np.zeros((m, n), dtype),
        rho=np.zeros(m, dtype),
        gamma=np.asarray(1, dtype),
        count=np.int32(0),
    )


def remember(memory: Memory, s: jax.Array, y: jax.Array, sy: jax.Array) -> Memory:
    """``memory`` with the pair ``(s, y)`` (``sy = sᵀy > 0``) as its newest, the oldest dropped when full;
    ``γ = sᵀy / yᵀy`` (L-BFGS-B's ``1/θ``)."""

    def shift_in(stack, new):
        return jnp.concatenate([stack[1:], new[None]], axis=0)

    return Memory(
        s=shift_in(memory.s, s),
        y=shift_in(memory.y, y),
        rho=shift_in(memory.rho, 1.0 / sy),
        gamma=sy / jnp.dot(y, y),
        count=jnp.minimum(memory.count + 1, memory.s.shape[0]).astype(jnp.int32),
    )


def _cleared(memory: Memory) -> Memory:
    return Memory(
        jnp.zeros_like(memory.s),
        jnp.zeros_like(memory.y),
        jnp.zeros_like(memory.rho),
        jnp.ones_like(memory.gamma),
        jnp.zeros_like(memory.count),
    )


# --------------------------------------------------------------------------------------------------
# One iteration, the compiled chunk of iterations, and the host driver.


def _after_step(settings: _Settings, n_iter, n_fun, gradient_small, old_value, new_value, xp=jnp):
    """The status after an accepted step, scipy's order: the limits, then ``gtol`` (``gradient_small``: max |∂L/∂θ|
    ≤ gtol), then ``ftol``.  Written from the last test to the first, each overriding those below it (nested
    ``where``s compile to less than a ``select``), in ``xp``: ``jnp`` in the loop, NumPy on the host."""
    reduction_small = old_value - new_value <= settings.ftol * xp.maximum(
        xp.maximum(xp.abs(old_value), xp.abs(new_value)), 1.0
    )
    status = xp.where(reduction_small, int(Status.CONVERGED_REDUCTION), int(Status.RUNNING))
    status = xp.where(gradient_small, int(Status.CONVERGED_GRADIENT), status)
    status = xp.where(n_fun > settings.max_fun, int(Status.MAX_FUN), status)
    return xp.where(n_iter >= settings.max_iter, int(Status.MAX_ITER), status)


def _continued_status(settings: _Settings, state: LbfgsState) -> np.int32:
    """The status a state brought to a compiled call goes on with, found on the host before the call.  A state
    that stopped on a limit or paused (``RUNNING``) stands after an accepted step (``n_iter > 0``): the tests
    after it are made again with this call's settings, so a larger ``max_iter`` continues what a smaller one
    stopped, exactly as if it had been given from the start (with the same settings the test gives the same
    status: a no-op).  NumPy's arithmetic in the state's dtype is the loop's, bit for bit."""
    status, n_iter = int(state.status), int(state.n_iter)
    if n_iter > 0 and status in (Status.RUNNING, Status.MAX_ITER, Status.MAX_FUN):
        gradient_small = np.max(np.abs(np.asarray(state.grad))) <= settings.gtol
        values = np.asarray(state.previous_value), np.asarray(state.value)
        status = int(_after_step(settings, n_iter, int(state.n_fun), gradient_small, *values, xp=np))
    return np.int32(status)


def _iteration(objective, settings: _Settings, state: LbfgsState) -> LbfgsState:
    """Direction, line search, memory update and the stopping tests (``docs/derivations.md``, §6.2-§6.5).

    The first pass (nothing evaluated yet) only evaluates ``L`` and ``∇L`` at the start: a line search of
    length 0, so that the objective has one place in the compiled program (a second copy of it lengthened
    the compile; see ``benchmarks/README.md``).  It counts as an evaluation, not as an iteration."""
    start = state.n_fun == 0
    direction = jnp.where(start, jnp.zeros_like(state.grad), -two_loop(state.grad, state.memory))
    slope = jnp.dot(state.grad, direction)
    # The first iteration's step is 1/‖d‖.  Its memory is empty, so d = −g and ‖d‖² = −gᵀd = |slope|: the same
    # sum of the same squares, bit for bit, without a pass over d of its own.
    first_step = jnp.where(
        state.n_iter == 0, jnp.minimum(1.0 / jnp.sqrt(jnp.abs(slope)), MAX_STEP), jnp.ones_like(slope)
    )
    first_step = jnp.where(start, jnp.zeros_like(first_step), first_step)
    search = line_search(objective, state.theta, state.value, state.grad, direction, slope, first_step, start)
    trial, accepted = search.trial, search.outcome == ACCEPTED

    # L-BFGS-B's update rule: s = t·d, y = Δg, sᵀy = t·(φ'(t) − φ'(0)); skipped unless sᵀy > ε·(−t·φ'(0)).
    sy = (trial.slope - slope) * trial.step
    curvature_ok = sy > jnp.finfo(sy.dtype).eps * (-slope * trial.step)
    updated = remember(state.memory, trial.step * direction, trial.grad - state.grad, sy)
    memory = tree_where(accepted & curvature_ok, updated, state.memory)
    memory = tree_where(accepted, memory, _cleared(state.memory))  # a failed search restarts along −g

    n_iter = state.n_iter + (accepted & ~start).astype(jnp.int32)
    n_fun = state.n_fun + search.n_eval
    gradient_small = jnp.max(jnp.abs(trial.grad)) <= settings.gtol
    after_step = _after_step(settings, n_iter, n_fun, gradient_small, state.value, trial.value)
    gave_up = jnp.where(trial.finite, int(Status.LINE_SEARCH_FAILED), int(Status.NON_FINITE))
    after_failure = jnp.where(state.memory.count == 0, gave_up, int(Status.RUNNING))
    at_start = jnp.where(
        ~trial.finite,
        int(Status.NON_FINITE),
        jnp.where(gradient_small, int(Status.CONVERGED_GRADIENT), int(Status.RUNNING)),
    )
    status = jnp.where(start, at_start, jnp.where(accepted, after_step, after_failure))
    kept = tree_where(accepted, (trial.theta, trial.value, trial.grad), (state.theta, state.value, state.grad))
    return LbfgsState(
        theta=kept[0],
        value=kept[1],
        grad=kept[2],
        # At the start, L there: read only after a step (n_iter > 0), and finite where the initial NaN would leave
        # the program of a run that stops at its start (jax_debug_nans).
        previous_value=jnp.where(start, trial.value, jnp.where(accepted, state.value, state.previous_value)),
        memory=memory,
        n_iter=n_iter,
        n_fun=n_fun,
        status=status.astype(jnp.int32),
    )


_TRACES = {"lbfgs_chunk": 0}


def _chunk(spec: LbfgsSpec, state: LbfgsState, x, y, weight, settings: _Settings, stop_iter):
    """Iterations until the minimisation stops or ``n_iter`` reaches ``stop_iter`` (at most ``spec.chunk``
    of them), in one ``lax.while_loop``; a state that was never evaluated is evaluated first (see
    :func:`_iteration`); the caller has given one brought in its :func:`_continued_status`.

    Returns the state, the loss after each iteration of this call (zero-padded to ``spec.chunk``) and the
    parameters in the public layout."""
    _TRACES["lbfgs_chunk"] += 1  # runs while JAX traces a new program, not on a call of a compiled one
    shapes = _layer_shapes(spec.model, x.shape[1])
    objective = partial(_objective, spec, shapes, x, y, weight, settings.alpha)
    start_iter = state.n_iter

    def running(carry):
        state, _ = carry
        return (state.status == int(Status.RUNNING)) & (state.n_iter < stop_iter)

    def one_iteration(carry):
        state, curve = carry
        new = _iteration(objective, settings, state)
        position = jnp.where(new.n_iter > state.n_iter, new.n_iter - start_iter - 1, spec.chunk)
        return new, curve.at[position].set(new.value, mode="drop")

    # Zeros, not NaN, past the iterations run (the host keeps only those): a finite run returns no NaN, so JAX's
    # jax_debug_nans, which checks every compiled program's outputs, stays quiet.
    curve = jnp.zeros(spec.chunk, state.value.dtype)
    state, curve = jax.lax.while_loop(running, one_iteration, (state, curve))
    return state, curve, _unflatten(state.theta, shapes)


# The fast-compile build: XLA:CPU without its fusion emitters (jaxnn._builds.FAST_COMPILE_CPU, ignored by other
# backends); an XLA without the option (jaxlib 0.11, 0.12) refuses it, and runs get the plain build (FallbackJit).
_fast_build = FallbackJit(_chunk, FAST_COMPILE_CPU_BUILDS, static_argnames="spec")
_plain_build = FallbackJit(_chunk, PLAIN_BUILDS, static_argnames="spec")


def _builds_fast(fast_compile: bool | None) -> bool:
    """``fast_compile``, or for None: True unless JAX's persistent compilation cache is on."""
    if fast_compile is not None:
        return bool(fast_compile)
    return not (jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir)


def _run_chunk(spec: LbfgsSpec, *args):
    """One call of the compiled chunk, in the build ``spec.fast_compile`` (a bool here) asks for."""
    return (_fast_build if spec.fast_compile else _plain_build)(spec, *args)


def compiled_programs() -> int:
    """How many L-BFGS programs this process has traced (and so compiled); :func:`jaxnn.engine.compiled_programs`
    counts them with the training loop's."""
    return _TRACES["lbfgs_chunk"]


def initial_state(params: Params, *, dtype=None, memory: int = MEMORY) -> LbfgsState:
    """The state of a fresh minimisation from ``params`` (host arrays in ``dtype``, by default the parameters'):
    nothing evaluated yet, an empty memory of ``memory`` pairs, the counts at 0, status ``RUNNING``."""
    dtype = np.dtype(jax.tree.leaves(params)[0].dtype if dtype is None else dtype)
    theta = _flatten_host(params, dtype)
    return LbfgsState(
        theta=theta,
        value=np.asarray(np.nan, dtype),
        grad=np.zeros_like(theta),
        previous_value=np.asarray(np.nan, dtype),
        memory=_empty_memory(memory, theta.size, dtype),
        n_iter=np.int32(0),
        n_fun=np.int32(0),
        status=np.int32(Status.RUNNING),
    )


def run(
    spec: LbfgsSpec,
    *,
    params: Params | None = None,
    x,
    y,
    weight,
    alpha: float = 0.0,
    max_iter: int = MAX_ITER,
    max_fun: int = MAX_FUN,
    gtol: float = GTOL,
    ftol: float = FTOL,
    callback: Callable[[LbfgsResult], None] | None = None,
    state: LbfgsState | None = None,
    pause_after: int | None = None,
    pace: Pace | None = None,
) -> LbfgsResult:
    """Minimise ``L`` from ``params`` (a fresh start), or go on from ``state`` (``result.state`` of an earlier
    call on the same problem); the arrays are used as given (checked and cast by the caller, all of one
    floating dtype, which the minimisation runs in).

    A continued minimisation is the uninterrupted one: its counts go on, ``max_iter`` and ``max_fun`` are
    totals since the fresh start (a state that stopped on them goes on under larger ones), and on the CPU
    a minimisation split into calls ends with the same bits as one call.  ``pause_after`` (≥ 1) ends this
    call after that many iterations with status ``RUNNING`` when the minimisation would go on (a caller
    that checkpoints takes it in pieces this way, every limit staying the whole minimisation's).

    The compiled program is called once per ``spec.chunk`` iterations (or as many as ``pace`` says, at most
    ``spec.chunk``: no new program); the host reads the status between calls, and passes ``callback`` the
    result so far (status ``RUNNING``) while the minimisation goes on; the callback raising ``StopIteration``
    ends it there with status ``STOPPED`` (scipy's convention; the result's ``state`` is still running and
    continues).  Neither changes the iterates."""
    if (params is None) == (state is None):
        raise TypeError(
            "run starts from params (a fresh minimisation) or from state (an earlier result's): pass one of them"
        )
    dtype = np.dtype(y.dtype)
    spec = spec._replace(fast_compile=_builds_fast(spec.fast_compile))
    if state is None:
        state = initial_state(params, dtype=dtype, memory=spec.memory)
    first = int(state.n_iter)
    end = max_iter if pause_after is None else min(max_iter, first + pause_after)
    end = max(end, first + 1)  # one compiled call at least: a state brought in is tested against this call's limits
    # NumPy scalars of fixed dtypes: a new value is a new input, never a new program.
    settings = _Settings(
        alpha=np.asarray(alpha, dtype),
        max_iter=np.int32(max_iter),
        max_fun=np.int32(max_fun),
        gtol=np.asarray(gtol, dtype),
        ftol=np.asarray(ftol, dtype),
    )

    def advance(carry, first: int, stop: int):
        state = carry[0]._replace(status=_continued_status(settings, carry[0]))
        return _run_chunk(spec, state, x, y, weight, settings, np.int32(stop))

    def finished(carry, stop: int) -> bool:
        return Status(int(carry[0].status)) != Status.RUNNING

    stopped_by_callback = []

    def between(chunks) -> None:
        state, _, params_so_far = chunks[-1][1]
        try:
            callback(_result(state, curves_of(chunks), params_so_far, Status.RUNNING))
        except StopIteration:
            stopped_by_callback.append(True)
            raise

    def curves_of(chunks) -> list[np.ndarray]:
        return [np.asarray(curve)[: int(state.n_iter) - first] for first, (state, curve, _) in chunks]

    chunks = run_chunks(
        advance,
        (state, None, None),
        start=first,
        end=end,
        size=spec.chunk if pace is None else pace,
        finished=finished,
        between=None if callback is None else between,
    )
    state, _, result_params = chunks[-1][1]
    status = Status.STOPPED if stopped_by_callback else Status(int(state.status))
    return _result(state, curves_of(chunks), result_params, status)


def _result(state: LbfgsState, curves: list[np.ndarray], params: Params, status: Status) -> LbfgsResult:
    return LbfgsResult(
        params=params,
        loss=float(state.value),
        loss_curve=np.concatenate(curves),
        grad_max=float(np.max(np.abs(np.asarray(state.grad)))),
        n_iter=int(state.n_iter),
        n_fun=int(state.n_fun),
        status=status,
        state=state,
    )


# --------------------------------------------------------------------------------------------------
# The checked public door and scikit-learn's warning text.


def _checked_limit(value, name: str) -> int:
    if not is_int(value) or not 1 <= value < 2**31:
        raise ValueError(f"{name} must be a positive integer below 2**31, got {value!r}")
    return int(value)


def minimize(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    weight=None,
    alpha: float = 0.0,
    max_iter: int = MAX_ITER,
    max_fun: int = MAX_FUN,
    gtol: float = GTOL,
    ftol: float = FTOL,
    layout: str | None = None,
    callback: Callable[[LbfgsResult], None] | None = None,
    chunk: int = CHUNK,
) -> LbfgsResult:
    """Minimise ``L(θ) = Σ w_i l_i/Σw + alpha/(2Σw)·Σ‖W‖²`` (``Σ w_i l_i`` for a summing loss: ``sum_of_squares``)
    over all of ``params`` with full-batch L-BFGS.

    scipy's ``minimize(method='L-BFGS-B', jac=True, options=dict(maxiter=max_iter, maxfun=max_fun,
    gtol=gtol, ftol=ftol))`` on the same objective, in one compiled loop (the algorithm and the exact stopping
    rules: ``docs/derivations.md``, §6).  It runs in the dtype of ``params`` (float64 needs ``jax.enable_x64``).

    Args:
      model, params: the network and its starting parameters (not modified).
      x: ``(n_samples, n_features)``; y: ``(n_samples, n_outputs)`` (one-hot for classes).
      loss: a loss name or :class:`~jaxnn.losses.Loss`.
      weight: optional per-sample weights ``(n_samples,)``, finite, non-negative, with a positive sum.
      alpha: the L2 penalty's strength (≥ 0), scikit-learn's ``alpha``: :func:`jaxnn.fit`'s ``l2`` is ``alpha/Σw``.
      max_iter, max_fun: the most iterations and loss-and-gradient evaluations (scipy's meanings).
      gtol: stop once ``max |∂L/∂θ| ≤ gtol``; ftol: stop once the relative reduction of ``L`` is ``≤ ftol``.
      layout: ``"columns"``, ``"rows"`` or None (the training loop's default for the backend).
      callback: called with the :class:`LbfgsResult` so far after every ``chunk`` iterations while the
        minimisation goes on (progress, checkpoints); raising ``StopIteration`` stops it with status
        ``STOPPED``, keeping what it reached.
      chunk: iterations per compiled call (a new value compiles a new program; the iterates are the same).

    Returns:
      An :class:`LbfgsResult`: the parameters, the final loss, the loss after each iteration, the largest
      gradient entry, the counts and the :class:`Status` (``result.converged``, ``result.diverged``).

    Example:
      >>> result = minimize(model, params, x, one_hot_y, loss="softmax_cross_entropy", alpha=1e-4, gtol=1e-4)
      >>> result.status, result.n_iter, result.loss
    """
    model, loss = checked_model_and_loss(model, loss)
    params, x, y, weight = full_batch_data(model, loss, params, x, y, weight)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable (it gets the LbfgsResult so far), got {callback!r}")
    spec = LbfgsSpec(
        model,
        loss,
        layout=decide_layout(layout, model, x.shape[1]),
        chunk=_checked_limit(chunk, "chunk"),
    )
    return run(
        spec,
        params=params,
        x=x,
        y=y,
        weight=weight,
        alpha=finite_real(alpha, "alpha", minimum=0),
        max_iter=_checked_limit(max_iter, "max_iter"),
        max_fun=_checked_limit(max_fun, "max_fun"),
        gtol=finite_real(gtol, "gtol", minimum=0),
        ftol=finite_real(ftol, "ftol", minimum=0),
        callback=callback,
    )


def convergence_message(result: LbfgsResult, max_iter: int) -> str | None:
    """scikit-learn's ConvergenceWarning text for an L-BFGS run that did not converge (its
    ``_check_optimize_result``), or None when it converged."""
    if result.converged:
        return None
    status = result.status
    text = f"lbfgs failed to converge after {result.n_iter} iteration(s) (status={status.scipy_status}):\n"
    text += f"{status.message}\n"
    if result.n_iter == max_iter:
        text += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
    return (
        text + "\nYou might also want to scale the data as shown in:\n"
        "    https://scikit-learn.org/stable/modules/preprocessing.html"
    )
