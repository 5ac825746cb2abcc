"""Each competitor in a process of its own, timed on command.

``benchmarks/run.py`` starts ``python benchmarks/workers.py REGIME NAMES_JSON SETTINGS_JSON`` for
every competitor of a regime (or for a few that share one process).  The worker imports only its own
libraries, builds each job (a full iris fit, a model-selection task or training steps on a large
batch) and runs it once (the warm-up: JAX compiles here), answering one JSON line per job; after that
it answers one line per command on stdin:

* ``run INDEX`` → ``{"seconds": ...}``: job INDEX once more, timed inside the worker;
* ``quit``      → ``{"peak_mb": ...}``: the process's peak resident memory, then it exits.

Separate processes keep the libraries' thread pools apart (PyTorch's OpenMP threads spinning beside
XLA's slowed both by 10× and more when they shared one process), give each its own cold compilation
and make peak memory a per-competitor number.  The JAX competitors of regime a share one process
instead: between processes the same program's speed varies by several per cent (memory layout), more
than the rules-versus-autodiff difference to be measured.  The driver times the competitors in
interleaved rounds, so a busy spell of a shared machine hits them all alike.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from orchestration import seconds  # noqa: E402

LEARNING_RATE = 0.1  # the seed's (regimes a and c)
STEP_LEARNING_RATE = 0.01  # regime d


class Job(NamedTuple):
    """What a worker runs on each ``run`` command, and what it reports once, after its warm-up."""

    run: Callable[[], object]
    report: Callable[[object], dict]  # from the warm-up's return value to the setup report


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: ``VmHWM`` from ``/proc/self/status``.

    (``ru_maxrss`` would not do: Linux carries the parent's peak over ``fork``/``exec`` into it.)
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: peak memory is measured on Linux only")


def quiet_sklearn() -> None:
    """scikit-learn warns at max_iter (ConvergenceWarning) and when batch_size exceeds a fold: expected here."""
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def last_loss(losses) -> dict:
    return {"final_loss": float(np.asarray(losses)[-1])}


def use_jaxnn_cache() -> None:
    """Switch jaxnn's persistent compilation cache on, as a script of the core API opts in to it (the
    estimators do it themselves); ``JAXNN_COMPILE_CACHE=0``, the driver's default for workers, keeps it off."""
    from jaxnn import compile_cache

    compile_cache.enable_default()


# --------------------------------------------------------------------------------------------------
# Regime a: a full-batch fit of the seed's iris network; data and initial weights come from the driver.


class IrisProblem(NamedTuple):
    x: np.ndarray  # (112, 4) float32, standardised
    labels: np.ndarray  # (112,) int
    y: np.ndarray  # (112, 3) one-hot float32
    params: list[dict[str, np.ndarray]]  # jaxnn layout
    x64: np.ndarray  # x standardised in float64 (the float64 rows)


def load_iris_problem(path: str) -> IrisProblem:
    with np.load(path, allow_pickle=False) as data:
        n_layers = sum(name.startswith("W") for name in data.files)
        params = [{"W": data[f"W{i}"], "b": data[f"b{i}"]} for i in range(n_layers)]
        return IrisProblem(data["x"], data["labels"], data["y"], params, data["x64"])


def seed_network(last: str = "softmax"):
    import jaxnn

    return jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, last)))


def a_jaxnn(problem: IrisProblem, epochs: int, dtype=np.float32) -> Job:
    """``jaxnn.fit``; in float64 (the float32 weights widened, inside ``jax.enable_x64``) for the float64 row."""
    import jax

    import jaxnn

    model, optimizer = seed_network(), jaxnn.gradient_descent(LEARNING_RATE)
    p = problem
    wide = dtype == np.float64
    x, y = (p.x64, p.y.astype(np.float64)) if wide else (p.x, p.y)
    params = jax.tree.map(lambda a: a.astype(dtype), p.params)

    def run():
        with jax.enable_x64(wide):
            result = jaxnn.fit(
                model, params, x, y, loss="categorical_cross_entropy", epochs=epochs, optimizer=optimizer
            )
            return jax.block_until_ready(result.history)

    return Job(run, last_loss)


def a_autodiff(problem: IrisProblem, epochs: int) -> Job:
    """The same compiled loop as ``jaxnn.fit`` (layout, guard, update) with autodiff in place of the rules."""
    import jax
    import jax.numpy as jnp

    import jaxnn
    from jaxnn.engine import RunSpec, train_one

    model, optimizer = seed_network(), jaxnn.gradient_descent(LEARNING_RATE)
    loss = jaxnn.get_loss("categorical_cross_entropy")
    p = problem
    spec = RunSpec(model, loss, optimizer, batch_size=len(p.x), custom_rules=False, layout="columns")
    x, y, weight = jnp.asarray(p.x), jnp.asarray(p.y), jnp.ones(len(p.x), jnp.float32)

    def run_autodiff():
        result = train_one(
            spec,
            params=p.params,
            opt_state=optimizer.init(p.params),
            x=x,
            y=y,
            weight=weight,
            key=jax.random.key(0),
            start_epoch=0,
            epochs=epochs,
        )
        return jax.block_until_ready(result.history)

    return Job(run_autodiff, last_loss)


def a_naive_autodiff(problem: IrisProblem, epochs: int) -> Job:
    """``jax.grad`` of ``model.apply`` (plain forwards, batch-first) and a gradient step, in one ``lax.scan``."""
    import jax
    import jax.numpy as jnp

    import jaxnn

    model, loss = seed_network(), jaxnn.get_loss("categorical_cross_entropy")

    def loss_of(params, x, y):
        return loss.forward(model.apply(params, x, custom_rules=False), y)

    @jax.jit
    def train(params, x, y):
        def epoch(params, _):
            value, grads = jax.value_and_grad(loss_of)(params, x, y)
            return jax.tree.map(lambda w, g: w - LEARNING_RATE * g, params, grads), value

        return jax.lax.scan(epoch, params, None, length=epochs)[1]

    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    return Job(lambda: jax.block_until_ready(train(problem.params, x, y)), last_loss)


def a_numpy(problem: IrisProblem, epochs: int) -> Job:
    import numpy_net

    params = numpy_net.from_batch_first(problem.params)
    x_columns, y_columns = np.ascontiguousarray(problem.x.T), np.ascontiguousarray(problem.y.T)

    def run():
        return numpy_net.fit(params, x_columns, y_columns, epochs=epochs, learning_rate=LEARNING_RATE)[1]

    return Job(run, last_loss)


def sklearn_iris_classifier(epochs: int, batch_size: int | str):
    """MLPClassifier doing exactly the seed's training: plain gradient descent for ``epochs`` epochs."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(10, 5),
        activation="relu",
        solver="sgd",
        batch_size=batch_size,
        momentum=0.0,
        alpha=0.0,
        tol=0.0,
        n_iter_no_change=epochs,
        max_iter=epochs,
        learning_rate_init=LEARNING_RATE,
        shuffle=False,
        random_state=0,
    )


def a_sklearn(problem: IrisProblem, epochs: int, dtype=np.float32) -> Job:
    quiet_sklearn()
    x = problem.x if dtype == np.float32 else problem.x64

    def run():
        return sklearn_iris_classifier(epochs, batch_size=len(x)).fit(x, problem.labels).loss_curve_

    return Job(run, last_loss)


def jaxnn_iris_classifier(epochs: int):
    """NeuralNetClassifier doing the seed's training (the regime-a network, loss and initialiser), as
    MLPClassifier above: plain full-batch gradient descent for ``epochs`` epochs, no penalty, no early end."""
    from jaxnn import NeuralNetClassifier

    return NeuralNetClassifier(
        hidden_layer_sizes=(10, 5),
        activation="relu",
        solver="gd",
        alpha=0.0,
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=100_000,
        loss="categorical_cross_entropy",
        init="normal",
        random_state=0,
    )


def a_estimator(problem: IrisProblem, epochs: int, dtype) -> Job:
    """The whole ``NeuralNetClassifier.fit`` (checks, encoding, initial weights, training, attributes); float64
    input trains in float64, as scikit-learn's MLP does."""
    quiet_sklearn()
    x = problem.x if dtype == np.float32 else problem.x64

    def run():
        return jaxnn_iris_classifier(epochs).fit(x, problem.labels).loss_curve_

    return Job(run, last_loss)


def a_torch(problem: IrisProblem, epochs: int) -> Job:
    """One thread: tensors of 112 × 10 gain nothing from more, and on a busy machine OpenMP's second thread
    makes every op wait for a core (15 ms instead of 0.35 ms per epoch measured here)."""
    import torch_net

    torch_net.torch.set_num_threads(1)

    def run():
        p = problem
        return torch_net.fit(
            p.params, p.x, p.labels, epochs=epochs, learning_rate=LEARNING_RATE, head="categorical_cross_entropy"
        )

    return Job(run, last_loss)


ESTIMATOR_32, ESTIMATOR_64 = "NeuralNetClassifier, float32 input", "NeuralNetClassifier, float64 input"
JAXNN_64, SKLEARN_64 = "jaxnn, float64", "scikit-learn, float64 input"
REGIME_A = {
    "jaxnn": a_jaxnn,
    JAXNN_64: lambda problem, epochs: a_jaxnn(problem, epochs, np.float64),
    "jax.grad": a_autodiff,
    "jax.grad naive": a_naive_autodiff,
    ESTIMATOR_32: lambda problem, epochs: a_estimator(problem, epochs, np.float32),
    ESTIMATOR_64: lambda problem, epochs: a_estimator(problem, epochs, np.float64),
    "NumPy": a_numpy,
    "scikit-learn": a_sklearn,
    SKLEARN_64: lambda problem, epochs: a_sklearn(problem, epochs, np.float64),
    "PyTorch": a_torch,
}
# Competitors compared with each other share one process (between processes the same program's speed varies
# by several per cent, scikit-learn's by up to a third): JAX's (the estimator rows too), and scikit-learn's two.
JAX_COMPETITORS_A = ("jaxnn", JAXNN_64, "jax.grad", "jax.grad naive", ESTIMATOR_32, ESTIMATOR_64)
SKLEARN_COMPETITORS_A = ("scikit-learn", SKLEARN_64)


# --------------------------------------------------------------------------------------------------
# Regime c: model selection on iris with scikit-learn's tools.

GRID = {"learning_rate_init": [0.05, 0.1], "alpha": [0.0, 1e-3]}
TASKS = ("cross_val_score (5 folds)", "GridSearchCV (4 candidates × 5 folds + refit)")


def jaxnn_classifier(epochs: int):
    from jaxnn import NeuralNetClassifier

    return NeuralNetClassifier(
        hidden_layer_sizes=(10, 5),
        activation="relu",
        solver="gd",
        alpha=0.0,
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs,
        random_state=0,
    )


def c_selection(library: str, task: str, epochs: int) -> Job:
    """One task on the full iris data, standardised inside a pipeline, with either library's classifier."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    quiet_sklearn()  # the estimator's fit turns jaxnn's compilation cache on itself (unless JAXNN_COMPILE_CACHE=0)
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)

    def pipeline():
        classifier = jaxnn_classifier(epochs) if library == "jaxnn" else sklearn_iris_classifier(epochs, len(x))
        return Pipeline([("scale", StandardScaler()), ("estimator", classifier)])

    if task == TASKS[0]:
        return Job(lambda: cross_val_score(pipeline(), x, y, cv=5), lambda scores: {"score": float(np.mean(scores))})
    grid = {f"estimator__{name}": values for name, values in GRID.items()}
    return Job(lambda: GridSearchCV(pipeline(), grid, cv=5).fit(x, y).best_score_, lambda best: {"score": float(best)})


# --------------------------------------------------------------------------------------------------
# Regime d: one training step of a large network on a large batch.


def synthetic_batch(sizes: tuple[int, ...], batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    return x, labels, np.eye(sizes[-1], dtype=np.float32)[labels]


def he_params(sizes: tuple[int, ...]) -> list[dict[str, np.ndarray]]:
    """He-normal weights and zero biases in jaxnn's layout, drawn with NumPy (no JAX in that process)."""
    rng = np.random.default_rng(1)
    return [
        {
            "W": rng.standard_normal((n_in, n_out), np.float32) * np.float32(np.sqrt(2 / n_in)),
            "b": np.zeros(n_out, np.float32),
        }
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def loss_report(value) -> dict:
    return {"loss": float(value)}


def d_jax(sizes, batch, custom_rules: bool = True) -> Job:
    """jaxnn's step with params and optimiser state donated (updated in place), or the same with autodiff."""
    import jax
    import jax.numpy as jnp

    import jaxnn
    from jaxnn.engine import RunSpec, decide_layout, step

    use_jaxnn_cache()
    idle_mb = peak_rss_mb()
    x, _, y = synthetic_batch(sizes, batch)
    hidden = tuple(jaxnn.Dense(units, "relu") for units in sizes[1:-1])
    model = jaxnn.Sequential((*hidden, jaxnn.Dense(sizes[-1], "identity")))
    loss, optimizer = jaxnn.get_loss("softmax_cross_entropy"), jaxnn.gradient_descent(STEP_LEARNING_RATE)
    params = jax.tree.map(jnp.asarray, he_params(sizes))
    x, y = jnp.asarray(x), jnp.asarray(y)
    layout = decide_layout(None, model, sizes[0])
    if custom_rules:
        one_step = jaxnn.make_train_step(model, loss, optimizer, in_place=True, layout=layout)
    else:  # the same compiled step (layout, guard, update) with JAX's autodiff in place of the rules
        spec = RunSpec(model, loss, optimizer, batch_size=batch, custom_rules=False, layout=layout)
        one_step = step(spec, in_place=True)
    state = [params, optimizer.init(params)]

    def run():
        state[0], state[1], value = one_step(state[0], state[1], x, y)
        return jax.block_until_ready(value)

    return Job(run, lambda value: {"loss": float(value), "idle_mb": idle_mb})


def d_numpy(sizes, batch) -> Job:
    import numpy_net

    idle_mb = peak_rss_mb()
    x, _, y = synthetic_batch(sizes, batch)
    params = numpy_net.from_batch_first(he_params(sizes))
    x_columns, y_columns, lr = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), np.float32(STEP_LEARNING_RATE)

    def run():
        return numpy_net.train_step(params, x_columns, y_columns, lr, "softmax_cross_entropy")[1]

    return Job(run, lambda value: {"loss": float(value), "idle_mb": idle_mb})


def d_sklearn(sizes, batch) -> Job:
    """``partial_fit`` on the one batch: scikit-learn's public single step (it validates its input each call)."""
    from sklearn.neural_network import MLPClassifier

    quiet_sklearn()
    idle_mb = peak_rss_mb()
    x, labels, _ = synthetic_batch(sizes, batch)
    classifier = MLPClassifier(
        hidden_layer_sizes=sizes[1:-1],
        activation="relu",
        solver="sgd",
        batch_size=batch,
        momentum=0.0,
        alpha=0.0,
        learning_rate_init=STEP_LEARNING_RATE,
        shuffle=False,
        random_state=0,
    )
    classifier.partial_fit(x, labels, classes=np.arange(sizes[-1]))

    def run():
        return classifier.partial_fit(x, labels).loss_

    return Job(run, lambda value: {"loss": float(value), "idle_mb": idle_mb})


def d_torch(sizes, batch) -> Job:
    import torch_net

    idle_mb = peak_rss_mb()
    torch = torch_net.torch
    x, labels, y = synthetic_batch(sizes, batch)
    step = torch_net.make_step(torch_net.build(he_params(sizes)), STEP_LEARNING_RATE, "softmax_cross_entropy")
    x_t, labels_t, y_t = torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(y)
    return Job(lambda: step(x_t, labels_t, y_t).item(), lambda value: {"loss": float(value), "idle_mb": idle_mb})


REGIME_D = {
    "jaxnn": d_jax,
    "jax.grad": lambda sizes, batch: d_jax(sizes, batch, custom_rules=False),
    "NumPy": d_numpy,
    "scikit-learn": d_sklearn,
    "PyTorch": d_torch,
}


def repeated(step: Callable[[], object], times: int) -> Callable[[], object]:
    """``step`` run ``times`` times back to back (steady-state throughput); returns the last result."""

    def run():
        for _ in range(times):
            result = step()
        return result

    return run


# --------------------------------------------------------------------------------------------------
# The worker loop.


def make_job(regime: str, name: str, settings: dict) -> Job:
    if regime == "a":
        return REGIME_A[name](load_iris_problem(settings["problem"]), settings["epochs"])
    if regime == "c":
        library, task = name.split(": ", 1)
        return c_selection(library, task, settings["epochs"])
    if regime == "d":
        one_step = REGIME_D[name](tuple(settings["sizes"]), settings["batch"])
        return Job(repeated(one_step.run, settings["steps"]), one_step.report)
    if regime == "g":
        import medium

        return Job(*medium.make_job(name, settings))
    raise ValueError(f"unknown regime {regime!r}")


def reply(message: dict) -> None:
    print(json.dumps(message), flush=True)


def warm_up_xla() -> None:
    """Compile and run a trivial program, so that XLA's one-time start-up is not charged to the first job."""
    import jax

    jax.block_until_ready(jax.jit(lambda v: v + 1)(np.zeros(2, np.float32)))


def serve(regime: str, names: list[str], settings: dict) -> None:
    """Build the jobs, warm each up (one reply per job: its first call's time and report), then answer
    ``run INDEX`` (time job INDEX once more) and ``quit`` (peak memory, then exit)."""
    if settings.get("warm_up_xla"):
        warm_up_xla()
    jobs = []
    for name in names:
        job = make_job(regime, name, settings)
        start = time.perf_counter()
        warm_up = job.run()
        reply({"first_call_s": time.perf_counter() - start, **job.report(warm_up)})
        jobs.append(job)
    for command in sys.stdin:
        match command.split():
            case ["run", index]:
                reply({"seconds": seconds(jobs[int(index)].run)})
            case ["quit"]:
                reply({"peak_mb": peak_rss_mb()})
                return
            case _:
                raise ValueError(f"unknown command {command.strip()!r}: expected 'run INDEX' or 'quit'")


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]))
