"""Regime b: times the regime-a fit as ``python -c ...`` in a fresh process, from launch to exit.

jaxnn (core API and estimator) runs with its persistent compilation cache empty ('cold') and filled by an
earlier run ('warm'); the bare imports of JAX and of scikit-learn's data sets are timed too, for scale.
"""

from __future__ import annotations

import statistics
import tempfile
import textwrap

from orchestration import fresh_process_seconds, interleaved, worker_env

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


def measure(config: Config) -> dict:
    """Every script launched once per round, in interleaved rounds; medians of the wall times."""
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
        "targets": [
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
