"""The competitor "PyTorch eager": the same network as ``torch.nn`` layers on the CPU, autograd and SGD.

Optional: importing this module raises ``ImportError`` when PyTorch is not installed, and the
benchmark skips it with a note.  Install the CPU build with ``pip install torch==2.13.0``.

The output head mirrors :mod:`benchmarks.numpy_net`: ``"categorical_cross_entropy"`` takes the
softmax probabilities through the seed's clipped cross-entropy (autograd differentiates the softmax
and the loss separately), ``"softmax_cross_entropy"`` is PyTorch's fused ``cross_entropy`` on logits.
"""

from __future__ import annotations

import numpy as np
import torch

CLIP_EPS = 1e-7


def build(params) -> torch.nn.Sequential:
    """An ``nn.Sequential`` of ``Linear`` + ReLU layers holding jaxnn's initial ``params`` (float32)."""
    layers: list[torch.nn.Module] = []
    for index, p in enumerate(params):
        w = torch.from_numpy(np.asarray(p["W"], np.float32).T.copy())
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(torch.from_numpy(np.asarray(p["b"], np.float32).copy()))
        layers.append(linear)
        if index < len(params) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, one_hot: torch.Tensor, head: str) -> torch.Tensor:
    if head == "softmax_cross_entropy":
        return torch.nn.functional.cross_entropy(logits, labels)
    probabilities = torch.softmax(logits, dim=1).clamp(CLIP_EPS, 1 - CLIP_EPS)
    return -(one_hot * probabilities.log()).sum(dim=1).mean()


def make_step(model: torch.nn.Sequential, learning_rate: float, head: str):
    """One full forward, backward and SGD update per call; returns the loss tensor."""
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

    def step(x: torch.Tensor, labels: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels, one_hot, head)
        loss.backward()
        optimizer.step()
        return loss

    return step


def fit(params, x: np.ndarray, labels: np.ndarray, *, epochs: int, learning_rate: float, head: str):
    """Full-batch training for ``epochs`` epochs from jaxnn's ``params``; returns the per-epoch losses."""
    model = build(params)
    x_t = torch.from_numpy(np.asarray(x, np.float32))
    labels_t = torch.from_numpy(np.asarray(labels, np.int64))
    one_hot = torch.nn.functional.one_hot(labels_t, len(params[-1]["b"])).float()
    step = make_step(model, learning_rate, head)
    losses = torch.empty(epochs)
    for epoch in range(epochs):
        losses[epoch] = step(x_t, labels_t, one_hot).detach()
    return losses.numpy()
