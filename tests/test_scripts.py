"""End to end: the seeds' two networks learn what the seeds say they learn.

* seed 001's XOR toy (``scripts/xor.py``): 3 → 4 sigmoid → 1 sigmoid, sum of squares, 1500 iterations;
* the seed's iris network through the library: 4 → 10 ReLU → 5 ReLU → 3 softmax, categorical
  cross-entropy, the seed's split, test accuracy ≥ 0.97.

(``scripts/train.py`` is a thin wrapper over ``jaxnn.cli``; its command is tested with the CLI.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import xla_accepts

import jaxnn
from jaxnn._builds import QUICK_BUILD, UNOPTIMISED
from jaxnn.data import iris_split, one_hot

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"jaxnn_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_xor_script_learns_xor(capsys):
    xor = _load_script("xor")
    predictions = xor.main()
    assert predictions.shape == (4, 1)
    np.testing.assert_allclose(predictions, xor.Y, atol=0.1)
    printed = capsys.readouterr().out
    assert "iteration  1500" in printed and "prediction" in printed


@pytest.mark.slow
def test_iris_seed_network_reaches_097():
    split = iris_split()
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = model.init(jax.random.key(0), n_features=4)
    result = jaxnn.fit(
        model,
        params,
        split.x_train,
        one_hot(split.y_train, 3),
        loss="categorical_cross_entropy",
        epochs=2000,
        learning_rate=0.1,
    )
    assert not bool(result.diverged)
    assert result.history[-1] < 0.1 * result.history[0]
    predicted = np.argmax(model.apply(result.params, split.x_test), axis=1)
    assert np.mean(predicted == split.y_test) >= 0.97


def test_the_device_check_reports_this_hosts_facts_and_whether_xla_takes_the_quick_builds():
    """``scripts/device_check.py`` runs on accelerator hosts only; its facts and report are checked here, on the
    CPU: the versions, and how many of jaxnn's quick builds this XLA took (JAX 0.10.2's takes all three; 0.12's
    refuses the first, which names an option its XLA no longer has)."""
    device_check = _load_script("device_check")
    facts = device_check.device_facts()
    assert facts["platform"] == "cpu" and facts["jax"] == jax.__version__
    accepted = 3 if xla_accepts(QUICK_BUILD) else 2 if xla_accepts(UNOPTIMISED) else 1
    assert facts["quick_builds"] == 3 and facts["quick_builds_left"] == accepted
    outcome = device_check.Outcome("seed iris example", True, 1.0, "test accuracy 0.97", "")
    page = device_check.report(facts, [outcome], None, 2.0)
    assert "| seed iris example | pass | 1 | test accuracy 0.97 |" in page
    assert ("every build accepted" in page) == (accepted == 3)
    refused = device_check.xla_options_line({**facts, "quick_builds_left": 1})
    assert refused.startswith("This XLA refused 2 of jaxnn's 2 compile-shortening builds")
