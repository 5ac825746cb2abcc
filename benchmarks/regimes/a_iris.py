"""Regime a: times the seed's iris network (4-10-5-3), full batch, per epoch with compilation excluded.

The JAX competitors (the estimator rows too) share one worker process, and so do scikit-learn's two; the
others run alone.  After every job's warm-up the competitors are timed in interleaved rounds.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import workers
from orchestration import Worker, close_all, start_workers, timed_rounds

from regimes.common import Config, competitor_names, ratio, skipped, target

ESTIMATOR_32, ESTIMATOR_64, SKLEARN_64 = workers.ESTIMATOR_32, workers.ESTIMATOR_64, workers.SKLEARN_64
REGIME_A = (
    "jaxnn",
    workers.JAXNN_64,
    "jax.grad",
    "jax.grad naive",
    ESTIMATOR_32,
    ESTIMATOR_64,
    "NumPy",
    "scikit-learn",
    SKLEARN_64,
    "PyTorch",
)


def write_iris_problem(path: Path) -> int:
    """The seed's split (standardised; float32, and float64 for the float64 rows), one-hot targets and jaxnn's
    initial weights, for every worker."""
    import jax

    from jaxnn.data import iris_split, one_hot

    split = iris_split()
    params = workers.seed_network().init(jax.random.key(0), 4)
    arrays = {"x": split.x_train.astype(np.float32), "labels": split.y_train, "y": one_hot(split.y_train, 3)}
    arrays["x64"] = split.x_train.astype(np.float64)
    arrays["y"] = arrays["y"].astype(np.float32)
    for index, layer in enumerate(params):
        arrays[f"W{index}"], arrays[f"b{index}"] = np.asarray(layer["W"]), np.asarray(layer["b"])
    np.savez(path, **arrays)
    return len(split.x_train)


def measure(config: Config) -> dict:
    """Every competitor timed in interleaved rounds after its warm-up; medians per epoch, compilation apart."""
    epochs = config.epochs
    with tempfile.TemporaryDirectory() as directory:
        problem = Path(directory) / "iris.npz"
        n_samples = write_iris_problem(problem)
        settings, names = {"problem": str(problem), "epochs": epochs}, competitor_names(REGIME_A)
        jax_names = [name for name in names if name in workers.JAX_COMPETITORS_A]
        sklearn_names = [name for name in names if name in workers.SKLEARN_COMPETITORS_A]
        # The JAX competitors (the estimator rows too) share one process (see workers.py), compiling one after
        # another, and so do scikit-learn's two; nothing is compiled in the others, so they may start together.
        alone = [name for name in names if name not in (*jax_names, *sklearn_names)]
        running = start_workers("a", alone, settings, together=True)
        running |= dict.fromkeys(sklearn_names, Worker("a", sklearn_names, settings).wait_ready())
        shared = Worker("a", jax_names, {**settings, "warm_up_xla": True}).wait_ready()
        running |= dict.fromkeys(jax_names, shared)
        running = {name: running[name] for name in names}  # the table's order
        times = timed_rounds(running, config.repeats)
        close_all(running)
    competitors = {}
    for name, runs_s in times.items():
        steady, setup = statistics.median(runs_s), running[name].setup[name]
        competitors[name] = {"us_per_epoch": steady / epochs * 1e6, "runs_s": runs_s, "final_loss": setup["final_loss"]}
        if name in workers.JAX_COMPETITORS_A:
            competitors[name] |= {
                "compile_s": max(setup["first_call_s"] - steady, 0.0),
                "first_call_s": setup["first_call_s"],
            }
    for name in (ESTIMATOR_32, ESTIMATOR_64):
        competitors[name]["note"] = (
            "the whole fit() (input checks, initial weights drawn from random_state=0, training, attributes) ÷ epochs"
        )
    competitors[workers.JAXNN_64]["note"] = "jaxnn.fit on float64 data and weights (jax.enable_x64)"
    for name in ("scikit-learn", SKLEARN_64):
        competitors[name]["note"] = "its own initial weights (Glorot uniform), so its loss differs"
    speed = {name: c["us_per_epoch"] for name, c in competitors.items()}
    for name, c in competitors.items():  # against scikit-learn on the same input dtype
        c["x_sklearn"] = ratio(speed[SKLEARN_64 if "float64" in name else "scikit-learn"], speed[name])
    return {
        "description": (
            f"seed's iris network 4-10-5-3 (ReLU, ReLU, softmax, categorical cross-entropy), {n_samples} samples, "
            f"full batch, learning rate {workers.LEARNING_RATE}, {epochs} epochs; µs per epoch, compilation excluded"
        ),
        "unit": "us/epoch",
        "competitors": skipped(competitors, REGIME_A),
        "targets": [
            target("a", "jaxnn ≥ 15× faster than scikit-learn", ratio(speed["scikit-learn"], speed["jaxnn"]), 15),
            target("a", "jaxnn ≥ 5× faster than NumPy from scratch", ratio(speed["NumPy"], speed["jaxnn"]), 5),
            target("a", "hand-written rules ≥ 1.0× autodiff", ratio(speed["jax.grad"], speed["jaxnn"]), 1.0),
            target(
                "a",
                "NeuralNetClassifier.fit, float64 input, ≥ 10× faster than scikit-learn (float64 input)",
                competitors[ESTIMATOR_64]["x_sklearn"],
                10,
            ),
            target(
                "a",
                "NeuralNetClassifier.fit, float32 input, ≥ 13× faster than scikit-learn (float32 input)",
                competitors[ESTIMATOR_32]["x_sklearn"],
                13,
            ),
        ],
    }
