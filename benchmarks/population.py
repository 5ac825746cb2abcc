"""Regime f: populations of networks (``jaxnn.fit_many``) and the model-selection search built on them.

    python benchmarks/population.py device
    python benchmarks/population.py populations SETTINGS_JSON
    python benchmarks/population.py search SETTINGS_JSON

Each command runs in a fresh process started by ``benchmarks/run.py`` (with ``JAX_PLATFORMS=cpu`` for
the CPU run, without it for an accelerator) and prints one JSON line.

* ``device``: the backend and device that JAX picked (the driver's accelerator probe).
* ``populations``: for every population size P, P members of the seed's iris network (4 → 10 ReLU →
  5 ReLU → 3 softmax, categorical cross-entropy, plain gradient descent with learning rate 0.1, the
  standardised 112-row training split, full batch) trained for ``epochs`` epochs by one
  ``jaxnn.fit_many`` call (default group size), against the same members trained by P ``jaxnn.fit``
  calls one after another.  Each is warmed up first (compilation; that first call is reported), then
  both are timed in ``repeats`` interleaved rounds and medians are reported.  Beyond
  ``sequential_run_all_up_to`` members the sequential time is estimated: the time of that many fits
  (members 0, 1, ...) scaled to P, flagged ``"estimated"``.
* ``search``: a grid search on wine (178 rows, 13 features, as float32), 5-fold ``StratifiedKFold``
  (shuffled, ``random_state=0``) over ``learning_rate_init`` × ``alpha`` for
  ``Pipeline([("scale", StandardScaler()), ("net", classifier)])``, ``n_jobs=1``, by one of
  ``SEARCHES``: jaxnn's ``GridSearchCV`` (populations), scikit-learn's ``GridSearchCV`` over the same
  jaxnn pipeline (one fit after another), or scikit-learn's ``GridSearchCV`` over ``MLPClassifier`` with
  the same settings.  The first run in the process is "cold" (jaxnn compiles; the persistent compilation
  cache is off in the driver's workers), the ``warm_runs`` after it are "warm" (median reported).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workers  # noqa: E402
from orchestration import interleaved, seconds, timed  # noqa: E402

JAXNN_SEARCH = "jaxnn GridSearchCV"
SEQUENTIAL_SEARCH = "scikit-learn GridSearchCV, jaxnn pipeline"
SKLEARN_SEARCH = "scikit-learn GridSearchCV, MLPClassifier"
SEARCHES = (JAXNN_SEARCH, SEQUENTIAL_SEARCH, SKLEARN_SEARCH)
SEARCH_NOT_AVAILABLE = "not available: jaxnn.model_selection is not installed in this checkout"


# --------------------------------------------------------------------------------------------------
# Populations of the seed's iris network.


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    """The seed's standardised training split as float32 inputs and one-hot targets (as regime a)."""
    from jaxnn.data import iris_split, one_hot

    split = iris_split()
    return split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)


def final_losses(history) -> np.ndarray:
    """The last finite loss of every row of a ``(members, epochs)`` history (NaN pads a member that ended early)."""
    history = np.asarray(history, dtype=float).reshape(-1, np.shape(history)[-1])
    return np.array([row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in history])


def population_and_sequential(size: int, epochs: int, repeats: int, run_all_up_to: int) -> dict:
    """One population size: ``fit_many`` of ``size`` members against ``jaxnn.fit`` of each member in turn."""
    import jax

    import jaxnn
    from jaxnn.engine import default_group_size, member

    x, y = iris_data()
    model = workers.seed_network()
    settings = {"loss": "categorical_cross_entropy", "epochs": epochs}
    params = model.init_many(jax.random.split(jax.random.key(0), size), x.shape[1])
    n_sequential = min(size, run_all_up_to)
    lone_params = [jax.tree.map(np.asarray, member(params, i)) for i in range(n_sequential)]

    def population():
        result = jaxnn.fit_many(model, params, x, y, optimizer="gd", learning_rate=workers.LEARNING_RATE, **settings)
        return np.asarray(jax.block_until_ready(result.history))

    def sequential():
        results = [jaxnn.fit(model, p, x, y, learning_rate=workers.LEARNING_RATE, **settings) for p in lone_params]
        return np.stack([np.asarray(jax.block_until_ready(r.history)) for r in results])

    first_population_s, population_history = timed(population)
    first_sequential_s, sequential_history = timed(sequential)
    runs = {"population": population, "sequential": sequential}
    times = interleaved({name: partial(seconds, run) for name, run in runs.items()}, repeats, pause_s=0.0)
    population_s, measured_sequential_s = statistics.median(times["population"]), statistics.median(times["sequential"])
    sequential_s = measured_sequential_s * size / n_sequential
    lone, together = final_losses(sequential_history), final_losses(population_history)[:n_sequential]
    return {
        "members": size,
        "group_size": default_group_size(size),
        "population_s": population_s,
        "sequential_s": sequential_s,
        "sequential_estimated": n_sequential < size,
        "sequential_fits_run": n_sequential,
        "population_over_sequential": population_s / sequential_s,
        "population_first_call_s": first_population_s,
        "sequential_first_call_s": first_sequential_s,
        "population_runs_s": times["population"],
        "sequential_runs_s": times["sequential"],
        "final_loss_member_0": float(together[0]),
        "max_relative_final_loss_difference": float(np.max(np.abs(together - lone) / np.abs(lone))),
    }


def populations(settings: dict) -> dict:
    """Every population size of ``settings["sizes"]``, smallest first, in this one process."""
    workers.warm_up_xla()
    sizes = sorted(int(size) for size in settings["sizes"])
    rows = [
        population_and_sequential(size, settings["epochs"], settings["repeats"], settings["sequential_run_all_up_to"])
        for size in sizes
    ]
    return {"device": device(), "epochs": settings["epochs"], "sizes": rows}


# --------------------------------------------------------------------------------------------------
# Grid search on wine.


def search_class(library: str):
    """The ``GridSearchCV`` class that ``library`` runs, or a string saying why it cannot run."""
    if library != JAXNN_SEARCH:
        from sklearn.model_selection import GridSearchCV

        return GridSearchCV
    if importlib.util.find_spec("jaxnn.model_selection") is None:
        return SEARCH_NOT_AVAILABLE
    try:
        from jaxnn.model_selection import GridSearchCV
    except ImportError as error:  # a module being written: reported in the table, not a failed benchmark
        return f"not available: importing jaxnn.model_selection failed ({error})"
    return GridSearchCV


def wine_pipeline(library: str, max_iter: int):
    """``StandardScaler`` then a (16,) ReLU network with Adam, ``random_state=0``; jaxnn's or scikit-learn's."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if library == SKLEARN_SEARCH:
        from sklearn.neural_network import MLPClassifier

        network = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", random_state=0, max_iter=max_iter)
    else:
        from jaxnn import NeuralNetClassifier

        network = NeuralNetClassifier(
            hidden_layer_sizes=(16,), solver="adam", random_state=0, max_iter=max_iter, learning_rate_init=0.01
        )
    return Pipeline([("scale", StandardScaler()), ("net", network)])


def search(settings: dict) -> dict:
    """One library's search, run ``1 + warm_runs`` times in this process: the first is cold, the rest warm."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import StratifiedKFold

    library = settings["library"]
    grid_search = search_class(library)
    if isinstance(grid_search, str):
        return {"library": library, "skipped": grid_search}
    workers.quiet_sklearn()  # MLPClassifier warns at max_iter (ConvergenceWarning): expected here
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    grid = {"net__learning_rate_init": settings["learning_rates"], "net__alpha": settings["alphas"]}
    folds = StratifiedKFold(settings["folds"], shuffle=True, random_state=0)

    def run():
        pipeline = wine_pipeline(library, settings["max_iter"])
        return grid_search(pipeline, grid, cv=folds, n_jobs=1).fit(x, y)

    first_s, fitted = timed(run)
    warm_s = [timed(run)[0] for _ in range(settings["warm_runs"])]
    return {
        "library": library,
        "device": {"platform": "cpu", "device": "scikit-learn (NumPy)"} if library == SKLEARN_SEARCH else device(),
        "first_run_s": first_s,
        "warm_s": statistics.median(warm_s),
        "warm_runs_s": warm_s,
        "best_score": float(fitted.best_score_),
        "best_params": {name.removeprefix("net__"): value for name, value in fitted.best_params_.items()},
        "candidates": len(fitted.cv_results_["params"]),
        "folds": int(fitted.n_splits_),
    }


# --------------------------------------------------------------------------------------------------
# The command line.


def device() -> dict:
    """The backend JAX picked (``cpu``, ``gpu``, ``tpu``) and its first device's kind."""
    import jax

    first = jax.devices()[0]
    return {"platform": jax.default_backend(), "device": getattr(first, "device_kind", str(first))}


COMMANDS = {"device": lambda settings: device(), "populations": populations, "search": search}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: population.py {{{'|'.join(COMMANDS)}}} [SETTINGS_JSON]")
    settings = json.loads(argv[1]) if len(argv) > 1 else {}
    print(json.dumps(COMMANDS[argv[0]](settings)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
