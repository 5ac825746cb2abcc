"""scikit-learn's own MLP tests, run against jaxnn's estimators.

At collection time this module reads the installed ``sklearn/neural_network/tests/test_mlp.py``, puts
:class:`jaxnn.NeuralNetClassifier` and :class:`jaxnn.NeuralNetRegressor` in the place of ``MLPClassifier``
and ``MLPRegressor`` (the one import line that names them is replaced; a scikit-learn whose file no longer
has that line fails here loudly instead of testing its own classes), and executes it into this module, so
pytest collects scikit-learn's tests as they are written.  ``global_random_seed`` is provided as
scikit-learn's conftest provides it.

Left out, by name, are exactly the tests that read scikit-learn's private internals (``_forward_pass``,
``_backprop``, ``_optimizer``, ``_no_improvement_count``): jaxnn computes the same things in its compiled
loop and tests them in its own suite.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SKLEARN_TEST_MODULE = "sklearn.neural_network.tests.test_mlp"
SKLEARN_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
JAXNN_IMPORT = "from jaxnn import NeuralNetClassifier as MLPClassifier, NeuralNetRegressor as MLPRegressor"

# The tests that inspect scikit-learn's private attributes and methods; nothing else is excluded.
EXCLUDED = (
    "test_fit",
    "test_gradient",
    "test_adaptive_learning_rate",
    "test_learning_rate_warmstart",
    "test_n_iter_no_change",
)


def sklearn_test_source() -> tuple[str, str]:
    """``(path, source)`` of scikit-learn's MLP tests with jaxnn's estimators imported under MLP's names."""
    spec = importlib.util.find_spec(SKLEARN_TEST_MODULE)
    assert spec is not None and spec.origin, f"{SKLEARN_TEST_MODULE} is not installed with scikit-learn"
    source = Path(spec.origin).read_text(encoding="utf-8")
    lines = source.splitlines()
    assert lines.count(SKLEARN_IMPORT) == 1, (
        f"{spec.origin} no longer imports the estimators with the line {SKLEARN_IMPORT!r}; "
        "update SKLEARN_IMPORT so that these tests run on jaxnn's estimators and not on scikit-learn's"
    )
    return spec.origin, "\n".join(JAXNN_IMPORT if line == SKLEARN_IMPORT else line for line in lines) + "\n"


def global_random_seeds() -> list[int]:
    """The seeds of scikit-learn's ``global_random_seed`` fixture: ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` is
    unset (42), a seed, a range ``"a-b"`` or ``"all"`` (0–99)."""
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        return [42]
    if value == "all":
        return list(range(100))
    start, _, stop = value.partition("-")
    seeds = list(range(int(start), int(stop or start) + 1))
    if not all(0 <= seed <= 99 for seed in seeds):
        raise ValueError(f"SKLEARN_TESTS_GLOBAL_RANDOM_SEED must be in the range [0, 99] (or 'all'), got: {value}")
    return seeds


@pytest.fixture(params=global_random_seeds())
def global_random_seed(request) -> int:
    return request.param


_path, _source = sklearn_test_source()
exec(compile(_source, _path, "exec"), globals())  # scikit-learn's installed test file, by design
for _name in EXCLUDED:
    assert callable(globals().get(_name)), f"scikit-learn's MLP tests no longer define {_name}; update EXCLUDED"
    del globals()[_name]
