"""Population runs: several ``--lr``, ``--l2`` or ``--seed`` values train as one population through
:func:`jaxnn.fit_many`.

    jaxnn-train --lr 0.01,0.1,1 --seed 0,1,2 --epochs 500 --out runs/grid     # 9 networks, one program

The members.  Every combination of the listed values is one member, in the order of
``itertools.product(lrs, l2s, seeds)`` (:func:`jaxnn.cli.options.population_members`), and member ``(η, λ, s)``
is the single run ``--lr η --l2 λ --seed s``: its split is drawn with ``s`` and its inputs standardised on that
split, its initial weights and shuffle key are :func:`jaxnn.train.training_keys` ``(s)``'s (drawn for all
members at once by ``model.init_many``), its learning rate is ``η`` and its L2 penalty ``λ``.  Members that
share a seed share their data; with several seeds each member gets its own split (``fit_many``'s per-member
inputs).  The learning rates and penalties live in the optimiser state (``jaxnn.optimizers.make``), so the
whole grid is one compiled program.  Training runs in the chunks of a single run (at most about 1/50 of the
epochs each, with the held-out loss of every member after each), in the loop layout a single run uses, so
member ``i`` ends where its single run ends, up to float32 rounding (batched products may sum in another
order).  A member that diverges keeps its last finite state and stops, as a single run does; the others go on.

The best member, its files and the summary: :mod:`jaxnn.cli.population_results`.

The members are split across the run's devices (``--devices``), one compiled program.  What a population run
does not do (:mod:`jaxnn.cli.refusals`): several hosts (the multi-host flags are usage errors) and
``--checkpoint-every``.  Its checkpoints (with ``--out``), every ``--checkpoint-seconds``, at the end and when a
stop signal (Ctrl-C: exit status 130; SIGTERM 143, SIGHUP 129) ends the run at the next chunk boundary:
``population.npz``, every member's state (:mod:`jaxnn.cli.population_checkpoint`), which ``--resume DIR``
continues whole, and the best member's ``checkpoint.npz`` as its single run writes it, which ``--resume
DIR/checkpoint.npz --out NEWDIR`` continues alone.  The other files (metrics, plots, ``population.csv``) come
once, at the end.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import checkpoint, distributed
from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn.cli import options as cli_options
from jaxnn.cli import population_checkpoint, population_results
from jaxnn.cli.data import Problem, check_same_data, load_problems, say_warnings
from jaxnn.cli.devices import Runtime
from jaxnn.cli.errors import EXIT_OK, PROG, Interrupted
from jaxnn.cli.interrupts import StopSignals, quitting_at_once, stopped_before_the_end
from jaxnn.cli.progress import Progress, make_progress
from jaxnn.cli.runner import ChunkRunner, Hooks, Schedule
from jaxnn.cli.training import (
    CHECKPOINT_FILE,
    RunSetup,
    TrainState,
    build_model,
    make_head,
    make_optimizer,
    make_targets,
    refuse_what_cannot_fit,
    settled_options,
    solver_settings,
    tunable_rates,
)
from jaxnn.engine import member
from jaxnn.layers import Params
from jaxnn.optimizers import fixed_rate_state, init_state, make
from jaxnn.train import fit_many, training_keys

__all__ = ["Members", "Population", "advance", "execute", "progress_leader", "train"]


def _member_setups(
    args: argparse.Namespace,
    stop: StopSignals,
    runtime: Runtime,
    out: Path | None,
    options: dict[str, Any],
    epochs: int,
    resumed: tuple[Path, dict[str, Any]] | None,
) -> list[RunSetup]:
    """One :class:`RunSetup` per member, as its single run would have (without the sharded data: fit_many trains);
    a ``resumed`` run's data is checked first (other data's classes could only be refused for other reasons)."""
    members = cli_options.population_members(options)
    with quitting_at_once(stop, "while loading the data"):  # a --csv pipe no one writes to blocks the read
        problems = load_problems(options, [member_options["seed"] for member_options in members])
    if resumed is not None:
        given_csv = cli_options.given_options(args).get("csv")
        _check_resumed_data([problems[member_options["seed"]] for member_options in members], resumed, given_csv)
    settled = [settled_options(member_options, problems[member_options["seed"]]) for member_options in members]
    head = make_head(settled[0], problems[members[0]["seed"]])
    refuse_what_cannot_fit(settled[0], problems[members[0]["seed"]], head, runtime, len(members))
    model = build_model(settled[0], head)
    targets = {seed: make_targets(problem, head, options["class_weight"]) for seed, problem in problems.items()}
    return [
        RunSetup(
            member_options,
            problems[member_options["seed"]],
            head,
            targets[member_options["seed"]],
            model,
            make_optimizer(member_options),
            training_keys(member_options["seed"])[1],
            runtime,
            epochs,
            None,
            args.checkpoint_seconds,
            out if runtime.main else None,
        )
        for member_options in settled
    ]


def _held_out_losses(model, head, params, x, targets):
    """Every member's loss on its own held-out rows, in one compiled call: ``(P,)``."""

    def one(member_params, member_x, member_targets):
        return head.loss.forward(model.apply(member_params, member_x), member_targets)

    return jax.vmap(one)(params, x, targets)


_compiled_held_out_losses = FallbackJit(_held_out_losses, PLAIN_BUILDS, static_argnums=(0, 1))


def _stacked(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(array, np.float32) for array in arrays])


def _training_data(setups: list[RunSetup]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(x, y, weight)``: shared by every member when they share one seed's split, else one split per member
    (``weight``: the rows' ``--class-weight`` weights, None without)."""
    weighted = setups[0].targets.weight is not None
    if len({setup.options["seed"] for setup in setups}) == 1:
        first = setups[0]
        weight = np.asarray(first.targets.weight, np.float32) if weighted else None
        return np.asarray(first.problem.x_train, np.float32), np.asarray(first.targets.train, np.float32), weight
    shapes = {setup.problem.x_train.shape for setup in setups}
    if len(shapes) != 1:  # the split's sizes depend on the row count and --test-size only
        raise RuntimeError(f"the members' training splits differ in shape: {sorted(shapes)}")
    weight = _stacked([setup.targets.weight for setup in setups]) if weighted else None
    x, y = _stacked([setup.problem.x_train for setup in setups]), _stacked([setup.targets.train for setup in setups])
    return x, y, weight


def _take_new_where(keep_new: np.ndarray, new, old):
    """Per member (the leading axis), the leaf of ``new`` where ``keep_new``, else the leaf of ``old``."""

    def pick(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return np.where(keep_new.reshape(-1, *([1] * (a.ndim - 1))), a, b)

    return jax.tree.map(pick, new, old)


def _fresh_opt_states(params: Params, population: Population) -> optax.OptState:
    """Every member's fresh optimiser state in ``fit_many``'s form, its ``--lr`` and ``--l2`` in it (as
    ``fit_many`` makes it when given none): the state training starts from, and the template a population
    checkpoint is read into."""
    options = population.setups[0].options
    optimizer = make(options["optimizer"], solver_settings(options))
    dtype = jax.tree.leaves(params)[0].dtype
    rates, l2 = np.asarray(population.rates, dtype), np.asarray(population.l2, dtype)
    return distributed.to_host(jax.vmap(partial(init_state, optimizer))(params, rates, l2))


def _initial_params(setups: list[RunSetup]) -> Params:
    """Every member's starting weights, member ``i`` drawn as its single run draws them (``training_keys``)."""
    keys = jnp.stack([training_keys(setup.options["seed"])[0] for setup in setups])
    return distributed.to_host(setups[0].model.init_many(keys, setups[0].problem.x_train.shape[1]))


class Population(NamedTuple):
    """The fixed parts of a population's training: its members' setups and their data, stacked."""

    setups: list[RunSetup]
    x: np.ndarray  # (n, features), shared by every member, or (P, n, features): one split per member
    y: np.ndarray
    x_test: np.ndarray  # (P, m, features)
    targets_test: np.ndarray
    rates: np.ndarray  # (P,) every member's --lr
    l2: np.ndarray  # (P,) every member's --l2
    keys: jax.Array  # (P,) every member's shuffle key
    weight: np.ndarray | None = None  # --class-weight: (n,) shared, or (P, n); None: every row 1


class Members(NamedTuple):
    """Every member's training state, chunk by chunk (host arrays, the member on the leading axis)."""

    params: Params  # every leaf with the member axis first
    opt_state: optax.OptState  # fit_many's form (see jaxnn.optimizers.fixed_rate_state)
    alive: np.ndarray  # (P,) not diverged: the members the next chunk trains
    epochs: np.ndarray  # (P,) the epochs each member finished healthily
    histories: tuple[tuple[np.ndarray, ...], ...]  # per member, each chunk's training losses
    held_out: tuple[tuple[tuple[int, float], ...], ...]  # per member, its (epoch, held-out loss) points
    epoch: int  # the chunk boundary reached, the same for every member
    seconds: float
    total_seconds: float


def _population_data(setups: list[RunSetup]) -> Population:
    """The population's fixed parts."""
    x, y, weight = _training_data(setups)
    x_test, targets_test = (
        _stacked([setup.problem.x_test for setup in setups]),
        _stacked([setup.targets.test for setup in setups]),
    )
    rates, keys = np.asarray([setup.options["lr"] for setup in setups]), jnp.stack([setup.key for setup in setups])
    l2 = np.asarray([setup.options["l2"] for setup in setups])
    return Population(setups, x, y, x_test, targets_test, rates, l2, keys, weight)


def _fresh_members(population: Population) -> Members:
    """The members' state at epoch 0."""
    setups = population.setups
    count, nothing, params = len(setups), tuple(() for _ in setups), _initial_params(setups)
    return Members(
        params, _fresh_opt_states(params, population), np.ones(count, bool), np.zeros(count, np.int64), nothing,
        nothing, 0, 0.0, 0.0,
    )  # fmt: skip


def advance(population: Population, members: Members, epochs: int) -> Members:
    """``epochs`` more epochs of every member (:func:`jaxnn.fit_many`, the library call of population
    runs).  A member that diverged earlier stays at its last finite state, as its single run stops there."""
    first = population.setups[0]
    options = first.options
    result = fit_many(
        first.model,
        members.params,
        population.x,
        population.y,
        loss=first.head.loss,
        weight=population.weight,
        epochs=epochs,
        optimizer=options["optimizer"],
        learning_rate=population.rates,
        l2=population.l2,
        settings=solver_settings(options),
        batch_size=options["batch_size"],
        dropout=options["dropout"],
        key=population.keys,
        opt_state=members.opt_state,
        start_epoch=members.epoch,
        mesh=first.runtime.mesh if first.runtime.mesh.size > 1 else None,  # the members split across devices
    )
    alive = members.alive
    ran = np.where(alive, np.asarray(result.n_epochs), 0)
    histories = tuple(
        (*chunks, np.asarray(result.history[index, : ran[index]], np.float32)) if alive[index] else chunks
        for index, chunks in enumerate(members.histories)
    )
    return members._replace(
        params=_take_new_where(alive, distributed.to_host(result.params), members.params),
        opt_state=_take_new_where(alive, distributed.to_host(result.opt_state), members.opt_state),
        alive=alive & ~np.asarray(result.diverged, bool),
        epochs=members.epochs + ran,
        histories=histories,
        epoch=members.epoch + epochs,
    )


def _with_held_out(population: Population, members: Members) -> Members:
    """Every member that trained since its last point gets its held-out loss now, at the epochs it finished (one
    compiled call for all): a member that diverged since has the loss of its last finite state, at the epoch it
    reached.  A member with a point at its epoch already (it ran no epoch since, as one that diverged at a chunk's
    first step) keeps its points: its parameters, so its held-out loss, are those of its last point.  ``members``
    itself when no member is due."""
    due = [not points or points[-1][0] < members.epochs[index] for index, points in enumerate(members.held_out)]
    if not any(due):
        return members
    first = population.setups[0]
    losses = np.asarray(
        _compiled_held_out_losses(first.model, first.head, members.params, population.x_test, population.targets_test),
        float,
    )
    held_out = tuple(
        (*points, (int(members.epochs[index]), float(losses[index]))) if due[index] else points
        for index, points in enumerate(members.held_out)
    )
    return members._replace(held_out=held_out)


def progress_leader(latest: list[float], alive: np.ndarray) -> int:
    """The member progress shows: the lowest finite ``latest`` held-out loss among the members still ``alive``
    (a diverged member's loss is that of its last finite state, and it is never the best); once none is alive
    (or none has a finite loss) the lowest finite one of all; 0 when no loss is finite."""
    finite = [index for index, loss in enumerate(latest) if math.isfinite(loss)]
    healthy = [index for index in finite if alive[index]]
    return min(healthy or finite, key=lambda index: latest[index]) if finite else 0


def _progress_values(members: Members) -> tuple[float, None, float]:
    """The :func:`progress_leader`'s last training loss and its held-out loss."""
    latest = [points[-1][1] if points else math.nan for points in members.held_out]
    leader = progress_leader(latest, members.alive)
    trained = [part for part in members.histories[leader] if len(part)]
    return float(trained[-1][-1]) if trained else math.nan, None, latest[leader]


class _Checkpoints:
    """The population's checkpoints: every member's state (:mod:`jaxnn.cli.population_checkpoint`) and the best
    member's ``checkpoint.npz`` (:func:`population_results.save_best`)."""

    def __init__(self, setups: list[RunSetup], options: dict[str, Any]):
        self.setups, self.options = setups, options
        self.best = None  # the best member at the last write (None before, or without one)

    def save(self, members: Members) -> None:
        population_checkpoint.save(self.setups[0].out, self.setups, self.options, members)
        states = [_member_state(members, index) for index in range(len(self.setups))]
        self.best = population_results.save_best(self.setups, states, _as_single_run)

    def interrupted(self, members: Members) -> str:
        """The line a stop signal ends the run with."""
        out = self.setups[0].out
        if out is None:
            return f"{PROG}: interrupted at epoch {members.epoch}; nothing was saved (no --out)"
        line = f"{PROG}: interrupted at epoch {members.epoch}; every member checkpointed in {out}; continue with "
        line += f"--resume {out}"
        if self.best is None:
            return line
        flags = population_results.member_flags(self.setups[self.best].options)
        return f"{line} (the best member so far, {flags}, alone: --resume {out / CHECKPOINT_FILE} --out NEWDIR)"


def train(
    population: Population, options: dict[str, Any], members: Members, progress: Progress, stop: StopSignals
) -> list[TrainState]:
    """Train every member's run of ``population`` together from ``members`` (fresh or resumed), in chunks
    (:class:`jaxnn.cli.runner.ChunkRunner`), each member up to ``epochs`` or its divergence.

    Returns one :class:`TrainState` per member, its optimiser state in ``fit_many``'s form (see
    :func:`jaxnn.optimizers.fixed_rate_state`).  With ``--out`` the checkpoints are written every
    ``--checkpoint-seconds`` and at the end; a stop signal writes them and raises :class:`Interrupted` at the next
    chunk boundary.
    """
    setups = population.setups
    checkpoints = _Checkpoints(setups, options)
    hooks = Hooks(
        held_out=partial(_with_held_out, population),
        progress=_progress_values,
        interrupted=checkpoints.interrupted,
        save=None if setups[0].out is None else checkpoints.save,
        finished=lambda members: not members.alive.any(),
    )
    schedule = Schedule(setups[0].epochs, None, setups[0].checkpoint_seconds)
    members = ChunkRunner(schedule, hooks, progress, stop, setups[0].runtime).train(
        members, partial(advance, population)
    )
    return [_member_state(members, index) for index in range(len(setups))]


def _member_state(members: Members, index: int) -> TrainState:
    """Member ``index``'s :class:`TrainState` from its chunks' histories and its held-out ``(epoch, loss)`` points."""
    chunks = members.histories[index]
    history = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    points = np.asarray(members.held_out[index], float).reshape(-1, 2)
    return TrainState(
        member(members.params, index),
        member(members.opt_state, index),
        len(history),
        history,
        points[:, 0].astype(np.int64),
        points[:, 1],
        members.seconds,
        members.total_seconds,
        not bool(members.alive[index]),
    )


def _as_single_run(setup: RunSetup, state: TrainState) -> TrainState:
    """A member's state as its single run keeps it: the optimiser state in the single run's form (an ``--l2``
    run's keeps its rates, the form ``fit_many`` trains with: :func:`jaxnn.cli.training.make_optimizer`)."""
    if tunable_rates(setup.options) is not None:
        return state
    return state._replace(opt_state=fixed_rate_state(state.opt_state, setup.optimizer.init(state.params)))


def _check_resumed_data(problems: list[Problem], resumed: tuple[Path, dict[str, Any]], given_csv: str | None) -> None:
    """Every member's data (``problems``, in member order) is the data it trained on, as the population checkpoint
    and its config (``resumed``) record it."""
    path, stored = resumed
    fingerprints = stored.get("data_sha256")
    if not isinstance(fingerprints, list) or len(fingerprints) != len(problems):
        raise checkpoint.CheckpointError(f"{path} is corrupt: it does not hold one data fingerprint per member")
    for problem, stored_fingerprint in zip(problems, fingerprints, strict=True):
        check_same_data(problem, stored, stored_fingerprint, given_csv, path)


def execute(
    args: argparse.Namespace,
    stop: StopSignals,
    runtime: Runtime,
    out: Path | None,
    options: dict[str, Any],
    resumed: tuple[Path, dict[str, Any]] | None = None,
    *,
    before_training: Callable[[], None],
) -> int:
    """Carry out a population run, from its options (lists included) to the exit status; ``resumed``: the
    population checkpoint it continues and its config; ``before_training`` is called once every member is built
    (and resumed), just before training starts (``--overwrite`` removes the old run's files then)."""
    stored = None if resumed is None else resumed[1]
    epochs = cli_options.checked_total_epochs(args.epochs, options, stored, stored["epoch"] if stored else 0)
    setups = _member_setups(args, stop, runtime, out, options, epochs, resumed)
    if stop.pressed:
        raise Interrupted(f"{PROG}: interrupted while loading the data; nothing was saved")
    population = _population_data(setups)
    members = _fresh_members(population)
    if resumed is not None:
        members = population_checkpoint.load(resumed[0], members)
    if runtime.main:  # once nothing is refused (a refusal is one line), and a resumed run's data is its own
        say_warnings([setup.problem for setup in setups])
    if resumed is not None and not args.quiet:
        print(f"resuming {resumed[0]} at epoch {members.epoch} of {epochs}", flush=True)
    if stop.pressed:  # before anything is removed or written
        raise Interrupted(f"{PROG}: interrupted while building the networks; nothing was saved")
    before_training()
    name = f"{setups[0].problem.name} ({len(setups)} networks)"
    progress = make_progress(args.quiet, epochs, members.epoch, name)
    states = train(population, options, members, progress, stop)
    status = population_results.finish(setups, states, options, _as_single_run)
    if stopped_before_the_end(stop) and status == EXIT_OK:  # every member diverged: said so, and keeps its status
        raise Interrupted(
            f"{PROG}: interrupted after training; files in {out}" if out else f"{PROG}: interrupted after training"
        )
    return status
