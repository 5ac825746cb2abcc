"""The one road from checked arrays to the compiled loop: :func:`train` runs a population of P ≥ 1 networks.

Every front end reaches the compiled training loop (``jaxnn._loop``) through this module and through
:func:`train` alone: ``jaxnn.fit`` (P = 1), ``jaxnn.fit_many``, data-parallel training (a ``mesh``), the
scikit-learn estimators and ``jaxnn-train``.  No other module imports the loop.  The front ends validate the
user's input at their door (``jaxnn._checks``) and build a :class:`RunSpec`; the engine decides what is
left — the layout (:func:`decide_layout`, its one home), how members are grouped into compiled calls, where
arrays live on a mesh, how the epochs are split into compiled chunks — and gathers a :class:`FitResult`.

A population.  The members share the architecture, the loss, the solver's kind and the batch size (what
selects the compiled program); each has its own parameters, optimiser state (with its learning rate and L2
rate, when the solver keeps them in its state), shuffling key, dropout rates and stopping-rule memory,
every leaf with a leading member axis of size P (:class:`Members`).  Data arrays are shared by all members
or one per member (the ``axes`` of :class:`Data`: ``None`` or ``0``).  Member i's result is the result of
training it alone, up to the order of floating-point sums in a batched product.

Compiled calls.  A group of one member runs the loop as it is; a larger group runs it under ``jax.vmap``.
On XLA's CPU backend, where batched products of many tiny matrices run as a loop of small calls, members
run in groups of equal size of at most ``CPU_GROUP`` (:func:`default_group_size`); elsewhere all at once.
Epochs run in chunks of at most ``spec.chunk`` per compiled call (:func:`run_chunks`, the chunk driver the
L-BFGS solver shares).  In one process the host waits for each chunk and sizes the next to take about
``CHUNK_SECONDS`` (:class:`Pace`; the chunk's end is a runtime value, so this compiles nothing, and on the CPU
a run cut into any chunks ends with the same bits): Ctrl-C, which Python sees between compiled calls, lands
within about a second and leaves at most one chunk computing, and with a stopping rule a run that stops early
runs no further chunk.  Several processes run chunks of ``spec.chunk``, the same in each.  A front end that
looks at the run between chunks (scikit-learn's callbacks) passes a :class:`ChunkHook`, whose ``seconds``
pace its chunks.

Over devices and hosts.  With a ``mesh`` (``jaxnn.distributed.make_mesh``, after
``jaxnn.distributed.initialize`` for several hosts) one network's training rows are split across its devices
(padded with rows of weight 0 to a multiple of the device count; data-parallel, ``jax.jit`` inserts the
all-reduce of the gradient shares), and a population's members are split across them (``P / d`` per device,
one compiled program).  The estimators' populations use :func:`estimators_mesh`: every device taking part
(this process's, or every process's after ``jaxnn.distributed.initialize``), when there are several.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn._checks import member_keys
from jaxnn._loop import (
    EPOCH_CHUNK,
    LAYOUTS,
    Data,
    FitResult,
    LoopState,
    RunSpec,
    StopCarry,
    Stopping,
    TrainCarry,
    chunk,
    epoch_batches,
    forward,
    host_array,
    result_of,
    step,
    tree_where,
)
from jaxnn._loop import compiled_programs as loop_programs
from jaxnn.layers import Params, Sequential

__all__ = [
    "CHUNK_SECONDS",
    "CPU_GROUP",
    "EPOCH_CHUNK",
    "FIRST_CHUNK",
    "LAYOUTS",
    "ChunkHook",
    "Data",
    "FitResult",
    "Members",
    "Pace",
    "RunSpec",
    "Stopping",
    "compiled_programs",
    "decide_layout",
    "default_group_size",
    "epoch_batches",
    "epochs_within",
    "estimators_mesh",
    "forward",
    "member",
    "run_chunks",
    "stacked",
    "step",
    "train",
    "train_one",
    "tree_where",
    "with_member_axis",
]

CPU_GROUP = 8  # members per compiled call on the CPU (the per-member time was lowest at 4-8: benchmarks/README.md)
SHARED = Data(None, None, None, None, None)  # every data array shared by all members
CHUNK_SECONDS = 1.0  # a run watched between chunks (ChunkHook): about this wall time per compiled chunk
FIRST_CHUNK = 10  # a paced run's first chunk (it compiles, and measures the pace): at most this many epochs


class Members(NamedTuple):
    """The members' own state, every leaf with a leading member axis of size P.

    ``best`` and ``no_improvement`` continue the stopping rule of an earlier run (its best monitored value
    and its count of epochs without improvement; with a validation score, ``params`` are taken to be the
    best-scoring ones); None starts the rule afresh.  ``dropout``: every member's rates, one per hidden layer
    ``(P, n_hidden)``, which a ``spec.dropout`` run needs (and any other ignores).
    """

    params: Params  # model.init's layout, every leaf with the member axis first
    opt_state: optax.OptState
    keys: jax.Array
    best: np.ndarray | None = None
    no_improvement: np.ndarray | None = None
    dropout: np.ndarray | None = None


class ChunkHook(NamedTuple):
    """A look at a run between its compiled chunks (:func:`train`'s ``hook``; scikit-learn's callbacks).

    After every chunk, the last included, ``seen(members, epochs, result)`` gets the members that the compiled
    call ran (their indices in :func:`train`'s population; a member repeated to fill a mesh comes twice), the
    epoch each has reached (its own end, once it stopped or diverged) and ``result()``: their
    :class:`FitResult` so far (host arrays, the members in the order of ``members``; a transfer, so asked for
    only when needed).  The host waits for each chunk, and chunks take about ``seconds`` each (:class:`Pace`).
    """

    seen: Callable[[np.ndarray, np.ndarray, Callable[[], FitResult]], None]
    seconds: float = CHUNK_SECONDS


# --------------------------------------------------------------------------------------------------
# Decisions: the layout and the groups.


COLUMNS_WIDEST = 32  # the widest layer (inputs included) the column layout runs faster on XLA's CPU backend


def decide_layout(
    layout: str | None, model: Sequential, n_features: int | None = None, backend: str | None = None
) -> str:
    """The loop's layout: ``layout`` when given (one of ``LAYOUTS``), else the faster one for the network's shape.

    On XLA's CPU backend (``backend``, default JAX's default backend) ``"columns"`` — the bias folded into the
    weights, ``W̃·Ã`` — when the widest of ``n_features`` (when known) and the layers' units is at most
    ``COLUMNS_WIDEST``, else ``"rows"``; ``"rows"`` on accelerators.  The threshold comes from
    ``benchmarks/layout_sweep.py`` (its table is in ``benchmarks/README.md``): narrow networks run faster in
    columns, wide ones in rows, most clearly with minibatches (gathered as columns) and with Adam (whose
    parameters are folded in every step); the batch size and the float type moved no measured point across
    the threshold, so they do not enter the choice."""
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))} or None, got {layout!r}")
        return layout
    if (backend or jax.default_backend()) != "cpu":
        return "rows"
    widths = [layer.units for layer in model.layers]
    if n_features is not None:
        widths.append(n_features)
    return "columns" if max(widths, default=0) <= COLUMNS_WIDEST else "rows"


def default_group_size(n_members: int) -> int:
    """Members per compiled call: all of them on an accelerator; on XLA's CPU backend at most ``CPU_GROUP``,
    in groups of equal size ``⌈P / ⌈P / CPU_GROUP⌉⌉`` (10 members run as 2 × 5, not 8 + 8 with 6 repeated)."""
    if jax.default_backend() != "cpu":
        return n_members
    n_groups = -(-n_members // CPU_GROUP)
    return -(-n_members // n_groups)


def estimators_mesh() -> jax.sharding.Mesh | None:
    """A mesh over every device taking part when there are several, else None: where the estimators'
    populations (``fit_estimators``, the searches) spread their members.

    The devices are this process's, or, after ``jaxnn.distributed.initialize``, every process's: then every
    process must make the same calls with the same data (as for ``fit_many`` with a mesh), and each gets every
    member's result.
    """
    devices = jax.devices()  # every process's after jaxnn.distributed.initialize; else this process's
    if len(devices) < 2:
        return None
    from jaxnn import distributed  # the mesh helpers; imported here, since most runs need none

    return distributed.make_mesh(devices)


def member(tree, index):
    """Member ``index`` (an int or a slice) of a population's pytree (params, optimiser state, a FitResult)."""
    return jax.tree.map(lambda leaf: leaf[index], tree)


def stacked(trees: list):
    """Pytrees of equal structure as one with a leading member axis on every leaf (host arrays)."""
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves]), *trees)


# --------------------------------------------------------------------------------------------------
# The chunk driver, shared with the L-BFGS solver.


def epochs_within(seconds: float, per_epoch: float | None, *, first: int, longest: int) -> int:
    """The epochs (or iterations) of a chunk that should take about ``seconds`` at ``per_epoch`` seconds each
    (the last chunk's pace): from 1 to ``longest``; ``first`` (at most ``longest``) before any chunk was
    measured (``per_epoch`` None), ``longest`` when the pace measured nothing.  jaxnn-train's chunk runner
    sizes its chunks with it too."""
    if per_epoch is None:
        return min(first, longest)
    if per_epoch <= 0:
        return longest
    return max(1, math.floor(min(seconds / per_epoch, longest)))


class Pace:
    """Chunk lengths of about ``seconds`` of wall time each (:func:`epochs_within`), for a run the host watches
    between chunks: :func:`run_chunks` asks :meth:`size` before each chunk and calls :meth:`ran` once the
    chunk's result is on the host; the pace of the last chunk sizes the next (the first, which compiles, runs
    at most :data:`FIRST_CHUNK` epochs)."""

    def __init__(self, seconds: float = CHUNK_SECONDS, *, longest: int, first: int = FIRST_CHUNK):
        self.seconds, self.longest, self.first = seconds, longest, first
        self.per_epoch: float | None = None  # seconds per epoch of the last chunk (None: none measured yet)
        self._started = 0.0

    def size(self) -> int:
        """The next chunk's length; its clock starts now."""
        self._started = time.perf_counter()
        return epochs_within(self.seconds, self.per_epoch, first=self.first, longest=self.longest)

    def ran(self, epochs: int) -> None:
        """The chunk asked for ``epochs`` is done (its result on the host)."""
        self.per_epoch = (time.perf_counter() - self._started) / max(1, epochs)


def run_chunks(
    advance: Callable[[Any, int, int], Any],
    carry,
    *,
    start: int,
    end: int,
    size: int | Pace,
    finished: Callable[[Any, int], bool] | None = None,
    between: Callable[[list[tuple[int, Any]]], None] | None = None,
) -> list[tuple[int, Any]]:
    """Call ``carry = advance(carry, first, stop)`` for consecutive ranges ``[first, stop)`` of at most
    ``size`` steps from ``start`` to ``end``; returns every ``(first, carry)``.

    Without ``finished`` and ``between`` every call is queued at once and the host never waits.  Otherwise,
    after each call, ``finished(carry, stop)`` (which reads the carry, so the host waits for it) ends the
    run when it says so, and ``between(chunks)`` sees the run so far (progress, checkpoints); its raising
    ``StopIteration`` ends the run there, keeping what was reached.  A :class:`Pace` as ``size`` sizes each
    range (the host then waits for every call, to time it).
    """
    chunks = []
    first = start
    while first < end:
        stop = min(first + (size if isinstance(size, int) else size.size()), end)
        carry = advance(carry, first, stop)
        if isinstance(size, Pace):
            jax.block_until_ready(carry)
            size.ran(stop - first)
        chunks.append((first, carry))
        if finished is not None and finished(carry, stop):
            break
        if between is not None and stop < end:
            try:
                between(chunks)
            except StopIteration:
                break
        first = stop
    return chunks


# --------------------------------------------------------------------------------------------------
# The compiled programs.


def compiled_programs() -> int:
    """Programs this process has traced (and so compiled), the training loop's and L-BFGS's together: the one
    count a compile-once test watches."""
    from jaxnn import lbfgs  # the solver imports the engine: asked for here, when counting

    return loop_programs() + lbfgs.compiled_programs()


def _chunk_of_group(spec: RunSpec, axes: Data, *, data: Data, key, train, stop, start, stop_epoch) -> LoopState:
    """:func:`jaxnn._loop.chunk` under ``vmap`` over the members; ``axes`` says which data arrays are shared."""

    def one(data, key, train, stop):
        return chunk(spec, data=data, key=key, train=train, stop=stop, start=start, stop_epoch=stop_epoch)

    return jax.vmap(one, in_axes=(axes, 0, 0, 0))(data, key, train, stop)


def _chunk_of_one(spec: RunSpec, axes: Data, *, data: Data, key, train, stop, start, stop_epoch) -> LoopState:
    """A group of one member through the unbatched :func:`jaxnn._loop.chunk` (a ``vmap`` over one member runs
    slower on the CPU); same inputs and outputs as :func:`_chunk_of_group`."""

    def alone(tree):
        return jax.tree.map(lambda leaf: leaf[0], tree)

    data = Data(*(array if axis is None else array[0] for array, axis in zip(data, axes, strict=True)))
    out = chunk(spec, data=data, key=key[0], train=alone(train), stop=alone(stop), start=start, stop_epoch=stop_epoch)
    return jax.tree.map(lambda leaf: leaf[None], out)


# The compiled loops, within the programs jaxnn holds at once (jaxnn._builds.HELD_PROGRAMS_LIMIT).
_compiled_chunk_of_group = FallbackJit(_chunk_of_group, PLAIN_BUILDS, static_argnames=("spec", "axes"))
_compiled_chunk_of_one = FallbackJit(_chunk_of_one, PLAIN_BUILDS, static_argnames=("spec", "axes"))


# --------------------------------------------------------------------------------------------------
# The engine.


def train(
    spec: RunSpec,
    members: Members,
    data: Data,
    *,
    axes: Data = SHARED,
    start_epoch: int,
    epochs: int,
    group_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    hook: ChunkHook | None = None,
) -> FitResult:
    """Train every member for epochs ``start_epoch … start_epoch + epochs − 1`` of ``spec``.

    The arrays are used as given: the front end has checked them and cast them to the members' float dtype
    (validation arrays are empty ``(0, 0)`` without a ``spec.score``).  ``group_size`` overrides
    :func:`default_group_size`.  With ``mesh``, one member's rows are split across its devices; a
    population's members across groups of its devices (:func:`jaxnn.distributed.population_mesh`: as many groups
    as divide the device count without exceeding P, each member's rows split over its group's devices; members
    repeated to fill every group), over every process of the mesh, in one compiled program, or one per
    ``group_size`` members when given (its memory grows with the members it holds).  Returns a :class:`FitResult` whose
    leaves have a leading member axis (histories NaN after a member's own last epoch) on the host.  ``hook``
    looks at the run between chunks (:class:`ChunkHook`); without one nothing waits for the host.
    """
    n_members = len(members.keys)
    if mesh is not None:
        from jaxnn import distributed  # the mesh helpers; imported here, since most runs need none

        settings = (repr(spec.model), spec.loss.name, spec.batch_size, spec.stopping, spec.layout, spec.shuffle)
        distributed.refuse_differing_processes(
            mesh, "training on several hosts", members=members, data=data, settings=(*settings, start_epoch, epochs)
        )
    if mesh is not None and n_members > 1:
        on_mesh = partial(_train_members_on_mesh, spec, members, data, axes, mesh, start_epoch, epochs, hook)
        return _in_groups(on_mesh, n_members, n_members if group_size is None else min(group_size, n_members))
    if mesh is not None:
        return _train_on_mesh(spec, members, data, axes, mesh, start_epoch, epochs, hook)
    group = default_group_size(n_members) if group_size is None else min(group_size, n_members)
    return _in_groups(
        partial(_train_group, spec, members, data, axes, start_epoch=start_epoch, epochs=epochs, hook=hook),
        n_members,
        group,
    )


def _in_groups(train_rows: Callable[[np.ndarray], FitResult], n_members: int, group: int) -> FitResult:
    """``train_rows(rows)`` for the members in groups of ``group``, their results joined in member order."""
    parts = []
    for first in range(0, n_members, group):
        rows = np.arange(first, first + group) % n_members  # the last group wraps round to keep one shape
        part = train_rows(rows)
        parts.append(member(part, slice(0, n_members - first)) if first + group > n_members else part)
    return parts[0] if len(parts) == 1 else _concatenate(parts)


def train_one(
    spec: RunSpec,
    *,
    params,
    opt_state,
    x,
    y,
    weight,
    key: jax.Array,
    start_epoch: int,
    epochs: int,
    x_val=None,
    y_val=None,
    best: float | None = None,
    no_improvement: int = 0,
    dropout=None,
    mesh: jax.sharding.Mesh | None = None,
    hook: ChunkHook | None = None,
) -> FitResult:
    """One network through :func:`train` (a population of one, its data shared): the result without the member
    axis, the counts and flags as Python values.  ``x_val``/``y_val`` go with ``spec.score``, ``dropout`` (one
    rate per hidden layer) with ``spec.dropout``; ``hook`` sees member 0."""

    members = Members(
        params=with_member_axis(params),
        opt_state=with_member_axis(opt_state),
        keys=member_keys(key, 1),
        best=None if best is None else np.asarray([best]),
        no_improvement=np.asarray([no_improvement]),
        dropout=None if dropout is None else with_member_axis(dropout),
    )
    if x_val is None:
        x_val = y_val = np.zeros((0, 0), np.asarray(y).dtype)
    data = Data(x, y, weight, x_val, y_val)
    return single(train(spec, members, data, start_epoch=start_epoch, epochs=epochs, mesh=mesh, hook=hook))


def with_member_axis(tree):
    """One network's pytree as a population of one: every leaf with a leading member axis of size 1 (host
    arrays)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[None], tree)


def single(result: FitResult) -> FitResult:
    """The one member of a population's result (host arrays: indexing device arrays would compile a program
    per leaf), its counts and flags as Python values."""
    one = jax.tree.map(lambda leaf: np.asarray(leaf)[0], result)
    return one._replace(
        diverged=bool(one.diverged),
        n_epochs=int(one.n_epochs),
        stopped=bool(one.stopped),
        no_improvement=int(one.no_improvement),
    )


def _initial_carries(spec: RunSpec, members: Members, dtype) -> tuple[TrainCarry, StopCarry]:
    n = len(members.keys)
    if members.best is not None:  # an earlier run's, continued (or carried through unread)
        best = np.asarray(members.best, dtype)
    elif spec.stopping is None:  # unread: 0, as ±inf would come back out of the program (jax_debug_infs)
        best = np.zeros(n, dtype)
    else:
        best = np.full(n, -np.inf if spec.score is not None else np.inf, dtype)
    count = np.zeros(n, np.int32) if members.no_improvement is None else np.asarray(members.no_improvement, np.int32)
    train_carry = TrainCarry(members.params, members.opt_state, np.ones(n, bool), _dropout_rates(spec, members, dtype))
    return train_carry, StopCarry(best, members.params if spec.score is not None else None, count)


def _dropout_rates(spec: RunSpec, members: Members, dtype):
    """The members' dropout rates in the run's float type for a ``spec.dropout`` run, else None (not in the
    program)."""
    if not spec.dropout:
        return None
    if members.dropout is None:
        raise ValueError("a run with spec.dropout needs the members' dropout rates (Members.dropout)")
    if isinstance(members.dropout, jax.Array):  # placed on a mesh already
        return members.dropout
    return np.asarray(members.dropout, dtype)


def _train_group(
    spec: RunSpec, members: Members, data: Data, axes: Data, rows, *, start_epoch, epochs, hook=None
) -> FitResult:
    """The members ``rows`` trained by one compiled program."""
    members, data = _picked(members, data, axes, rows)
    return _run_program(spec, members, data, axes, start_epoch, epochs, hook, rows)


def _picked(members: Members, data: Data, axes: Data, rows) -> tuple[Members, Data]:
    """The members ``rows`` (and their data), picked on the host: an eager JAX gather per leaf cost more than a
    short training run.  All of them in order are the population as it is."""
    if len(rows) == len(members.keys) and np.array_equal(rows, np.arange(len(rows))):
        return members, data
    pick = partial(jax.tree.map, lambda leaf: np.asarray(leaf)[rows])
    members = Members(
        params=pick(members.params),
        opt_state=pick(members.opt_state),
        keys=members.keys[rows],
        best=None if members.best is None else members.best[rows],
        no_improvement=None if members.no_improvement is None else members.no_improvement[rows],
        dropout=None if members.dropout is None else np.asarray(members.dropout)[rows],
    )
    return members, Data(*(array if axis is None else array[rows] for array, axis in zip(data, axes, strict=True)))


def _run_program(
    spec: RunSpec, members: Members, data: Data, axes: Data, start_epoch, epochs, hook=None, rows=(0,)
) -> FitResult:
    """The members trained by one compiled program: the loop as it is for one member, under ``vmap`` for more;
    ``rows``: their indices in the population, for ``hook``."""
    train_carry, stop_carry = _initial_carries(spec, members, data.y.dtype)
    compiled = _compiled_chunk_of_one if len(members.keys) == 1 else _compiled_chunk_of_group
    program = partial(compiled, spec, axes)
    return drive(
        spec,
        program,
        data=data,
        key=members.keys,
        train=train_carry,
        stop=stop_carry,
        start_epoch=start_epoch,
        epochs=epochs,
        seen=None if hook is None else partial(hook.seen, np.asarray(rows)),
        seconds=CHUNK_SECONDS if hook is None else hook.seconds,
    )


def drive(
    spec: RunSpec,
    program: Callable[..., LoopState],
    *,
    data: Data,
    key,
    train: TrainCarry,
    stop: StopCarry,
    start_epoch: int,
    epochs: int,
    seen: Callable[[np.ndarray, Callable[[], FitResult]], None] | None = None,
    seconds: float = CHUNK_SECONDS,
) -> FitResult:
    """Call ``program(data=, key=, train=, stop=, start=, stop_epoch=)`` — :func:`jaxnn._loop.chunk` compiled
    over a group of members — chunk by chunk (:func:`run_chunks`) and gather the :class:`FitResult`.

    With ``seen`` (a :class:`ChunkHook`'s, its members bound), chunks take about ``seconds`` each
    (:class:`Pace`) and ``seen(epochs, result)`` follows each one, the last included."""

    def advance(state: LoopState, first: int, stop_epoch: int) -> LoopState:
        return program(
            data=data,
            key=key,
            train=state.train,
            stop=state.stop,
            start=np.uint32(first),
            stop_epoch=np.uint32(stop_epoch),
        )

    def every_member_ended(state: LoopState, stop: int) -> bool:
        return np.max(host_array(state.epoch)) < stop

    looked = [0]  # the chunks seen so far

    def look(chunks: list) -> None:
        looked[0] = len(chunks)
        run = list(chunks)
        seen(host_array(run[-1][1].epoch), lambda: jax.tree.map(host_array, result_of(spec, run)))

    chunks = run_chunks(
        advance,
        LoopState(epoch=None, train=train, stop=stop, history=None, scores=None, validation_losses=None),
        start=start_epoch,
        end=start_epoch + epochs,
        size=_chunk_size(spec, seen is not None, seconds),
        finished=every_member_ended if spec.stopping is not None else None,
        between=None if seen is None else look,
    )
    if seen is not None and looked[0] < len(chunks):  # the last chunk (run_chunks looks between chunks only)
        look(chunks)
    return result_of(spec, chunks)


def _chunk_size(spec: RunSpec, watched: bool, seconds: float) -> int | Pace:
    """The chunks of :func:`drive`: about ``seconds`` each (:class:`Pace`) in one process, else ``spec.chunk``.

    Python sees Ctrl-C (a KeyboardInterrupt) only between compiled calls, and a running program cannot be
    stopped: chunks of ``spec.chunk`` epochs of a slow epoch (many rows) kept the user waiting for minutes, and
    without a stopping rule every chunk was queued at once, so the whole run went on computing after the
    interrupt had landed (slowing the next fit).  Paced, the host waits for each chunk (about ``seconds`` of
    work, so the wait costs nothing measurable) and the interrupt lands within about ``seconds``; on the CPU any
    chunks give the same bits.  Several processes must run the same chunks, and each would time its own: they
    keep ``spec.chunk`` (a watched run, the estimators' callbacks, is one process's)."""
    if watched or jax.process_count() == 1:
        return Pace(seconds, longest=spec.chunk)
    return spec.chunk


def _concatenate(parts: list[FitResult]) -> FitResult:
    """Groups of members back into one population; histories padded with NaN to the longest."""
    width = max(part.history.shape[1] for part in parts)

    def padded(array):
        return np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=np.nan)

    def joined(*leaves):
        return np.concatenate([np.asarray(leaf) for leaf in leaves])

    return FitResult(
        params=jax.tree.map(joined, *(part.params for part in parts)),
        opt_state=jax.tree.map(joined, *(part.opt_state for part in parts)),
        history=np.concatenate([padded(part.history) for part in parts]),
        diverged=np.concatenate([part.diverged for part in parts]),
        n_epochs=np.concatenate([part.n_epochs for part in parts]),
        validation_scores=np.concatenate([padded(part.validation_scores) for part in parts]),
        stopped=np.concatenate([part.stopped for part in parts]),
        no_improvement=np.concatenate([part.no_improvement for part in parts]),
        validation_losses=np.concatenate([padded(part.validation_losses) for part in parts]),
    )


# --------------------------------------------------------------------------------------------------
# Data-parallel: the rows split across a mesh.


def _train_on_mesh(spec, members: Members, data: Data, axes: Data, mesh, start_epoch, epochs, hook) -> FitResult:
    """One member on rows split across ``mesh``'s devices (whatever the mesh's shape and axis names, as a
    population takes them); the results fully replicated, read on the host.  Data given per member
    (``fit_many`` with P = 1) is that member's own, so it is used as shared data."""
    from jaxnn import distributed  # the mesh helpers; imported here, since most runs need none

    if len(members.keys) != 1:
        raise ValueError("a mesh trains one network on rows split across its devices: pass one member")
    mesh = distributed.make_mesh(np.asarray(mesh.devices).reshape(-1))  # its devices, along the axis "batch"
    data, axes = _as_shared(data, axes), SHARED
    n_real = data.x.shape[0]
    sharded = distributed.shard_rows(mesh, data.x, data.y, data.weight, dtype=data.y.dtype)
    spec = spec._replace(batch_size=sharded.x.shape[0] if spec.batch_size >= n_real else spec.batch_size)
    replicated = members._replace(
        params=distributed.replicate(mesh, members.params),
        opt_state=distributed.replicate(mesh, members.opt_state),
        keys=distributed.place_keys(mesh, members.keys),
        dropout=_rates_as(members, data.y.dtype, partial(distributed.replicate, mesh)),
    )
    data = Data(
        sharded.x,
        sharded.y,
        sharded.weight,
        distributed.replicate(mesh, data.x_val),
        distributed.replicate(mesh, data.y_val),
    )
    return distributed.to_host(_run_program(spec, replicated, data, axes, start_epoch, epochs, hook))


def _as_shared(data: Data, axes: Data) -> Data:
    """A population of one's data with the member axis taken off the arrays given per member."""
    return Data(*(array if axis is None else np.asarray(array)[0] for array, axis in zip(data, axes, strict=True)))


def _train_members_on_mesh(
    spec, members: Members, data: Data, axes: Data, mesh, start_epoch, epochs, hook, rows
) -> FitResult:
    """The population's members ``rows`` split across ``mesh``'s devices (of one process or several), in one
    compiled program: the members over groups of devices, and, when there are fewer members than devices, each
    member's training rows over the devices of its group (padded with rows of weight 0); the results gathered on
    every host."""
    from jaxnn import distributed  # the mesh helpers; imported here, since most runs need none

    n_members = len(rows)
    grid = distributed.population_mesh(mesh, n_members)
    n_groups, n_row_shards = grid.devices.shape
    rows = np.resize(rows, n_members + (-n_members % n_groups))  # repeat members to fill every group
    members, data = _picked(members, data, axes, rows)
    n_real = data.x.shape[-2]
    extra = distributed.padding_for(n_real, n_row_shards)
    if extra:  # rows of weight 0 change nothing (jaxnn._loop.epoch_batches)
        data = data._replace(
            x=_padded_rows(data.x, extra, from_end=2),
            y=_padded_rows(data.y, extra, from_end=2),
            weight=_padded_rows(data.weight, extra, from_end=1),
        )
    if spec.batch_size >= n_real:
        spec = spec._replace(batch_size=n_real + extra)
    member_axis, batch_axis = distributed.MEMBER_AXIS, distributed.BATCH_AXIS
    split = members._replace(
        params=distributed.place(grid, members.params, member_axis),
        opt_state=distributed.place(grid, members.opt_state, member_axis),
        keys=distributed.place_keys(grid, members.keys, member_axis),
        dropout=_rates_as(members, data.y.dtype, lambda rates: distributed.place(grid, rates, member_axis)),
    )
    training = [
        distributed.place(grid, array, batch_axis)
        if axis is None
        else distributed.place(grid, array, member_axis, batch_axis)
        for array, axis in zip(data[:3], axes[:3], strict=True)
    ]
    validation = [
        distributed.place(grid, array) if axis is None else distributed.place(grid, array, member_axis)
        for array, axis in zip(data[3:], axes[3:], strict=True)
    ]
    result = _run_program(spec, split, Data(*training, *validation), axes, start_epoch, epochs, hook, rows)
    return member(jax.tree.map(host_array, result), slice(0, n_members))


def _rates_as(members: Members, dtype, place: Callable):
    """The members' dropout rates in ``dtype``, laid out by ``place`` (None stays None)."""
    return None if members.dropout is None else place(np.asarray(members.dropout, dtype))


def _padded_rows(array, extra: int, *, from_end: int) -> np.ndarray:
    """``array`` with ``extra`` rows of zeros after its rows, the axis ``from_end`` places from its end (2 for
    ``x``/``y``, 1 for the weights; a per-member array has the member axis first)."""
    array = np.asarray(array)
    widths = [(0, 0)] * array.ndim
    widths[array.ndim - from_end] = (0, extra)
    return np.pad(array, widths)
