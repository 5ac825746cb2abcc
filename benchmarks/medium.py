"""Regime g's jobs: a medium table trained end to end, one function per competitor (run in ``workers.py``).

The problem (:func:`make_problem`): ``make_classification`` rows of 784 features in 10 classes, split into
training and validation rows, saved once by the driver so every worker reads the same arrays.  Every
competitor trains ``784 → 256 ReLU → 128 ReLU → 10 softmax`` with Adam (learning rate 1e-3, batch 256,
reshuffled every epoch) from its own library's initial weights for a given number of epochs; its report is
the validation accuracy reached.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np

HIDDEN = (256, 128)
N_FEATURES = 784
N_CLASSES = 10
BATCH = 256
LEARNING_RATE = 1e-3


class Problem(NamedTuple):
    x: np.ndarray
    labels: np.ndarray
    x_val: np.ndarray
    labels_val: np.ndarray


def make_problem(path: Path, n_train: int, n_val: int) -> None:
    """Generate the data (standardised on the training rows, float64 as scikit-learn makes it) into ``path``."""
    from sklearn.datasets import make_classification

    x, labels = make_classification(
        n_samples=n_train + n_val,
        n_features=N_FEATURES,
        n_informative=64,
        n_redundant=64,
        n_classes=N_CLASSES,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=0,
    )
    mean, scale = x[:n_train].mean(axis=0), x[:n_train].std(axis=0)
    x = (x - mean) / scale
    np.savez(path, x=x[:n_train], labels=labels[:n_train], x_val=x[n_train:], labels_val=labels[n_train:])


def load_problem(path: str, dtype: str) -> Problem:
    data = np.load(path)
    return Problem(data["x"].astype(dtype), data["labels"], data["x_val"].astype(dtype), data["labels_val"])


def accuracy(predicted_labels, labels) -> dict:
    return {"val_accuracy": float(np.mean(np.asarray(predicted_labels) == labels))}


def _classifier_job(classifier_class, problem: Problem, epochs: int):
    """A scikit-learn-style classifier as a user writes it: ``fit`` then ``predict``, the regime's settings."""

    def run():
        classifier = classifier_class(
            HIDDEN, batch_size=BATCH, learning_rate_init=LEARNING_RATE, max_iter=epochs, tol=0.0,
            n_iter_no_change=10**9, random_state=0,
        )  # fmt: skip
        return classifier.fit(problem.x, problem.labels)

    return run, lambda classifier: accuracy(classifier.predict(problem.x_val), problem.labels_val)


def estimator(problem: Problem, epochs: int):
    """jaxnn's ``NeuralNetClassifier``."""
    from jaxnn import NeuralNetClassifier

    return _classifier_job(NeuralNetClassifier, problem, epochs)


def sklearn_mlp(problem: Problem, epochs: int):
    """scikit-learn's ``MLPClassifier`` with the same settings."""
    from sklearn.neural_network import MLPClassifier

    return _classifier_job(MLPClassifier, problem, epochs)


def _model():
    from jaxnn.layers import Dense, Sequential

    return Sequential((*tuple(Dense(units, "relu") for units in HIDDEN), Dense(N_CLASSES, "softmax")))


def core_fit(problem: Problem, epochs: int):
    """``jaxnn.fit`` with the engine's layout choice."""
    import jax

    import jaxnn

    model = _model()
    params = model.init(jax.random.key(0), N_FEATURES)
    y = np.eye(N_CLASSES, dtype=problem.x.dtype)[problem.labels]

    def run():
        return jaxnn.fit(
            model, params, problem.x, y, loss="categorical_cross_entropy", epochs=epochs, optimizer="adam",
            learning_rate=LEARNING_RATE, batch_size=BATCH, key=jax.random.key(1),
        )  # fmt: skip

    return run, lambda result: accuracy(
        np.argmax(model.apply(result.params, problem.x_val), axis=1), problem.labels_val
    )


def _epoch_loop(problem: Problem, epochs: int, step, carry):
    """One jitted ``lax.scan`` per epoch over ``step(carry, batch_rows)``, as a JAX user writes it: a permutation
    per epoch, the last batch filled up from the epoch's first rows (so it runs as many steps as jaxnn's padded
    last batch).  float64 rows run inside ``jax.enable_x64``.  Returns the job's ``run``."""
    import jax
    import jax.numpy as jnp

    wide = problem.x.dtype == np.float64
    n_rows = problem.x.shape[0]
    n_batches = -(-n_rows // BATCH)

    @jax.jit
    def train(carry, key):
        def epoch(carry, epoch_key):
            index = jnp.resize(jax.random.permutation(epoch_key, n_rows), (n_batches, BATCH))
            return jax.lax.scan(step, carry, index)[0], None

        return jax.lax.scan(epoch, carry, jax.random.split(key, epochs))[0]

    def run():
        with jax.enable_x64(wide):
            return jax.block_until_ready(train(carry(), jax.random.key(1)))

    return run


def _device_data(problem: Problem):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(problem.x.dtype == np.float64):
        return jnp.asarray(problem.x), jnp.asarray(np.eye(N_CLASSES, dtype=problem.x.dtype)[problem.labels])


def plain_jax(problem: Problem, epochs: int):
    """What a JAX user writes: ``jax.grad`` of ``model.apply`` + ``optax.adam``, one ``lax.scan`` per epoch."""
    import jax
    import jax.numpy as jnp
    import optax

    model = _model()
    wide = problem.x.dtype == np.float64
    with jax.enable_x64(wide):
        params = jax.tree.map(lambda a: a.astype(problem.x.dtype), model.init(jax.random.key(0), N_FEATURES))
    optimizer = optax.adam(LEARNING_RATE)
    x, y = _device_data(problem)

    def loss_of(params, xb, yb):
        probabilities = model.apply(params, xb, custom_rules=False)
        return -jnp.mean(jnp.sum(yb * jnp.log(jnp.clip(probabilities, 1e-7, 1 - 1e-7)), axis=1))

    def step(carry, index):
        params, state = carry
        grads = jax.grad(loss_of)(params, x[index], y[index])
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    def report(trained):
        with jax.enable_x64(wide):
            return accuracy(np.argmax(model.apply(trained[0], problem.x_val), axis=1), problem.labels_val)

    return _epoch_loop(problem, epochs, step, lambda: (params, optimizer.init(params))), report


def matrix_products(problem: Problem, epochs: int):
    """The floor under every competitor's epoch: each step's matrix products and nothing else — the batch's
    rows gathered, the forward products ``a_l = a_{l-1} W_l``, the weight gradients ``a_{l-1}^T δ_l`` and the
    back-propagated ``δ_l W_l^T`` (none for the input), with the deltas standing in for what activations and
    the loss would make, and a plain ``W -= 1e-9 ∂W`` so each step depends on the last.  No biases, activations,
    loss or optimiser.  Its report is not an accuracy: the weights are not trained."""
    import jax.numpy as jnp

    x, _ = _device_data(problem)
    sizes = (N_FEATURES, *HIDDEN, N_CLASSES)
    rng = np.random.default_rng(0)
    weights = [
        (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(problem.x.dtype)
        for n_in, n_out in itertools.pairwise(sizes)
    ]

    def step(weights, index):
        activations = [x[index]]
        for w in weights[:-1]:
            activations.append(activations[-1] @ w)
        delta = activations[-1] @ weights[-1]
        gradients = []
        for layer in reversed(range(len(weights))):
            gradients.append(activations[layer].T @ delta)
            if layer > 0:
                delta = delta @ weights[layer].T
        return [w - 1e-9 * g for w, g in zip(weights, reversed(gradients), strict=True)], None

    return _epoch_loop(problem, epochs, step, lambda: [jnp.asarray(w) for w in weights]), lambda _: {
        "val_accuracy": None
    }


def torch_eager(problem: Problem, epochs: int):
    """PyTorch eager on the CPU: ``nn.Linear`` layers, ``torch.optim.Adam``, a ``randperm`` per epoch."""
    import torch

    torch.manual_seed(0)
    sizes = (N_FEATURES, *HIDDEN, N_CLASSES)
    layers: list[torch.nn.Module] = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if index < len(HIDDEN):
            layers.append(torch.nn.ReLU())
    initial = [p.detach().clone() for p in torch.nn.Sequential(*layers).parameters()]
    x = torch.from_numpy(np.ascontiguousarray(problem.x, np.float32))
    labels = torch.from_numpy(problem.labels.astype(np.int64))

    def run():
        model = torch.nn.Sequential(*layers)
        with torch.no_grad():
            for parameter, value in zip(model.parameters(), initial, strict=False):
                parameter.copy_(value)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        for _ in range(epochs):
            for batch in torch.randperm(x.shape[0]).split(BATCH):
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(x[batch]), labels[batch]).backward()
                optimizer.step()
        return model

    def report(model):
        with torch.no_grad():
            predicted = model(torch.from_numpy(np.ascontiguousarray(problem.x_val, np.float32))).argmax(dim=1)
        return accuracy(predicted.numpy(), problem.labels_val)

    return run, report


JOBS = {
    "NeuralNetClassifier": estimator,
    "jaxnn.fit": core_fit,
    "plain JAX": plain_jax,
    "matrix products alone": matrix_products,
    "PyTorch": torch_eager,
    "scikit-learn": sklearn_mlp,
}


def make_job(name: str, settings: dict):
    """``name`` is ``"COMPETITOR|EPOCHS"``: the competitor's fit of that many epochs, and its report."""
    competitor, epochs = name.rsplit("|", 1)
    return JOBS[competitor](load_problem(settings["problem"], settings["dtype"]), int(epochs))


def data_path(directory: str) -> str:
    return str(Path(directory) / "medium.npz")
