"""Population runs: several ``--lr`` or ``--seed`` values train as one population through :func:`jaxnn.fit_many`.

    jaxnn-train --lr 0.01,0.1,1 --seed 0,1,2 --epochs 500 --out runs/grid     # 9 networks, one program

The members.  Every combination of the listed values is one member, in the order of
``itertools.product(lrs, seeds)`` (:func:`jaxnn.cli.options.population_members`), and member ``(η, s)``
is the single run ``--lr η --seed s``: its split is drawn with ``s`` and its inputs standardised on that
split, its initial weights and shuffle key are :func:`jaxnn.train.training_keys` ``(s)``'s (drawn for all
members at once by ``model.init_many``), and its learning rate is ``η``.  Members that share a seed share
their data; with several seeds each member gets its own split (``fit_many``'s per-member inputs).  The
learning rates live in the optimiser state (``jaxnn.optimizers.tunable_solver``), so the whole grid is
one compiled program.  Training runs in the chunks of a single run (about 1/50 of the epochs each, with
the held-out loss of every member after each), in the loop layout a single run uses, so member ``i``
ends where its single run ends, up to float32 rounding (batched products may sum in another order).  A
member that diverges keeps its last finite state and stops, as a single run does; the others go on.

The best member.  ``jaxnn-train`` holds out one set, the test split, and chooses on it: the best member
has the highest test accuracy (classification) or test R² (regression); ties go to the lower test loss,
then to the lower index.  A member that diverged, or whose test metrics are not finite numbers, is never
the best.  Its test score has been used to choose it, so it is an optimistic estimate of how the chosen
setting does on new data (hold out more data, or cross-validate, for an unbiased one).

Files.  ``checkpoint.npz`` is the best member's, exactly as its single run's (its own ``--lr`` and
``--seed``, its split's fingerprint, its optimiser state in the single run's form), so ``--resume``
continues it as a single run.  ``metrics.json``, ``history.csv`` and ``confusion.png`` are the best
member's; ``metrics.json`` adds a ``population`` entry.  ``population.csv`` lists every member and
``loss.png`` draws every member's training loss, the best one's thick.

What a population run does not do: several devices or hosts (one device trains the whole population;
``--devices N`` with N > 1 and the multi-host flags are usage errors), ``--resume`` with lists, and
``--checkpoint-every``.  It writes its files once, at the end: Ctrl-C (exit status 130) stops it at the
next chunk boundary having written nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import distributed
from jaxnn.cli import options as cli_options
from jaxnn.cli.data import load_problems
from jaxnn.cli.devices import Runtime, one_device, require_one_device
from jaxnn.cli.errors import EXIT_FAILED, EXIT_OK, PROG, CliError, Interrupted
from jaxnn.cli.interrupts import CtrlC
from jaxnn.cli.progress import Progress, make_progress
from jaxnn.cli.report import (
    PopulationCurves,
    metrics_of,
    non_finite_metrics,
    summary,
    write_results,
    write_text,
)
from jaxnn.cli.training import (
    CHECKPOINT_FILE,
    Run,
    TrainState,
    build_model,
    make_head,
    make_optimizer,
    make_targets,
    next_stop,
    progress_step,
    save_checkpoint,
    settled_options,
)
from jaxnn.engine import member
from jaxnn.optimizers import DEFAULT_SETTINGS, SolverSettings
from jaxnn.train import fit_many, training_keys

__all__ = [
    "POPULATION_FILE",
    "best_member",
    "check_arguments",
    "population_csv",
    "run",
    "solver_state",
    "train",
]

POPULATION_FILE = "population.csv"


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any device starts, what a population run does not do."""
    require_one_device(
        args, "a population run (several --lr or --seed values)", ", or train the values one run at a time"
    )
    if args.checkpoint_every is not None:
        raise CliError(
            "--checkpoint-every: a population run (several --lr or --seed values) writes its checkpoint "
            "(the best member's) only at the end; leave --checkpoint-every out"
        )


def _member_runs(args: argparse.Namespace, runtime: Runtime, out: Path | None, options: dict[str, Any]) -> list[Run]:
    """One :class:`Run` per member, as its single run would have (without the sharded data: fit_many trains)."""
    members = cli_options.population_members(options)
    problems = load_problems(options, [member_options["seed"] for member_options in members])
    if runtime.main:
        for warning in dict.fromkeys(w for problem in problems.values() for w in problem.warnings):
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
    settled = [settled_options(member_options, problems[member_options["seed"]]) for member_options in members]
    head = make_head(settled[0], problems[members[0]["seed"]])
    model = build_model(settled[0], head)
    targets = {seed: make_targets(problem, head) for seed, problem in problems.items()}
    epochs = args.epochs or cli_options.DEFAULT_EPOCHS[options["optimizer"]]
    return [
        Run(
            member_options,
            problems[member_options["seed"]],
            head,
            targets[member_options["seed"]],
            model,
            make_optimizer(member_options),
            training_keys(member_options["seed"])[1],
            runtime,
            None,
            epochs,
            None,
            args.checkpoint_seconds,
            out if runtime.main else None,
        )
        for member_options in settled
    ]


@partial(jax.jit, static_argnums=(0, 1))
def _held_out_losses(model, head, params, x, targets):
    """Every member's loss on its own held-out rows, in one compiled call: ``(P,)``."""

    def one(member_params, member_x, member_targets):
        return head.loss.forward(model.apply(member_params, member_x), member_targets)

    return jax.vmap(one)(params, x, targets)


def _stacked(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(array, np.float32) for array in arrays])


def _training_data(runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: shared by every member when they share one seed's split, else one split per member."""
    if len({run.options["seed"] for run in runs}) == 1:
        return np.asarray(runs[0].problem.x_train, np.float32), np.asarray(runs[0].targets.train, np.float32)
    shapes = {run.problem.x_train.shape for run in runs}
    if len(shapes) != 1:  # the split's sizes depend on the row count and --test-size only
        raise RuntimeError(f"the members' training splits differ in shape: {sorted(shapes)}")
    return _stacked([run.problem.x_train for run in runs]), _stacked([run.targets.train for run in runs])


def _select(keep_new: np.ndarray, new, old):
    """Per member (the leading axis), the leaf of ``new`` where ``keep_new``, else the leaf of ``old``."""
    if old is None:
        return new

    def pick(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return np.where(keep_new.reshape(-1, *([1] * (a.ndim - 1))), a, b)

    return jax.tree.map(pick, new, old)


def _solver_settings(options: dict[str, Any]) -> SolverSettings:
    if options["optimizer"] == "sgd":
        return SolverSettings(momentum=options["momentum"], nesterov=options["nesterov"])
    return DEFAULT_SETTINGS


def _initial_params(runs: list[Run]):
    """Every member's starting weights, member ``i`` drawn as its single run draws them (``training_keys``)."""
    keys = jnp.stack([training_keys(run.options["seed"])[0] for run in runs])
    return distributed.to_host(runs[0].model.init_many(keys, runs[0].problem.x_train.shape[1]))


def train(runs: list[Run], progress: Progress, ctrl_c: CtrlC) -> list[TrainState]:
    """Train every member's run together, in chunks, each member up to ``epochs`` or its divergence.

    Returns one :class:`TrainState` per member, its optimiser state in ``fit_many``'s form (see
    :func:`solver_state`).  Ctrl-C raises :class:`Interrupted` at the next chunk boundary, with nothing saved.
    """
    first = runs[0]
    model, head, options, epochs = first.model, first.head, first.options, first.epochs
    params, keys = _initial_params(runs), jnp.stack([run.key for run in runs])
    x, y = _training_data(runs)
    x_test, targets_test = _stacked([run.problem.x_test for run in runs]), _stacked([run.targets.test for run in runs])
    rates = np.asarray([run.options["lr"] for run in runs])
    opt_state, alive = None, np.ones(len(runs), bool)
    epoch = np.zeros(len(runs), np.int64)
    histories: list[list[np.ndarray]] = [[] for _ in runs]
    held_out: list[list[tuple[int, float]]] = [[] for _ in runs]
    done, seconds, step = 0, 0.0, progress_step(epochs, None)
    started = time.perf_counter()
    while done < epochs and alive.any() and not ctrl_c.pressed:
        stop = next_stop(done, epochs, step)
        chunk_started = time.perf_counter()
        result = fit_many(
            model,
            params,
            x,
            y,
            loss=head.loss,
            epochs=stop - done,
            optimizer=options["optimizer"],
            learning_rate=rates,
            settings=_solver_settings(options),
            batch_size=options["batch_size"],
            key=keys,
            opt_state=opt_state,
            start_epoch=done,
        )
        seconds += time.perf_counter() - chunk_started
        # a member that diverged earlier stays at its last finite state, as its single run stops there
        params = _select(alive, distributed.to_host(result.params), params)
        opt_state = _select(alive, distributed.to_host(result.opt_state), opt_state)
        losses = np.asarray(_held_out_losses(model, head, params, x_test, targets_test), float)
        for index in np.flatnonzero(alive):
            ran = int(result.n_epochs[index])
            histories[index].append(np.asarray(result.history[index, :ran], np.float32))
            epoch[index] += ran
            held_out[index].append((int(epoch[index]), float(losses[index])))
        alive &= ~np.asarray(result.diverged, bool)
        done = stop
        _report_progress(progress, done, histories, held_out)
    progress.close()
    if done < epochs and alive.any():
        raise Interrupted(
            f"{PROG}: interrupted at epoch {done}; a population run writes its files only at the end: nothing was saved"
        )
    timing = (seconds, time.perf_counter() - started)
    return [
        _member_state(member(params, i), member(opt_state, i), histories[i], held_out[i], timing, not alive[i])
        for i in range(len(runs))
    ]


def _member_state(params, opt_state, history, held_out, timing: tuple[float, float], diverged: bool) -> TrainState:
    """One member's :class:`TrainState` from its chunks' histories and its held-out ``(epoch, loss)`` points."""
    history = np.concatenate(history) if history else np.zeros(0, np.float32)
    points = np.asarray(held_out, float).reshape(-1, 2)
    return TrainState(
        params, opt_state, len(history), history, points[:, 0].astype(np.int64), points[:, 1], *timing, bool(diverged)
    )


def _report_progress(progress: Progress, epoch: int, histories, held_out) -> None:
    """Progress of the member with the lowest held-out loss now: its training loss and held-out loss."""
    latest = [points[-1][1] if points else math.nan for points in held_out]
    finite = [index for index, loss in enumerate(latest) if math.isfinite(loss)]
    leader = min(finite, key=lambda index: latest[index]) if finite else 0
    trained = [part for part in histories[leader] if len(part)]
    progress.update(epoch, float(trained[-1][-1]) if trained else math.nan, None, latest[leader])


def solver_state(tunable_state, like):
    """A member's optimiser state in the form its single run keeps, ``like`` (``make_optimizer(...).init``).

    ``fit_many`` keeps the learning rate in the state (``jaxnn.optimizers.tunable_solver``): plain descent
    keeps only the rates, which a single run's ``gradient_descent`` bakes in (no state); the others are an
    ``optax.inject_hyperparams`` state whose inner state is the chain (L2 term, direction, step), where a
    single run's solver is the chain (direction, step) — the same update, so the same state less the L2 term's.
    """
    if not jax.tree.leaves(like):
        return like
    inner = getattr(tunable_state, "inner_state", None)
    matched = tuple(inner[-len(like) :]) if isinstance(inner, tuple) and isinstance(like, tuple) else None
    if matched is None or jax.tree.structure(matched) != jax.tree.structure(like):
        raise RuntimeError(
            f"cannot write the best member's optimiser state as a single run's: {jax.tree.structure(like)} "
            f"is not part of fit_many's {jax.tree.structure(tunable_state)}"
        )
    return matched


def _score_name(task: str) -> str:
    return "test_accuracy" if task == "classification" else "test_r2"


def best_member(metrics: list[dict[str, Any]]) -> int | None:
    """The index of the best member by its metrics (see the module docstring), or None when none qualifies."""
    score = _score_name(metrics[0]["task"])
    eligible = [i for i, values in enumerate(metrics) if not values["diverged"] and not non_finite_metrics(values)]
    if not eligible:
        return None
    return min(eligible, key=lambda i: (-metrics[i][score], metrics[i]["test_loss"], i))


def population_csv(runs: list[Run], metrics: list[dict[str, Any]], best: int | None) -> str:
    """``population.csv``: one row per member — its index, --lr and --seed, the epochs it ran, whether it
    diverged, its final losses and test metrics, and whether it is the best."""
    task_columns = (
        ("train_accuracy", "test_accuracy") if metrics[0]["task"] == "classification" else ("test_rmse", "test_r2")
    )
    columns = ("member", "lr", "seed", "epochs", "diverged", "train_loss", "test_loss", *task_columns, "best")
    lines = [",".join(columns)]
    for index, (run, values) in enumerate(zip(runs, metrics, strict=True)):
        numbers = [repr(float(values[name])) for name in ("train_loss", "test_loss", *task_columns)]
        cells = [str(index), repr(run.options["lr"]), str(run.options["seed"]), str(values["epochs"])]
        cells += [str(values["diverged"]).lower(), *numbers, str(index == best).lower()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _member_label(run: Run, index: int) -> str:
    return f"member {index}: lr {run.options['lr']:g}, seed {run.options['seed']}"


def _headline(runs: list[Run], options: dict[str, Any], metrics: list[dict], best: int | None) -> str:
    """The population's line of the summary."""
    listed = " x ".join(
        f"{cli_options.flag(name)} {cli_options.show(name, options[name])}"
        for name in cli_options.listed_options(options)
    )
    line = f"population of {len(runs)} networks ({listed}) trained together"
    diverged = sum(values["diverged"] for values in metrics)
    if diverged:
        line += f", {diverged} diverged"
    if best is not None:
        score = "test accuracy" if metrics[0]["task"] == "classification" else "test R^2"
        line += f"; best by {score}: {_member_label(runs[best], best)}"
    return line + (f" (every member in {POPULATION_FILE})" if runs[0].out is not None else "")


def _finish(runs: list[Run], states: list[TrainState], options: dict[str, Any]) -> int:
    """Metrics of every member, the best one's files and checkpoint, population.csv, the summary; the exit status."""
    evaluated = [metrics_of(run, state) for run, state in zip(runs, states, strict=True)]
    metrics = [values for values, _ in evaluated]
    best = best_member(metrics)
    out = runs[0].out
    headline = _headline(runs, options, metrics, best)
    if best is None:
        if out is not None:
            write_text(out / POPULATION_FILE, population_csv(runs, metrics, best))
        print(headline + (f"\nwrote {out}: {POPULATION_FILE}" if out is not None else ""), flush=True)
        print(
            f"{PROG}: no member of the population finished with finite test metrics (a diverged member does not "
            "count), so there is no best network and no checkpoint; try smaller --lr values",
            file=sys.stderr,
        )
        return EXIT_FAILED
    run, (values, predicted) = runs[best], evaluated[best]
    state = states[best]._replace(
        opt_state=solver_state(states[best].opt_state, run.optimizer.init(states[best].params))
    )
    values = {
        **values,
        "population": {
            "members": len(runs),
            "best": best,
            "chosen_by": _score_name(values["task"]),
            **{name: list(options[name]) for name in cli_options.listed_options(options)},
            "file": POPULATION_FILE,
        },
    }
    written = []
    if out is not None:
        save_checkpoint(run, state)
        curves = PopulationCurves([member_state.history for member_state in states], best, _member_label(run, best))
        written = [CHECKPOINT_FILE, *write_results(run, state, values, predicted, curves)]
        write_text(out / POPULATION_FILE, population_csv(runs, metrics, best))
        written.append(POPULATION_FILE)
    print(headline + "\n" + summary(run, state, values, written), flush=True)
    return EXIT_OK


def run(args: argparse.Namespace, ctrl_c: CtrlC, runtime: Runtime, out: Path | None, options: dict[str, Any]) -> int:
    """A population run, from its options (lists included) to the exit status."""
    runtime = one_device(runtime)
    runs = _member_runs(args, runtime, out, options)
    if ctrl_c.pressed:
        raise Interrupted(f"{PROG}: interrupted while loading the data; nothing was saved")
    name = f"{runs[0].problem.name} ({len(runs)} networks)"
    states = train(runs, make_progress(args.quiet, runs[0].epochs, 0, name), ctrl_c)
    status = _finish(runs, states, options)
    if ctrl_c.pressed:
        raise Interrupted(
            f"{PROG}: interrupted after training; files in {out}" if out else f"{PROG}: interrupted after training"
        )
    return status
