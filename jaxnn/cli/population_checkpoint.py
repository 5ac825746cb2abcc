"""A population run's own checkpoint, ``population.npz``: every member's state, so ``--resume DIR`` continues
the whole population where it stopped.

It is written with :func:`jaxnn.checkpoint.save`, the safe and atomic format of a single run's checkpoint:

* ``params/...`` and ``opt_state/...``: every member's weights and optimiser state, on a leading member axis
  (the optimiser state in :func:`jaxnn.fit_many`'s form, which holds each member's learning rate);
* ``history``: for each epoch, the mean training loss of the members that trained it (NaN where none did);
* extras: ``alive`` (P,), the members not diverged; ``member_epochs`` (P,), the epochs each finished healthily;
  ``histories`` (P, epoch), row ``i`` holding member ``i``'s training losses in its first ``member_epochs[i]``
  entries (0 after them); ``held_out_counts`` (P,) and ``held_out_epochs``/``held_out_losses`` (P, m), row ``i``
  holding member ``i``'s (epoch, held-out loss) points in its first ``held_out_counts[i]`` entries;
* config: the run options, ``--lr``, ``--l2`` and ``--seed`` as lists where the run listed several, ``epochs``, the
  times, and every member's data fingerprint (``data_sha256``, a list in member order).

Every member trains the same chunks, and :func:`jaxnn.fit_many` ends where it would have without the chunk
boundaries, so a population stopped and resumed ends as the uninterrupted one, bit for bit on the CPU.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from jaxnn import checkpoint
from jaxnn.cli.devices import arithmetic_setting
from jaxnn.cli.options import MEMBER_OPTIONS
from jaxnn.cli.training import RunSetup, held_out_epochs_fit, refuse_non_finite_losses, stored_times, write_or_say_why

__all__ = ["POPULATION_CHECKPOINT", "load", "mean_history", "population_config", "save"]

POPULATION_CHECKPOINT = "population.npz"


def population_config(setups: list[RunSetup], options: dict[str, Any], members) -> dict[str, Any]:
    """The config a population checkpoint stores: the first member's settled options with the run's lists."""
    first = setups[0]
    listed = {name: options[name] for name in MEMBER_OPTIONS}  # --lr, --l2 and --seed, lists where the run gave them
    return {
        **first.options,
        **listed,
        "epochs": first.epochs,
        "seconds": members.seconds,
        "total_seconds": members.total_seconds,
        "members": len(setups),
        "n_features": int(first.problem.x_train.shape[1]),
        "input_columns": list(first.problem.feature_names),
        "class_names": list(first.problem.class_names),
        "data_sha256": [setup.problem.fingerprint for setup in setups],
        "arithmetic": arithmetic_setting(),
    }


def _padded(rows: list[np.ndarray], width: int, dtype) -> np.ndarray:
    table = np.zeros((len(rows), width), dtype)
    for index, row in enumerate(rows):
        table[index, : len(row)] = row
    return table


def mean_history(histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per epoch, the mean loss of the members whose histories reach it (NaN where none does; infinity where their
    sum passes the histories' dtype, as the losses of members about to diverge can, without NumPy's warning)."""
    trained = np.arange(histories.shape[1])[None, :] < lengths[:, None]
    counts = trained.sum(axis=0)
    with np.errstate(over="ignore"):
        sums = np.where(trained, histories, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def save(out: Path, setups: list[RunSetup], options: dict[str, Any], members) -> Path:
    """Write every member's state (a :class:`jaxnn.cli.population.Members`) to ``out/population.npz``."""
    histories = [np.concatenate(chunks) if chunks else np.zeros(0, np.float32) for chunks in members.histories]
    lengths = np.asarray([len(history) for history in histories], np.int64)
    table = _padded(histories, members.epoch, np.float32)
    counts = np.asarray([len(points) for points in members.held_out], np.int64)
    width = int(counts.max(initial=0))
    points = [np.asarray(points, float).reshape(-1, 2) for points in members.held_out]
    path = out / POPULATION_CHECKPOINT
    write = partial(
        checkpoint.save,
        path,
        params=members.params,
        opt_state=members.opt_state,
        key=setups[0].key,
        epoch=members.epoch,
        history=mean_history(table, lengths),
        config=population_config(setups, options, members),
        extras={
            "alive": np.asarray(members.alive, bool),
            "member_epochs": lengths,
            "histories": table,
            "held_out_counts": counts,
            "held_out_epochs": _padded([p[:, 0] for p in points], width, np.int64),
            "held_out_losses": _padded([p[:, 1] for p in points], width, np.float64),
        },
    )
    write_or_say_why(path, "epoch", members.epoch, write, "population checkpoint")
    return path


def _extra(path: Path, extras: dict[str, np.ndarray], name: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
    array = extras.get(name)
    if array is None or array.shape != shape or array.dtype.kind != kind:
        raise checkpoint.CheckpointError(f"{path} is corrupt: its {name} is missing or malformed")
    return array


def load(path: Path, start):
    """The members' state stored at ``path``, shaped like ``start`` (the population's fresh
    :class:`jaxnn.cli.population.Members`: its weights and optimiser state are the templates)."""
    saved = checkpoint.load(path, params_like=start.params, opt_state_like=start.opt_state)
    extras, count, epoch = saved.extras or {}, len(start.alive), saved.epoch
    alive = _extra(path, extras, "alive", (count,), "b")
    lengths = _extra(path, extras, "member_epochs", (count,), "i")
    histories = _extra(path, extras, "histories", (count, epoch), "f")
    counts = _extra(path, extras, "held_out_counts", (count,), "i")
    width = extras.get("held_out_epochs", np.zeros((0, 0))).shape[-1]
    held_epochs = _extra(path, extras, "held_out_epochs", (count, width), "i")
    held_losses = _extra(path, extras, "held_out_losses", (count, width), "f")
    if np.any(lengths < 0) or np.any(lengths > epoch) or np.any(counts < 0) or np.any(counts > width):
        raise checkpoint.CheckpointError(f"{path} is corrupt: its members' epoch counts do not fit its epoch {epoch}")
    for member in range(count):
        if not held_out_epochs_fit(held_epochs[member, : counts[member]], lengths[member]):
            raise checkpoint.CheckpointError(f"{path} is corrupt: member {member}'s held-out loss curve is malformed")
    refuse_non_finite_losses(path, histories[np.arange(epoch)[None, :] < lengths[:, None]], "its members'")
    seconds, total_seconds = stored_times(path, saved.config)
    return start._replace(
        params=saved.params,
        opt_state=saved.opt_state,
        alive=alive.astype(bool),
        epochs=lengths.astype(np.int64),
        histories=tuple((histories[i, : lengths[i]],) for i in range(count)),
        held_out=tuple(
            tuple((int(held_epochs[i, j]), float(held_losses[i, j])) for j in range(counts[i])) for i in range(count)
        ),
        epoch=epoch,
        seconds=seconds,
        total_seconds=total_seconds,
    )
