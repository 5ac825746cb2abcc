"""Estimators in joblib's worker processes: a fork of a process that used JAX gets a clear error, not a hang
(:mod:`jaxnn.fork_guard`); the threading backend works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent(
    """
    import json
    import numpy as np
    from joblib import parallel_backend
    from sklearn.model_selection import cross_val_score
    from jaxnn import NeuralNetClassifier

    X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    est = NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    est.fit(X, y)  # JAX has started in this process
    with parallel_backend("threading"):
        threaded = cross_val_score(est, X, y, cv=2, n_jobs=2)
    try:
        with parallel_backend("multiprocessing"):
            cross_val_score(est, X, y, cv=2, n_jobs=2)
        failure = None
    except ValueError as error:  # "All the 2 fits failed", with each fit's error
        failure = str(error)
    print(json.dumps({"threaded": threaded.tolist(), "failure": failure}))
    """
)


def test_a_forked_worker_after_jax_started_fails_clearly_instead_of_hanging():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAXNN_COMPILE_CACHE": "0"}
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(0.0 <= score <= 1.0 for score in seen["threaded"])
    message = seen["failure"]
    assert message is not None and "ForkedAfterJaxError" in message and "'loky'" in message and "'threading'" in message
