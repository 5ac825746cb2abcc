"""``jaxnn._builds.FallbackJit``: the first build this XLA accepts runs; a refused option drops its build."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnn._builds import FallbackJit

UNKNOWN = {"xla_no_such_option_here": True}  # no XLA has it: compiling with it is refused


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


def test_other_errors_and_a_last_refused_build_are_raised():
    with pytest.raises(Exception, match="compile option"):
        FallbackJit(_polynomial, [UNKNOWN], static_argnums=1)(np.ones(3, np.float32), 2)
    with pytest.raises(ValueError, match="Non-hashable static arguments"):  # not a refused option: raised as it is
        FallbackJit(_polynomial, [None], static_argnums=1)(np.ones(3, np.float32), [2])
    with pytest.raises(ValueError, match="at least one build"):
        FallbackJit(_polynomial, [])
