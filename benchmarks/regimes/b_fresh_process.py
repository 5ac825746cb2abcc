"""Regime b: times the regime-a fit as ``python -c ...`` in a fresh process, from launch to exit.

jaxnn (core API and estimator) runs with its persistent compilation cache empty ('cold') and filled by an
earlier run ('warm'); the bare imports of JAX and of scikit-learn's data sets are timed too, for scale.
"""

from __future__ import annotations

import statistics
import tempfile
import textwrap

from orchestration import byte_compile_jaxnn, fresh_process_seconds, interleaved, worker_env

from regimes.common import Config, competitor_names, ratio, skipped, target

_IRIS_DATA = """
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
x, y = load_iris(return_X_y=True)
x_train, _, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=42)
x_train = StandardScaler().fit_transform(x_train).astype("float32")
"""

_JAXNN_FIT = """
model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
params = model.init(jax.random.key(0), 4)
result = jaxnn.fit(model, params, x_train, one_hot(y_train, 3), loss="categorical_cross_entropy",
                   epochs={epochs}, learning_rate=0.1)
print(float(result.history[-1]))
"""

FRESH_PROCESS_SCRIPTS = {
    # jaxnn's own iris loader and split (jaxnn.data) import no scikit-learn; the split is the same.  A script of
    # the core API opts in to the persistent compilation cache (JAXNN_COMPILE_CACHE=0 keeps it off).
    "jaxnn": """
import jax
import jaxnn
jaxnn.compile_cache.enable_default()
from jaxnn.data import iris_split, one_hot
x_train, _, y_train, _ = iris_split()
"""
    + _JAXNN_FIT,
    # The same with the data loaded through scikit-learn as the other scripts do, to show what that import costs.
    "jaxnn, data via scikit-learn": """
import jax
import jaxnn
jaxnn.compile_cache.enable_default()
from jaxnn.data import one_hot
"""
    + _IRIS_DATA
    + _JAXNN_FIT,
    # The scikit-learn script below with jaxnn's estimator (whose fit turns the compilation cache on itself).
    "NeuralNetClassifier": """
import warnings
from jaxnn import NeuralNetClassifier
"""
    + _IRIS_DATA
    + """
warnings.filterwarnings("ignore")
classifier = NeuralNetClassifier(hidden_layer_sizes=(10, 5), activation="relu", solver="gd", alpha=0.0, tol=0.0,
                                 n_iter_no_change={epochs}, max_iter={epochs}, learning_rate_init=0.1,
                                 loss="categorical_cross_entropy", init="normal", random_state=0).fit(x_train, y_train)
print(classifier.loss_)
""",
    "scikit-learn": """
import warnings
from sklearn.neural_network import MLPClassifier
"""
    + _IRIS_DATA
    + """
warnings.filterwarnings("ignore")
classifier = MLPClassifier(hidden_layer_sizes=(10, 5), activation="relu", solver="sgd", batch_size=len(x_train),
                           momentum=0.0, alpha=0.0, tol=0.0, n_iter_no_change={epochs}, max_iter={epochs},
                           learning_rate_init=0.1, shuffle=False, random_state=0).fit(x_train, y_train)
print(classifier.loss_)
""",
    "NumPy": """
import numpy as np
import numpy_net
"""
    + _IRIS_DATA
    + """
rng = np.random.default_rng(0)
params = [(np.float32(0.1) * rng.standard_normal((n_out, n_in), np.float32),
           np.float32(0.1) * rng.standard_normal((n_out, 1), np.float32)) for n_in, n_out in ((4, 10), (10, 5), (5, 3))]
_, losses = numpy_net.fit(params, np.ascontiguousarray(x_train.T), np.eye(3, dtype=np.float32)[y_train].T,
                          epochs={epochs}, learning_rate=0.1)
print(losses[-1])
""",
    "PyTorch": """
import numpy as np
import torch_net
torch_net.torch.set_num_threads(1)  # as in regime a: one thread for tensors this small
"""
    + _IRIS_DATA
    + """
rng = np.random.default_rng(0)
params = [{{"W": np.float32(0.1) * rng.standard_normal((n_in, n_out), np.float32),
            "b": np.float32(0.1) * rng.standard_normal(n_out, np.float32)}}
          for n_in, n_out in ((4, 10), (10, 5), (5, 3))]
losses = torch_net.fit(params, x_train, y_train, epochs={epochs}, learning_rate=0.1, head="categorical_cross_entropy")
print(losses[-1])
""",
}


ESTIMATOR_COLD, ESTIMATOR_WARM = "NeuralNetClassifier (cache cold)", "NeuralNetClassifier (cache warm)"

# The first fit of each solver, as a user's script makes it: MLP's defaults with hidden_layer_sizes=(100,), fit and
# predict once on iris (float64, as scikit-learn loads it).  jaxnn's 'gd' is full-batch descent, which scikit-learn
# writes as 'sgd' with one batch and no momentum.
_FIRST_FIT = """
import warnings
from sklearn.datasets import load_iris
from {module} import {estimator}
warnings.filterwarnings("ignore")
x, y = load_iris(return_X_y=True)
print({estimator}((100,), random_state=0, {options}).fit(x, y).predict(x[:5]))
"""
FIRST_FIT_OPTIONS = {
    "gd": ("solver='gd'", "solver='sgd', batch_size=150, momentum=0.0"),
    "sgd": ("solver='sgd'", "solver='sgd'"),
    "adam": ("solver='adam'", "solver='adam'"),
    "lbfgs": ("solver='lbfgs'", "solver='lbfgs'"),
}


def first_fits(config: Config) -> tuple[dict, list[dict]]:
    """Per solver: a fresh process that fits and predicts once, jaxnn with its cache empty and filled, against
    scikit-learn's; interleaved rounds, medians."""
    runs = {}
    with tempfile.TemporaryDirectory() as caches:
        for solver in config.first_fit_solvers:
            jaxnn_options, sklearn_options = FIRST_FIT_OPTIONS[solver]
            jaxnn_script = _FIRST_FIT.format(module="jaxnn", estimator="NeuralNetClassifier", options=jaxnn_options)
            sklearn_script = _FIRST_FIT.format(
                module="sklearn.neural_network", estimator="MLPClassifier", options=sklearn_options
            )
            cold_caches = iter(range(config.fresh_process_runs))
            warm_env = worker_env(f"{caches}/{solver}-0")  # filled by the first cold run

            def cold(script=jaxnn_script, solver=solver, cold_caches=cold_caches):
                return fresh_process_seconds(script, worker_env(f"{caches}/{solver}-{next(cold_caches)}"))

            runs[(solver, "jaxnn, cache cold")] = cold
            runs[(solver, "jaxnn, cache warm")] = lambda script=jaxnn_script, env=warm_env: fresh_process_seconds(
                script, env
            )
            runs[(solver, "scikit-learn")] = lambda script=sklearn_script: fresh_process_seconds(script, worker_env())
        times = interleaved(runs, config.fresh_process_runs)
    table: dict = {}
    targets = []
    for (solver, who), seconds in times.items():
        table.setdefault(solver, {})[who] = statistics.median(seconds)
    for solver, row in table.items():
        for who, limit in (("jaxnn, cache warm", 1.5), ("jaxnn, cache cold", 2.0)):
            claim = f"{solver}: fresh process fitting and predicting once ≤ {limit:g}× scikit-learn's ({who[7:]})"
            targets.append(target("b", claim, ratio(row[who], row["scikit-learn"]), limit, higher_is_better=False))
    return table, targets


def measure(config: Config) -> dict:
    """Every script launched once per round, in interleaved rounds; medians of the wall times.  jaxnn's modules
    are byte-compiled first, as an installed package's are (:func:`orchestration.byte_compile_jaxnn`)."""
    byte_compile_jaxnn()
    env = worker_env()
    scripts = {name: textwrap.dedent(s).format(epochs=config.epochs) for name, s in FRESH_PROCESS_SCRIPTS.items()}
    idle = ("import jax", "import sklearn.datasets")
    with tempfile.TemporaryDirectory() as caches:
        cold_caches = iter(range(config.fresh_process_runs))  # a new, empty cache directory for every cold run
        warm_env = worker_env(f"{caches}/0")  # filled by the first cold run

        def cold_jaxnn():
            return fresh_process_seconds(scripts["jaxnn"], worker_env(f"{caches}/{next(cold_caches)}"))

        cold_estimator_caches = iter(range(config.fresh_process_runs))
        warm_estimator_env = worker_env(f"{caches}/estimator-0")  # filled by the estimator's first cold run

        def cold_estimator():
            cache = f"{caches}/estimator-{next(cold_estimator_caches)}"
            return fresh_process_seconds(scripts["NeuralNetClassifier"], worker_env(cache))

        runs = {
            "jaxnn (cache cold)": cold_jaxnn,
            "jaxnn (cache warm)": lambda: fresh_process_seconds(scripts["jaxnn"], warm_env),
            "jaxnn (cache warm), iris via scikit-learn": lambda: fresh_process_seconds(
                scripts["jaxnn, data via scikit-learn"], warm_env
            ),
            ESTIMATOR_COLD: cold_estimator,
            ESTIMATOR_WARM: lambda: fresh_process_seconds(scripts["NeuralNetClassifier"], warm_estimator_env),
        }
        for name in competitor_names(("scikit-learn", "NumPy", "PyTorch")):
            runs[name] = lambda script=scripts[name]: fresh_process_seconds(script, env)
        for imports in idle:
            runs[imports] = lambda imports=imports: fresh_process_seconds(imports, env)
        times = interleaved(runs, config.fresh_process_runs)  # each round launches every script once
    idle_s = {imports: statistics.median(times.pop(imports)) for imports in idle}
    solvers, solver_targets = first_fits(config)
    competitors = {name: {"seconds": statistics.median(t), "runs_s": t} for name, t in times.items()}
    sklearn_s = competitors["scikit-learn"]["seconds"]
    return {
        "description": (
            f"the regime-a fit ({config.epochs} epochs) as `python -c ...` in a new process: wall time including "
            "interpreter start, imports, loading iris, initialisation, compilation, training and exit; jaxnn's "
            "persistent compilation cache (~/.cache/jaxnn/xla: switched on by the script for the core API, by fit "
            "itself for the estimator) empty ('cold', the very first run) or filled by an earlier run ('warm')"
        ),
        "unit": "s",
        "competitors": skipped(competitors, ("PyTorch",)),
        "idle_interpreter_s": idle_s,
        "first_fit_per_solver_s": solvers,
        "targets": [
            *solver_targets,
            target(
                "b",
                "jaxnn fresh process ≤ 1.5× scikit-learn's (cache warm, the default after the first run)",
                ratio(competitors["jaxnn (cache warm)"]["seconds"], sklearn_s),
                1.5,
                higher_is_better=False,
            ),
            target(
                "b",
                "NeuralNetClassifier fresh process ≤ 1.3× scikit-learn's (cache cold: the very first run)",
                ratio(competitors[ESTIMATOR_COLD]["seconds"], sklearn_s),
                1.3,
                higher_is_better=False,
            ),
            target(
                "b",
                "NeuralNetClassifier fresh process ≤ 1.0× scikit-learn's (cache warm: every later run)",
                ratio(competitors[ESTIMATOR_WARM]["seconds"], sklearn_s),
                1.0,
                higher_is_better=False,
            ),
        ],
    }
