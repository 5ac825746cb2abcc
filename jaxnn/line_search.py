"""The Moré–Thuente line search of L-BFGS-B (MINPACK-2's dcsrch and dcstep), in ``jnp.where`` form.

:func:`line_search` finds a step ``t`` along a descent direction ``d`` that satisfies the strong Wolfe
conditions ``φ(t) ≤ φ(0) + c₁·t·φ'(0)`` and ``|φ'(t)| ≤ c₂·|φ'(0)|`` for ``φ(t) = L(θ + t·d)``, with scipy's
constants and limits, as one ``lax.while_loop`` (``docs/derivations.md`` §6.4 derives it).  It serves
:mod:`jaxnn.lbfgs`; a non-finite trial is never accepted.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnn.engine import tree_where

__all__ = [
    "ACCEPTED",
    "CURVATURE",
    "FAILED",
    "LINE_SEARCH_STEPS",
    "MAX_STEP",
    "STEP_TOLERANCE",
    "SUFFICIENT_DECREASE",
    "Search",
    "Trial",
    "line_search",
]

# L-BFGS-B's line search and its limits.
SUFFICIENT_DECREASE = 1e-3  # c₁
CURVATURE = 0.9  # c₂
STEP_TOLERANCE = 0.1  # xtol: stop when the bracketing interval is this small relative to its end
MAX_STEP = 1e10  # L-BFGS-B's stpmx without bounds
LINE_SEARCH_STEPS = 20  # scipy's maxls
EXTRAPOLATE_LOW, EXTRAPOLATE_HIGH = 1.1, 4.0  # dcsrch's xtrapl, xtrapu


def _gamma(theta, d_a, d_b, *, clamp: bool):
    """dcstep's ``γ = s·sqrt((θ/s)² − (d_a/s)(d_b/s))``, ``s = max(|θ|, |d_a|, |d_b|)`` (scaled against overflow)."""
    s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(d_a)), jnp.abs(d_b))
    discriminant = (theta / s) ** 2 - (d_a / s) * (d_b / s)
    return s * jnp.sqrt(jnp.maximum(discriminant, 0.0) if clamp else discriminant)


def _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, bracketed, stpmin, stpmax):
    """One safeguarded step of Moré and Thuente: the next trial step and the updated interval.

    ``stx`` is the best step so far (value ``fx``, slope ``dx``), ``sty`` the interval's other end, ``stp``
    the step just tried.  Four cases, as in MINPACK-2 (every case is computed and one is selected):

    1. ``fp > fx``: a minimiser lies between stx and stp; take the cubic step if it is closer to stx than
       the quadratic one, else their mean.
    2. lower value, slopes of opposite sign: bracketed; the cubic step if farther from stp than the secant
       step, else the secant step.
    3. lower value, same sign, |slope| decreasing: the cubic step (if the cubic tends to infinity in the
       direction of the step, else the end of the range) or the secant step, kept inside the interval.
    4. otherwise: the cubic step through stp and sty if bracketed, else the end of the range.
    """
    sign = jnp.sign(dp) * jnp.sign(dx)
    higher = fp > fx
    opposite = sign < 0
    flatter = jnp.abs(dp) < jnp.abs(dx)
    theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
    secant = stp + (dp / (dp - dx)) * (stx - stp)

    gamma1 = _gamma(theta, dx, dp, clamp=False)
    gamma1 = jnp.where(stp < stx, -gamma1, gamma1)
    cubic1 = stx + ((gamma1 - dx) + theta) / (((gamma1 - dx) + gamma1) + dp) * (stp - stx)
    quadratic1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    step1 = jnp.where(jnp.abs(cubic1 - stx) <= jnp.abs(quadratic1 - stx), cubic1, cubic1 + (quadratic1 - cubic1) / 2.0)

    gamma2 = _gamma(theta, dx, dp, clamp=False)
    gamma2 = jnp.where(stp > stx, -gamma2, gamma2)
    cubic2 = stp + ((gamma2 - dp) + theta) / (((gamma2 - dp) + gamma2) + dx) * (stx - stp)
    step2 = jnp.where(jnp.abs(cubic2 - stp) > jnp.abs(secant - stp), cubic2, secant)

    gamma3 = _gamma(theta, dx, dp, clamp=True)
    gamma3 = jnp.where(stp > stx, -gamma3, gamma3)
    r3 = ((gamma3 - dp) + theta) / ((gamma3 + (dx - dp)) + gamma3)
    end = jnp.where(stp > stx, stpmax, stpmin)
    cubic3 = jnp.where((r3 < 0) & (gamma3 != 0), stp + r3 * (stx - stp), end)
    closer = jnp.where(jnp.abs(cubic3 - stp) < jnp.abs(secant - stp), cubic3, secant)
    towards_sty = stp + 0.66 * (sty - stp)
    limited = jnp.where(stp > stx, jnp.minimum(towards_sty, closer), jnp.maximum(towards_sty, closer))
    farther = jnp.clip(jnp.where(jnp.abs(cubic3 - stp) > jnp.abs(secant - stp), cubic3, secant), stpmin, stpmax)
    step3 = jnp.where(bracketed, limited, farther)

    theta4 = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    gamma4 = _gamma(theta4, dy, dp, clamp=False)
    gamma4 = jnp.where(stp > sty, -gamma4, gamma4)
    cubic4 = stp + ((gamma4 - dp) + theta4) / (((gamma4 - dp) + gamma4) + dy) * (sty - stp)
    step4 = jnp.where(bracketed, cubic4, end)

    new_step = jnp.where(higher, step1, jnp.where(opposite, step2, jnp.where(flatter, step3, step4)))
    # The interval: a higher value becomes its far end; else stp is the new best, and with slopes of
    # opposite sign the old best becomes the far end.
    far_is_old_best = ~higher & opposite
    sty, fy, dy = (
        jnp.where(higher, stp, jnp.where(far_is_old_best, stx, sty)),
        jnp.where(higher, fp, jnp.where(far_is_old_best, fx, fy)),
        jnp.where(higher, dp, jnp.where(far_is_old_best, dx, dy)),
    )
    stx, fx, dx = jnp.where(higher, stx, stp), jnp.where(higher, fx, fp), jnp.where(higher, dx, dp)
    return stx, fx, dx, sty, fy, dy, new_step, bracketed | higher | opposite


class _Bracket(NamedTuple):
    """dcsrch's memory: the interval's ends (step, value, slope), its limits and widths, and its stage."""

    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array
    bracketed: jax.Array
    stage2: jax.Array  # a step with ψ ≤ 0 and φ' ≥ 0 was seen: work on φ, no longer on ψ


_SEARCHING, _CONVERGED, _WARNED = 0, 1, 2


def _start_bracket(step, finit, ginit) -> _Bracket:
    zero = jnp.zeros_like(finit)
    width = jnp.full_like(finit, MAX_STEP)  # stpmax − stpmin
    return _Bracket(
        stx=zero,
        fx=finit,
        gx=ginit,
        sty=zero,
        fy=finit,
        gy=ginit,
        stmin=zero,
        stmax=step + EXTRAPOLATE_HIGH * step,
        width=width,
        width1=width / 0.5,
        bracketed=jnp.bool_(False),
        stage2=jnp.bool_(False),
    )


def _dcsrch(b: _Bracket, stp, f, g, finit, ginit):
    """dcsrch after an evaluation at ``stp``: ``(bracket, next step, verdict)``, verdict one of searching,
    converged (strong Wolfe holds at ``stp``) or warned (no more progress possible)."""
    gtest = SUFFICIENT_DECREASE * ginit
    ftest = finit + stp * gtest
    stage2 = b.stage2 | ((f <= ftest) & (g >= 0))
    warned = (
        (b.bracketed & ((stp <= b.stmin) | (stp >= b.stmax)))
        | (b.bracketed & (b.stmax - b.stmin <= STEP_TOLERANCE * b.stmax))
        | ((stp == MAX_STEP) & (f <= ftest) & (g <= gtest))
        | ((stp == 0) & ((f > ftest) | (g >= gtest)))
    )
    converged = (f <= ftest) & (jnp.abs(g) <= CURVATURE * -ginit)
    verdict = jnp.where(converged, _CONVERGED, jnp.where(warned, _WARNED, _SEARCHING))

    # In stage 1, with a value above the sufficient-decrease line but below the best, step on ψ(t) =
    # φ(t) − t·gtest (the constant φ(0) does not move the step); a shift of 0 leaves the numbers exact.
    shift = jnp.where(~stage2 & (f <= b.fx) & (f > ftest), gtest, jnp.zeros_like(gtest))
    stx, fx, gx, sty, fy, gy, step, bracketed = _dcstep(
        b.stx,
        b.fx - b.stx * shift,
        b.gx - shift,
        b.sty,
        b.fy - b.sty * shift,
        b.gy - shift,
        stp,
        f - stp * shift,
        g - shift,
        b.bracketed,
        b.stmin,
        b.stmax,
    )
    fx, fy, gx, gy = fx + stx * shift, fy + sty * shift, gx + shift, gy + shift
    # Bisect when the interval did not shrink enough over the last two steps.
    slow = bracketed & (jnp.abs(sty - stx) >= 0.66 * b.width1)
    step = jnp.where(slow, stx + 0.5 * (sty - stx), step)
    width1 = jnp.where(bracketed, b.width, b.width1)
    width = jnp.where(bracketed, jnp.abs(sty - stx), b.width)
    stmin = jnp.where(bracketed, jnp.minimum(stx, sty), step + EXTRAPOLATE_LOW * (step - stx))
    stmax = jnp.where(bracketed, jnp.maximum(stx, sty), step + EXTRAPOLATE_HIGH * (step - stx))
    step = jnp.clip(step, 0.0, MAX_STEP)
    stuck = bracketed & ((step <= stmin) | (step >= stmax) | (stmax - stmin <= STEP_TOLERANCE * stmax))
    step = jnp.where(stuck, stx, step)  # the best step so far: the next evaluation ends the search
    bracket = _Bracket(stx, fx, gx, sty, fy, gy, stmin, stmax, width, width1, bracketed, stage2)
    return bracket, step, verdict


class Trial(NamedTuple):
    """The last point the line search evaluated."""

    step: jax.Array
    theta: jax.Array
    value: jax.Array
    grad: jax.Array
    slope: jax.Array  # ∇L(θ + t d)ᵀd
    finite: jax.Array


class Search(NamedTuple):
    next_step: jax.Array
    bracket: _Bracket
    trial: Trial
    cap: jax.Array  # the smallest step whose values were not finite (MAX_STEP·2 while none was)
    n_eval: jax.Array  # int32
    outcome: jax.Array  # _SEARCHING, ACCEPTED or FAILED


ACCEPTED, FAILED = 1, 2


def line_search(objective, theta, value, grad, direction, slope, first_step, evaluate_only) -> Search:
    """Moré–Thuente along ``direction`` from ``theta``, at most ``LINE_SEARCH_STEPS`` evaluations; with
    ``evaluate_only`` one evaluation at ``theta + first_step·direction``, accepted whatever it gives."""

    def evaluate(search: Search) -> Search:
        step = search.next_step
        trial_theta = theta + step * direction
        trial_value, trial_grad = objective(trial_theta)
        trial_slope = jnp.dot(trial_grad, direction)
        # ∇Lᵀd is not finite where an entry of ∇L is not (its term is ±inf or NaN, also where d is 0, and no sum
        # with such a term is finite), so the slope's test is the gradient's too, without a pass over it.
        finite = jnp.isfinite(trial_value) & jnp.isfinite(trial_slope)
        bracket, step_after, verdict = _dcsrch(search.bracket, step, trial_value, trial_slope, value, slope)
        # A non-finite trial: keep the bracket, halve towards the best step, never go that far again.
        cap = jnp.where(finite, search.cap, step)
        halfway = search.bracket.stx + 0.5 * (step - search.bracket.stx)
        step_after = jnp.where(finite, step_after, halfway)
        step_after = jnp.where(step_after >= cap, bracket.stx + 0.5 * (cap - bracket.stx), step_after)
        bracket = tree_where(finite, bracket, search.bracket)
        armijo = trial_value <= value + step * SUFFICIENT_DECREASE * slope
        accepted = evaluate_only | (finite & ((verdict == _CONVERGED) | ((verdict == _WARNED) & armijo)))
        n_eval = search.n_eval + 1
        failed = ~accepted & ((finite & (verdict == _WARNED)) | (n_eval >= LINE_SEARCH_STEPS))
        outcome = jnp.where(accepted, ACCEPTED, jnp.where(failed, FAILED, _SEARCHING))
        trial = Trial(step, trial_theta, trial_value, trial_grad, trial_slope, finite)
        return Search(step_after, bracket, trial, cap, n_eval, outcome.astype(jnp.int32))

    downhill = slope < 0  # False also when the direction is NaN
    first = Search(
        next_step=first_step,
        bracket=_start_bracket(first_step, value, slope),
        trial=Trial(jnp.zeros_like(value), theta, value, grad, slope, jnp.bool_(True)),
        cap=jnp.full_like(value, 2 * MAX_STEP),
        n_eval=jnp.int32(0),
        outcome=jnp.where(downhill | evaluate_only, _SEARCHING, FAILED).astype(jnp.int32),
    )
    return jax.lax.while_loop(lambda search: search.outcome == _SEARCHING, evaluate, first)
