"""``check_vjp``: a hand-written backward rule against ``jax.vjp`` and finite differences.

Two referees judge a rule ``backward(cotangent, *primals)``:

1. **Autodiff**: ``jax.vjp(forward, *primals)`` with the same random cotangent,
   in the primals' own dtype.  ``forward`` must be the *plain* forward (for an
   :class:`~jaxnn.ops.Op`, ``op.forward``), or JAX would only replay the rule.
2. **Central finite differences** in float64: for every primal element
   ``x_k``, ``uᵀ (f(x + ε e_k) − f(x − ε e_k)) / 2ε`` must equal the rule's
   ``k``-th entry (u the random cotangent).  This needs no autodiff at all, so it
   also catches a forward whose own derivative JAX gets "wrong" for the math.
   Points must lie away from kinks (ReLU at 0, a clip's bounds).  The quotient divides by the step float64 takes
   (``x + ε`` rounds beside a large ``x``), and where a rule disagrees with it at an element ``x_k ≠ 0``, that
   element is judged again with the step ``ε·|x_k|`` (log at 1e-30, ReLU at 1e-8; ``x²`` at 1e5, whose rounding
   swamps a step of 1e-6).

A mismatch raises :class:`GradcheckError` (an ``AssertionError``) naming the
primal, the worst element and both values; success returns a
:class:`GradcheckReport` of the largest errors seen.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import is_int, is_real
from jaxnn.ops import COTANGENT_CONTRACT, call_by_contract, cotangent_problem

__all__ = ["DEFAULT_TOLERANCES", "GradcheckError", "GradcheckReport", "check_vjp"]

# (rtol, atol) for the rule vs autodiff, by the primals' dtype.
DEFAULT_TOLERANCES = {
    np.dtype(np.float64): (1e-10, 1e-12),
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float16): (1e-2, 1e-3),
    np.dtype(jnp.bfloat16): (1e-2, 1e-3),
}
ROUNDING_ULPS = 8  # the default atol is at least this many machine epsilons of the largest gradient entry
FD_EPS = 1e-6  # float64 central-difference step
FD_RTOL, FD_ATOL = 1e-6, 1e-7  # float64 finite differences carry O(ε²) and O(1e-16/ε) error
FD_MAX_ELEMENTS = 4096  # beyond this many elements, check random directions instead of every element
FD_DIRECTIONS = 8


class GradcheckError(AssertionError):
    """A hand-written rule disagrees with a reference."""


class GradcheckReport(NamedTuple):
    """The largest absolute errors seen, per primal, against each referee."""

    autodiff_errors: tuple[float, ...]
    finite_difference_errors: tuple[float, ...]

    def __str__(self) -> str:
        rows = [
            f"  primal {i}: vs jax.vjp {a:.3g}, vs finite differences {f:.3g}"
            for i, (a, f) in enumerate(zip(self.autodiff_errors, self.finite_difference_errors, strict=True))
        ]
        return "check_vjp passed; largest absolute errors:\n" + "\n".join(rows)


def check_vjp(
    forward: Callable,
    backward: Callable,
    *primals,
    rtol: float | None = None,
    atol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Check ``backward`` against ``jax.vjp(forward)`` and against central differences.

    Where ``jax.vjp`` is not finite but the rule and the forward's difference quotient are (``jnp.where(x > 0,
    jnp.sqrt(x), 0)`` at ``x < 0``: autodiff differentiates the branch not taken, 0 × NaN), the finite differences
    alone judge those elements.

    Args:
      forward: ``forward(*primals) -> array``, plain jax.numpy.
      backward: ``backward(cotangent, *primals) -> tuple`` with one cotangent per primal.
      *primals: floating-point arrays (the point to check at).
      rtol, atol: tolerance against autodiff; default by the least precise dtype of the primals and the output:
        ``rtol`` float64 1e-10, float32 1e-5, float16 and bfloat16 1e-2; ``atol`` that dtype's own (1e-12, 1e-6,
        1e-3) or ``ROUNDING_ULPS`` (8) of its machine epsilons times the largest entry of autodiff's gradient,
        whichever is larger (a correct rule's terms carry rounding errors of that size).
        The finite-difference check uses ``max(rtol, 1e-6)`` and ``max(atol, 1e-7)``.  ``atol`` is absolute
        (rounding in a rule scales with its intermediate terms, not with its result): where the whole gradient is
        smaller than ``atol`` any rule passes, a zero one included, so check at points (or scales) where the
        gradient is well above it, or pass a smaller ``atol``; likewise entries far below the largest (``exp`` at
        -12 beside 4) are judged to that ``atol``: check such points on their own.  Primals are checked in their JAX
        dtype: a float64 NumPy array is checked as float32 while JAX's 64-bit mode is off.
      eps: the finite-difference step (default 1e-6, in float64); ``eps·|x_k|`` where that differs and the quotient
        of ``eps`` disagrees with the rule (near zero a fixed step leaves the domain or straddles a kink).
      seed: seeds the random cotangent (and directions, for large primals).

    Returns:
      A :class:`GradcheckReport`.

    Raises:
      GradcheckError: the rule disagrees with a referee (saying so first where its cotangent came back in a less
        precise dtype than its primal's, e.g. float32 for float64), or returns the wrong structure.  Where primals
        of a narrower float type disagree, the rule is judged again in float64 at the same points, and the message
        says when it agrees there: the difference is then that type's rounding (a formula that cancels, such as
        ``1 − y`` for ``y`` near 1, or autodiff's own), not a wrong rule; check such points in float64.
      TypeError: ``forward`` or ``backward`` is not callable or cannot take the arguments above, a primal is not a
        floating-point array, or ``forward`` does not return one floating-point array.
      ValueError: a primal is empty or holds NaN or infinity (a check there would prove nothing), every point where
        the rule and a referee disagree lies within ``eps`` of a kink (where neither can judge it: autodiff takes
        its own convention there, e.g. ``jnp.maximum``'s ½ at a tie), or
        ``rtol``, ``atol``, ``eps`` or ``seed`` is out of range.

    Example:
      >>> from jaxnn.activations import tanh
      >>> check_vjp(tanh.forward, tanh.vjp, jnp.linspace(-2.0, 2.0, 5))
    """
    if not callable(forward) or not callable(backward):
        raise TypeError("check_vjp needs two callables: forward(*primals) and backward(cotangent, *primals)")
    if not primals:
        raise TypeError("check_vjp needs at least one primal to differentiate at")
    primals = tuple(_as_primal(i, p) for i, p in enumerate(primals))
    rtol = None if rtol is None else _non_negative("rtol", rtol)
    atol = None if atol is None else _non_negative("atol", atol)
    eps = FD_EPS if eps is None else _non_negative("eps", eps, positive=True)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        return _judged(forward, backward, primals, rtol, atol, eps, seed)
    except GradcheckError as error:
        narrow = sorted({np.dtype(p.dtype).name for p in primals} - {"float64"})
        if not narrow or not _agrees_in_float64(forward, backward, primals, eps, seed):
            raise
        raise GradcheckError(
            f"{error}; run in float64 at the same points, the rule agrees with jax.vjp and finite differences, so "
            f"this is {' and '.join(narrow)} rounding (in the rule's formula, e.g. 1 - y for y near 1, or in "
            "autodiff's), not a wrong rule: check such points in float64 (jax.enable_x64), or pass a larger atol"
        ) from error


def _agrees_in_float64(forward, backward, primals, eps, seed) -> bool:
    """Whether the rule passes both referees with ``primals`` (float32, float16, bfloat16) widened to float64, the
    same points exactly, at float64's default tolerances."""
    with jax.enable_x64(True):
        wide = tuple(jnp.asarray(np.asarray(p, np.float64)) for p in primals)
        try:
            _judged(forward, backward, wide, None, None, eps, seed)
        except (GradcheckError, TypeError, ValueError):
            return False
    return True


def _judged(forward, backward, primals, rtol, atol, eps, seed) -> GradcheckReport:
    """:func:`check_vjp` on checked arguments (``primals`` as JAX arrays; None for a default tolerance)."""
    output = call_by_contract(
        forward,
        primals,
        {},
        lambda: f"forward must take the {len(primals)} primal(s) check_vjp was given",
        call=partial(jax.eval_shape, forward),
    )
    if not isinstance(output, jax.ShapeDtypeStruct) or not jnp.issubdtype(output.dtype, jnp.floating):
        what = f"dtype {output.dtype}" if isinstance(output, jax.ShapeDtypeStruct) else type(output).__name__
        raise TypeError(
            f"forward must return one floating-point array (the rule's cotangent has its shape), got {what}"
        )
    # The least precise dtype among the primals and the output sets the default (float32 beside float64: float32's).
    loosest = max(
        (
            np.dtype(a.dtype) if np.dtype(a.dtype) in DEFAULT_TOLERANCES else np.dtype(np.float32)
            for a in (*primals, output)
        ),
        key=lambda dtype: (DEFAULT_TOLERANCES[dtype], jnp.finfo(dtype).eps),
    )
    rng = np.random.default_rng(seed)
    cotangent = jax.device_put(rng.standard_normal(output.shape).astype(output.dtype))
    # Each referee and the rule run as one compiled program (op by op, a check compiled every primitive anew).
    hand = jax.jit(_checked_backward(backward, primals))(cotangent, *primals)
    reference = jax.jit(_autodiff_vjp(forward))(cotangent, *primals)
    if rtol is None:
        rtol = DEFAULT_TOLERANCES[loosest][0]
    if atol is None:
        atol = max(DEFAULT_TOLERANCES[loosest][1], _rounding_atol(loosest, reference))

    autodiff_errors = []
    for i, (h, r) in enumerate(zip(hand, reference, strict=True)):
        with jax.enable_x64(True):
            r = _without_autodiff_blind_spots(forward, i, primals, cotangent, h, r, eps)
        try:
            autodiff_errors.append(_compare(f"primal {i}", "jax.vjp", h, r, rtol, atol))
        except GradcheckError as error:
            # At a kink autodiff takes one convention (jnp.maximum: ½ at the tie) and a rule may take another.
            with jax.enable_x64(True):
                _refuse_kinks(forward, i, primals, cotangent, h, r, rtol, atol, eps)
            narrower = _narrower_cotangent(i, h, r, primals[i], str(error).removeprefix(f"primal {i}: "))
            if narrower is None:
                raise
            raise GradcheckError(narrower) from error

    with jax.enable_x64(True):
        fd_errors = _check_finite_differences(
            forward, hand, primals, cotangent, max(rtol, FD_RTOL), max(atol, FD_ATOL), eps, rng
        )
    return GradcheckReport(tuple(autodiff_errors), tuple(fd_errors))


def _without_autodiff_blind_spots(forward, i, primals, cotangent, hand, reference, eps):
    """Autodiff's cotangent for primal ``i`` with every element where it is not finite, the rule is, and the central
    difference quotient of ``forward`` is finite too, replaced by the rule's own value: autodiff cannot judge those
    elements (``jnp.where(x > 0, jnp.sqrt(x), 0)`` at ``x < 0`` differentiates the branch it does not take, 0 × NaN;
    ``jnp.linalg.norm`` at 0 divides 0 by 0), and the finite differences, which judge every element next, do.  A right
    rule there was refused with "forward is not finite within eps" (forward is) and a wrong one was reported at
    such an element, where it was right, instead of where it was wrong.  Unchanged where the primal is too large
    to take every element's quotient."""
    blind = ~np.isfinite(np.asarray(reference, np.float64)) & np.isfinite(np.asarray(hand, np.float64))
    if not np.any(blind) or np.size(primals[i]) > FD_MAX_ELEMENTS:
        return reference
    primals64, u = _in_float64(primals, cotangent)
    f_i = _projected_forward(forward, i, primals64, u)
    central = _refined_relative(f_i, primals64[i], blind, _difference_quotients(f_i, primals64[i], eps), eps)[0]
    blind &= np.isfinite(central)
    if not np.any(blind):
        return reference
    return np.where(blind, np.asarray(hand, np.float64), np.asarray(reference, np.float64))


def _narrower_cotangent(index: int, hand, reference, primal, disagreement: str) -> str | None:
    """Why a rule's cotangent for primal ``index`` cannot meet the primal's tolerance (``disagreement``: where it
    does not), when it comes in a less precise floating dtype (float32 for a float64 primal: a rule that computes
    in float32) and agrees with the ``reference`` to that dtype's tolerance; else None.  JAX takes
    such a cotangent (and ``jaxnn.make_op`` casts it up), but it carries the narrower dtype's rounding, which the
    primal's tolerance (float64: rtol 1e-10) was read as the rule's inaccuracy."""
    ours, theirs = jnp.result_type(hand), jnp.result_type(primal)
    if not (jnp.issubdtype(ours, jnp.floating) and jnp.issubdtype(theirs, jnp.floating)):
        return None
    if jnp.finfo(ours).eps <= jnp.finfo(theirs).eps or np.dtype(ours) not in DEFAULT_TOLERANCES:
        return None
    rtol, atol = DEFAULT_TOLERANCES[np.dtype(ours)]
    try:  # a wrong rule is wrong at the narrower dtype's tolerance too: then the disagreement is its own
        _compare(
            f"primal {index}", "jax.vjp", hand, reference, rtol, max(atol, _rounding_atol(np.dtype(ours), reference))
        )
    except GradcheckError:
        return None
    return (
        f"primal {index}: backward returned a {ours} cotangent for a {theirs} primal, so it carries {ours} rounding, "
        f"beyond {theirs}'s tolerance ({disagreement}); compute the rule in its primal's dtype (don't cast g or the "
        f"primals to {ours}), or check it at {ours} primals to judge it at {ours}'s tolerance"
    )


def _rounding_atol(dtype: np.dtype, reference) -> float:
    """``ROUNDING_ULPS`` machine epsilons of ``dtype`` times the largest gradient entry: a rule's terms carry
    rounding errors of that absolute size (tanh's ``1 − y²`` from a rounded ``y``), which a correct bfloat16 or
    float16 rule exceeded under those dtypes' fixed ``atol``."""
    largest = max(float(np.max(np.abs(np.asarray(r, np.float64)))) for r in reference)
    return ROUNDING_ULPS * float(jnp.finfo(dtype).eps) * largest if np.isfinite(largest) else 0.0


def _as_primal(index: int, value) -> jax.Array:
    """A primal as a JAX array of floats with at least one element, all finite; else a TypeError or ValueError."""
    try:
        array = value if isinstance(value, jax.Array) else np.asarray(value)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype == object:
        raise TypeError(
            f"primal {index} is a {type(value).__name__}; check_vjp takes floating-point arrays "
            "(pass a pytree's leaves as separate primals)"
        ) from None
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"primal {index} has dtype {array.dtype}; check_vjp needs floating-point primals")
    # device_put gives the array JAX's dtype (float32 for float64 while 64-bit mode is off) without compiling the
    # copy program that jnp.asarray of a NumPy array builds for every new shape
    array = jax.device_put(array)
    if array.size == 0:
        raise ValueError(f"primal {index} has shape {array.shape} and no elements: there is nothing to check")
    if not np.all(np.isfinite(np.asarray(array, np.float64))):
        raise ValueError(
            f"primal {index} holds NaN or infinity; check the rule at finite points (finite differences "
            "there are meaningless, and NaN agrees with NaN)"
        )
    return array


def _non_negative(name: str, value, *, positive: bool = False) -> float:
    if not is_real(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}, got {value!r}")
    return float(value)


def _autodiff_vjp(forward) -> Callable:
    """``(cotangent, *primals) ↦ jax.vjp(forward, *primals)[1](cotangent)``: the autodiff referee."""

    def reference(cotangent, *primals):
        return jax.vjp(forward, *primals)[1](cotangent)

    return reference


def _checked_backward(backward, primals) -> Callable:
    """``backward`` with its result checked as it is traced: a tuple (as ``jax.custom_vjp`` and
    ``jaxnn.make_op`` take it, so a rule that passes here works through ``jax.grad``) of one numeric array per
    primal, each of the primal's shape, floating-point where the primal is."""

    def checked(cotangent, *args):
        hand = call_by_contract(backward, (cotangent, *args), {}, lambda: _backward_contract(len(args)))
        if isinstance(hand, tuple):
            hand = tuple(h if h is None else _as_cotangent(i, h) for i, h in enumerate(hand))
        problem = cotangent_problem(hand, primals)
        if problem is not None:
            raise GradcheckError(f"backward {COTANGENT_CONTRACT.format(n=len(primals))}; got {problem}")
        # None for a scalar is JAX's zero cotangent, as make_op takes it: judged as zeros
        return tuple(jnp.zeros_like(p) if h is None else h for h, p in zip(hand, primals, strict=True))

    return checked


def _backward_contract(n_primals: int) -> str:
    return (
        f"backward must take (cotangent, *primals), here (g, {n_primals} primal(s)); for an op pass op.vjp, which "
        "computes the output its backward takes second, not op.backward"
    )


def _as_cotangent(index: int, value) -> jax.Array:
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError):
        array = None
    if array is None or not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        what = type(value).__name__ if array is None else f"dtype {array.dtype}"
        raise GradcheckError(f"primal {index}: backward returned {what}, not an array of cotangents")
    return array


def _compare(what: str, referee: str, hand, reference, rtol: float, atol: float, position: str = "at element") -> float:
    """Raise if ``|hand − reference| > atol + rtol·|reference|`` anywhere; return the largest error.  ``position``
    names what an index counts (``in random direction``: the rule's derivative along the random direction)."""
    hand = np.asarray(hand, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    # A non-finite value agrees only with the very same non-finite value (+inf with +inf, NaN with NaN).
    same_non_finite = ~np.isfinite(reference) & ((hand == reference) | (np.isnan(hand) & np.isnan(reference)))
    with np.errstate(invalid="ignore"):  # inf − inf is NaN, which the masks below handle
        error = np.where(same_non_finite, 0.0, np.abs(hand - reference))
        excess = np.where(same_non_finite, 0.0, error - (atol + rtol * np.abs(reference)))
    if np.any(~(excess <= 0)):
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), np.shape(excess))
        raise GradcheckError(
            f"{what}: the hand-written backward disagrees with {referee} {position} {tuple(int(i) for i in worst)}: "
            f"hand-written {hand[worst]:.10g}, {referee} {reference[worst]:.10g} "
            f"(|difference| {error[worst]:.3g} > atol {atol:g} + rtol {rtol:g} × |{referee}|)"
        )
    return float(np.max(error)) if error.size else 0.0


def _projected_forward(forward, i, primals64, u):
    """``x_i ↦ uᵀ (forward(…, x_i, …) − forward(primals))`` in float64, vmapped over a leading axis of ``x_i`` and
    compiled.  The change is taken element by element before the projection sums it: summed first, a small change
    of one output was lost beside the others (``sqrt`` at 1e-30 beside 2: its change 1e-21 under the sum's
    rounding, a difference quotient of 0 against a right rule's 5e14)."""
    base = jnp.asarray(forward(*primals64), jnp.float64)

    def projected(x_i):
        args = list(primals64)
        args[i] = x_i
        return jnp.vdot(u, jnp.asarray(forward(*args), jnp.float64) - base)

    return jax.jit(jax.vmap(projected))


def _difference_quotients(f_i, p, eps):
    """For every element ``k`` of ``p``: the central quotient ``(f(p + ε e_k) − f(p − ε e_k)) / 2ε`` and the
    right and left one-sided ones, each shaped like ``p`` (all points in one call of ``f_i``).  ``eps`` is one step
    or one per element (an array shaped like ``p``)."""
    p = np.asarray(p, np.float64)
    eps = np.broadcast_to(np.asarray(eps, np.float64), p.shape)
    steps = np.diag(eps.ravel()).reshape((p.size, *p.shape))
    values = np.asarray(f_i(np.concatenate([p[None] + steps, p[None] - steps, p[None]])))
    plus, minus = values[: p.size].reshape(p.shape), values[p.size : 2 * p.size].reshape(p.shape)
    centre = values[2 * p.size]
    up, down = _steps_taken(p, eps)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # outside forward's domain: NaN, judged below
        return (plus - minus) / (up + down), (plus - centre) / up, (centre - minus) / down


def _steps_taken(p: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The steps ``(x + ε) − x`` and ``x − (x − ε)`` as float64 takes them (exact differences of the points the
    quotients evaluate): beside a large ``x`` the step ``ε`` rounds to a multiple of ``x``'s spacing, and dividing
    by ``ε`` itself made the quotient of ``sin`` at 1e5 wrong by 1e-5 (at 1e8 by 1 %), a right rule's failure."""
    return (p + eps) - p, p - (p - eps)


def _disagrees(hand, referee, rtol, atol) -> np.ndarray:
    """Where ``|hand − referee| > atol + rtol·|referee|`` (NaN on either side disagrees)."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(hand - referee) <= atol + rtol * np.abs(referee))


def _refined_relative(f_i, p, wrong, quotients, eps):
    """The difference quotients, with those of every element ``x_k ≠ 0`` where ``wrong`` (the rule disagrees
    with a referee) taken again with the relative step ``ε·|x_k|``.  A fixed step is coarse beside a small ``x_k``:
    the quotient of ``log`` at 1e-5 was 1.0033e5 (truncation ``ε²/3x³``, read as a kink), and at 1e-30 NaN
    (``x − ε`` left the domain), against a right rule's 1e5 and 1e30.  Beside a large one it is too fine:
    the rounding of ``f`` swamps the change (``x²`` at 1e5: a relative error of 3e-6, at 1e8 a quotient 1.3 % off).
    Autodiff judges the rule first, so the other quotient only spares a right rule at a point where the fixed step
    cannot judge it."""
    retry = wrong & (p != 0) & (np.abs(p) != 1)
    if not np.any(retry):
        return quotients
    finer = _difference_quotients(f_i, p, eps * np.where(retry, np.abs(p), 1.0))
    return tuple(np.where(retry, f, q) for f, q in zip(finer, quotients, strict=True))


def _in_float64(primals, cotangent) -> tuple[list[np.ndarray], np.ndarray]:
    """The primals and the cotangent as float64 NumPy arrays: where finite differences are taken."""
    return [np.asarray(p, np.float64) for p in primals], np.asarray(cotangent, np.float64)


def _directional_quotients(f_i, p, h64, steps, eps):
    """For each row ``s`` of ``steps`` (one step per element of ``p``): the rule's derivative along ``s / ε``,
    ``Σ h_k s_k / ε`` with the steps as float64 took them (``s`` rounds beside a large ``x``), and the central
    quotient ``(f(p + s) − f(p − s)) / 2ε``."""
    plus, minus = np.asarray(p)[None] + steps, np.asarray(p)[None] - steps
    values = np.asarray(f_i(np.concatenate([plus, minus])))
    n = len(steps)
    taken = (plus - minus) / (2 * eps)
    with np.errstate(invalid="ignore", over="ignore"):  # outside forward's domain: NaN, which disagrees
        return np.tensordot(taken, h64, axes=h64.ndim), (values[:n] - values[n:]) / (2 * eps)


def _check_finite_differences(forward, hand, primals, cotangent, rtol, atol, eps, rng) -> list[float]:
    primals64, u = _in_float64(primals, cotangent)
    errors = []
    for i, (p, h) in enumerate(zip(primals64, hand, strict=True)):
        f_i = _projected_forward(forward, i, primals64, u)
        h64 = np.asarray(h, np.float64)
        if p.size <= FD_MAX_ELEMENTS:
            quotients = _difference_quotients(f_i, p, eps)
            wrong = _disagrees(h64, quotients[0], rtol, atol)
            numeric, right, left = _refined_relative(f_i, p, wrong, quotients, eps)
            try:
                errors.append(_compare(f"primal {i}", "finite differences", h64, numeric, rtol, atol))
            except GradcheckError:
                _refuse_if_only_kinks(i, p, h64, numeric, right, left, eps, rtol, atol)
                raise
        else:
            directions = rng.standard_normal((FD_DIRECTIONS, *p.shape))
            analytic, numeric = _directional_quotients(f_i, p, h64, eps * directions, eps)
            # As element by element: where the fixed step cannot judge the rule (log or √ beside 1e-4, where the
            # quotient's truncation error ε²/3x² reaches 1e-6 of the whole), the directions are stepped again with
            # each element's step scaled to it, ε·|x_k| (ε where x_k = 0).
            wrong = _disagrees(analytic, numeric, rtol, atol)
            if np.any(wrong):
                scaled = _directional_quotients(f_i, p, h64, eps * directions * np.where(p != 0, np.abs(p), 1.0), eps)
                analytic, numeric = (np.where(wrong, s, q) for s, q in zip(scaled, (analytic, numeric), strict=True))
            errors.append(
                _compare(
                    f"primal {i} (random directions)",
                    "finite differences",
                    analytic,
                    numeric,
                    rtol,
                    atol,
                    position="in random direction",
                )
            )
    return errors


def _refuse_kinks(forward, i, primals, cotangent, hand, reference, rtol, atol, eps) -> None:
    """Where the rule disagrees with autodiff: the kink ``ValueError`` if every such element of primal ``i`` lies at
    a kink (autodiff's convention there is not the rule's to follow); nothing when the primal is too large to look."""
    if np.size(primals[i]) > FD_MAX_ELEMENTS:
        return
    primals64, u = _in_float64(primals, cotangent)
    p, hand, reference = primals64[i], np.asarray(hand, np.float64), np.asarray(reference, np.float64)
    f_i = _projected_forward(forward, i, primals64, u)
    wrong = _disagrees(hand, reference, rtol, atol)
    _, right, left = _refined_relative(f_i, p, wrong, _difference_quotients(f_i, p, eps), eps)
    _refuse_if_only_kinks(i, p, hand, reference, right, left, eps, rtol, atol)


def _refuse_if_only_kinks(i, p, hand, referee, right, left, eps, rtol, atol) -> None:
    """A ValueError when every element where the rule and a referee disagree lies within ``eps`` of a kink — the
    one-sided difference quotients there differ by more than 1 % — since no referee can judge a rule there (ReLU at 0
    gave "disagrees with finite differences": hand-written 0, finite differences 0.5; jnp.maximum's autodiff ½)."""
    outside = ~np.isfinite(referee) & np.isfinite(hand)  # a step left forward's domain (log at 1e-30, ε = 1e-6)
    with np.errstate(invalid="ignore"):
        kink = ~(np.abs(right - left) <= 0.01 * np.maximum(np.abs(right), np.abs(left)) + atol)
    wrong = _disagrees(hand, referee, rtol, atol)
    if np.any(wrong) and not np.any(wrong & ~kink & ~outside):
        where = tuple(int(k) for k in np.argwhere(wrong)[0])
        value = float(np.asarray(p)[where])
        if outside[where]:
            raise ValueError(
                f"primal {i} at element {where} (value {value:.10g}): forward is not finite within eps={eps:g} of it "
                f"(finite differences there are {referee[where]:.6g}), so finite differences cannot judge the rule; "
                "check further from the edge of forward's domain (log at 0) or pass a smaller eps"
            )
        raise ValueError(
            f"primal {i} at element {where} (value {value:.6g}) lies within eps={eps:g} of a point "
            f"where forward is not differentiable: its one-sided difference quotients there are {right[where]:.6g} and "
            f"{left[where]:.6g}, so finite differences cannot judge the rule; check at points at least eps away from "
            "kinks (ReLU at 0, a step's threshold, a clip's bounds)"
        )
