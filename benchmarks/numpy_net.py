"""The competitor "NumPy from scratch": the seeds' vectorised network in plain NumPy.

Written the way the seeds teach it: column layout (``X`` is ``(n_features, m)``,
``W`` of layer ``l`` is ``(n_l, n_{l-1})``, ``b`` is ``(n_l, 1)``), a forward pass
that keeps ``(A_prev, Z, A)`` for every layer, and a backward pass that walks
the layers in reverse with ``dW = dZ·A_prevᵀ``, ``db = Σ dZ``, ``dA_prev = Wᵀ·dZ``
(the ``1/m`` of the mean loss is applied once, to ``dA`` of the output).

Two output heads, both on softmax probabilities:

* ``"categorical_cross_entropy"``: the seed's route, ``L = −(1/m) Σ y·log clip(A)``,
  then the softmax backward ``dZ = A·(dA − Σ dA·A)`` (the same work as jaxnn's
  separate softmax and loss rules);
* ``"softmax_cross_entropy"``: the fused shortcut ``dZ = (A − Y)/m``.

Everything is float32, like jaxnn's default, so both do the same arithmetic.
"""

from __future__ import annotations

import numpy as np

CLIP_EPS = 1e-7


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def relu_backward(d_a: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, d_a, 0)


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax down each column (one column per sample), shifted so ``exp`` never overflows."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def from_batch_first(params) -> list[tuple[np.ndarray, np.ndarray]]:
    """jaxnn's ``[{"W": (n_in, n_out), "b": (n_out,)}]`` copied to the seeds' ``[(W (n_out, n_in), b (n_out, 1))]``."""
    return [
        (np.array(np.asarray(p["W"]).T, np.float32), np.array(np.asarray(p["b"])[:, None], np.float32)) for p in params
    ]


def forward(params, x_columns: np.ndarray):
    """Returns the output probabilities and, per layer, the cache ``(A_prev, Z)``."""
    a = x_columns
    caches = []
    for index, (w, b) in enumerate(params):
        z = w @ a + b
        caches.append((a, z))
        a = softmax(z) if index == len(params) - 1 else relu(z)
    return a, caches


def loss_and_output_gradient(probabilities: np.ndarray, y_columns: np.ndarray, head: str):
    """The mean cross-entropy and ``∂L/∂Z`` of the output layer."""
    m = y_columns.shape[1]
    clipped = np.clip(probabilities, CLIP_EPS, 1 - CLIP_EPS)
    loss = -np.sum(y_columns * np.log(clipped)) / m
    if head == "softmax_cross_entropy":
        return loss, (probabilities - y_columns) / m
    inside = (probabilities > CLIP_EPS) & (probabilities < 1 - CLIP_EPS)
    d_a = np.where(inside, -y_columns / clipped, 0) / m
    return loss, probabilities * (d_a - np.sum(d_a * probabilities, axis=0, keepdims=True))


def backward(params, caches, d_z: np.ndarray):
    """Walk the layers in reverse from the output's ``dZ``; returns ``[(dW, db), ...]``."""
    grads = [None] * len(params)
    for index in reversed(range(len(params))):
        a_prev, _ = caches[index]
        grads[index] = (d_z @ a_prev.T, d_z.sum(axis=1, keepdims=True))
        if index > 0:
            d_z = relu_backward(params[index][0].T @ d_z, caches[index - 1][1])
    return grads


def train_step(params, x_columns, y_columns, learning_rate, head: str):
    """One full forward, backward and gradient-descent update, in place; returns ``(params, loss)``."""
    probabilities, caches = forward(params, x_columns)
    loss, d_z = loss_and_output_gradient(probabilities, y_columns, head)
    for (w, b), (d_w, d_b) in zip(params, backward(params, caches, d_z), strict=True):
        w -= learning_rate * d_w
        b -= learning_rate * d_b
    return params, loss


def fit(params, x_columns, y_columns, *, epochs: int, learning_rate: float, head: str = "categorical_cross_entropy"):
    """Full-batch gradient descent for ``epochs`` epochs from a copy of ``params``; returns ``(params, losses)``."""
    params = [(w.copy(), b.copy()) for w, b in params]
    losses = np.empty(epochs, np.float32)
    lr = np.float32(learning_rate)
    for epoch in range(epochs):
        params, losses[epoch] = train_step(params, x_columns, y_columns, lr, head)
    return params, losses
