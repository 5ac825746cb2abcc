"""The chunk runner drives the training of every jaxnn-train mode in chunks of epochs, and does between chunks what
every mode does: held-out loss, progress, checkpoints on time and on ``--checkpoint-every``, and Ctrl-C.

A mode gives the runner two things:

* its *advance* function, the one place it calls the training library: ``advance(state, n)`` returns the
  state ``n`` epochs on (an L-BFGS iteration counts as an epoch and the state carries the L-BFGS state; a
  population's state holds every member).  :meth:`ChunkRunner.train` calls it once per chunk.
* :class:`Hooks`: the held-out evaluation, the progress values, the checkpoint writer (None: the run writes no
  checkpoint, as a population run without ``--out``), the stop test before ``--epochs`` (a divergence), and the
  line Ctrl-C ends with.

The state is a NamedTuple with ``epoch`` (epochs done), ``seconds`` (time in the advance calls, over every
resumed run) and ``total_seconds`` (the same plus everything between chunks); the runner keeps the two times.

Chunks end at the multiples of a *grain* and at ``--epochs``.  The grain is :attr:`ChunkRunner.step` (about
1/50 of the run, and a divisor of ``--checkpoint-every``: :func:`progress_step`) or, when a chunk of that many
epochs would take more than half of ``--checkpoint-seconds``, the largest divisor of it that fits (measured: the
last chunk's seconds per epoch; the first chunk, which also compiles, is at most :data:`FIRST_CHUNK` epochs, to
measure).  So checkpoints come about every
``--checkpoint-seconds`` and stop signals are seen as often, however long the run and its epochs, while chunk
ends stay on multiples of the step and of ``--checkpoint-every``.  :meth:`ChunkRunner.chunk_epochs` is the one
place that decides a chunk's length.  Epoch ``e`` of a step-taking run always shuffles with ``fold_in(key, e)``,
so on CPU a run cut into any chunks ends bitwise equal to an uninterrupted one.

After each chunk: the held-out loss where one is due (at the multiples of :attr:`ChunkRunner.step` and where
training ends: epochs that do not depend on the pace, so two runs of one command, or a run stopped and resumed,
record the same held-out curve, given the same ``--epochs``), progress (``final`` when training ends there; it shows
the last held-out loss recorded), and a checkpoint when one is due: at the end, on a divergence, every
``--checkpoint-every`` epochs, and at the first chunk boundary ``--checkpoint-seconds`` or more after the last
write.  Before each chunk, a stop signal (Ctrl-C, SIGTERM or SIGHUP, received by any process; every process agrees on
which) stops the run: a mode that checkpoints writes the state reached, and :class:`Interrupted` is raised with the
mode's line.  A mode that checkpoints is also interrupted by a signal received during its last chunk, unless the run
stopped on its own there (its stop test: a divergence), which ends as it would have; one that writes no checkpoint
then finishes.  A closed stdout (the progress lines piped into ``head``) stops the run too: the state reached is
written, and the ``BrokenPipeError`` goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from jaxnn.cli.devices import Runtime, largest_in_any_process
from jaxnn.cli.errors import Interrupted
from jaxnn.cli.interrupts import StopSignals, exit_status
from jaxnn.cli.progress import Progress
from jaxnn.engine import FIRST_CHUNK, epochs_within

__all__ = [
    "FIRST_CHUNK",
    "PROGRESS_UPDATES",
    "ChunkRunner",
    "Hooks",
    "Schedule",
    "largest_divisor",
    "never",
    "next_stop",
    "progress_step",
]

PROGRESS_UPDATES = 50  # about this many chunks (progress updates, held-out evaluations) per run


State = Any  # a NamedTuple with epoch, seconds and total_seconds (see the module docstring)


def progress_step(epochs: int, checkpoint_every: int | None, longest: int | None = None) -> int:
    """Epochs per chunk: about ``epochs / PROGRESS_UPDATES`` (at most ``longest``); with ``checkpoint_every``,
    the largest of its divisors up to that, so that every such checkpoint falls on a chunk boundary."""
    target = max(1, math.ceil(epochs / PROGRESS_UPDATES))
    if longest is not None:
        target = min(target, longest)
    if checkpoint_every is None:
        return target
    return max(d for d in range(1, min(target, checkpoint_every) + 1) if checkpoint_every % d == 0)


def largest_divisor(step: int, limit: int) -> int:
    """The largest divisor of ``step`` that is at most ``limit`` (at least 1)."""
    if limit >= step:
        return step
    best = 1
    for small in range(1, math.isqrt(step) + 1):
        if step % small == 0:
            for divisor in (small, step // small):
                if best < divisor <= limit:
                    best = divisor
    return best


def next_stop(done: int, epochs: int, step: int) -> int:
    """The next chunk boundary: a multiple of ``step``, or the last epoch."""
    return min(epochs, (done // step + 1) * step)


def never(state: State) -> bool:
    """The stop test of a mode that stops only at ``--epochs``."""
    return False


class Schedule(NamedTuple):
    """How long a run is and when it checkpoints (the options ``--epochs``, ``--checkpoint-every`` and
    ``--checkpoint-seconds``), and the longest chunk its advance function takes (None: no limit)."""

    epochs: int
    checkpoint_every: int | None
    checkpoint_seconds: float
    longest_chunk: int | None = None


class Hooks(NamedTuple):
    """What one mode does between chunks.

    Attributes:
      held_out: the state with the held-out (test-split) loss at its epoch recorded (called at the multiples of
        the runner's step and where training ends), or the state itself where a point at its epoch is there.
      progress: ``(training loss, training accuracy or None, held-out loss)`` for :meth:`Progress.update`.
      interrupted: the line :class:`Interrupted` carries when Ctrl-C stops the run at ``state``.
      save: writes the state's checkpoint; None when the run writes none.
      finished: whether training stops at ``state`` before ``--epochs`` (a divergence).
    """

    held_out: Callable[[State], State]
    progress: Callable[[State], tuple[float, float | None, float]]
    interrupted: Callable[[State], str]
    save: Callable[[State], None] | None = None
    finished: Callable[[State], bool] = never


class ChunkRunner:
    """Training in chunks for one invocation: ``ChunkRunner(schedule, hooks, progress, stop, runtime).train(
    state, advance)``.  The returned state is the last one, timed, and checkpointed when the mode saves."""

    def __init__(self, schedule: Schedule, hooks: Hooks, progress: Progress, stop: StopSignals, runtime: Runtime):
        self.schedule, self.hooks, self.progress, self.stop, self.runtime = schedule, hooks, progress, stop, runtime
        self.step = progress_step(schedule.epochs, schedule.checkpoint_every, schedule.longest_chunk)
        self._started = self._last_write = self._mark = 0.0
        self._total_before = 0.0
        self._unsaved = True  # the state holds something no checkpoint of this invocation holds
        self._per_epoch: float | None = None  # seconds per epoch in the last chunk (None: not measured yet)

    def grain(self) -> int:
        """Chunks end on multiples of this: :attr:`step`, or its largest divisor whose chunk takes at most about
        half of ``--checkpoint-seconds`` at the last chunk's pace (at most :data:`FIRST_CHUNK` before any chunk
        was measured)."""
        budget = self.schedule.checkpoint_seconds / 2  # the engine's pacing of watched runs, on a grain of the step
        return largest_divisor(self.step, epochs_within(budget, self._per_epoch, first=FIRST_CHUNK, longest=self.step))

    def chunk_epochs(self, done: int) -> int:
        """The policy: epochs in the chunk that starts after ``done``, up to the next boundary.  With several
        processes every one takes the smallest grain of them all (they measure their own pace)."""
        grain = -largest_in_any_process(-self.grain(), self.runtime)
        return next_stop(done, self.schedule.epochs, grain) - done

    def train(self, state: State, advance: Callable[[State, int], State]) -> State:
        """Chunks of ``advance`` up to ``--epochs`` or the mode's stop test, with everything between them."""
        self._begin(state)
        cut_short = False
        while state.epoch < self.schedule.epochs and not self.hooks.finished(state):
            if self._stop_signal():
                cut_short = True
                break
            chunk = self.chunk_epochs(state.epoch)
            state = self._advanced(advance(state, chunk), chunk)
            state = self._after_chunk(state, ending=self._ending(state))
        return self._end(state, cut_short)

    # ----------------------------------------------------------------------------------------------
    # Between chunks.

    def _begin(self, state: State) -> None:
        self._started = self._last_write = self._mark = time.perf_counter()
        self._total_before = state.total_seconds
        self._unsaved = True

    def _stop_signal(self) -> bool:
        """Whether a stop signal came to any process (every process checks at the same points); with several
        processes they agree on the signal (the largest status), so every one exits with the same status."""
        if self.runtime.processes == 1:
            return self.stop.pressed
        status = largest_in_any_process(exit_status(self.stop) if self.stop.pressed else 0, self.runtime)
        if status:
            self.stop.agree(status - 128)
        return bool(status)

    def _ending(self, state: State) -> bool:
        return state.epoch >= self.schedule.epochs or self.hooks.finished(state)

    def _advanced(self, state: State, chunk: int) -> State:
        """A state just returned by the library after ``chunk`` epochs, with the time since the last chunk ended
        counted as training (and measured, for the next chunk's length)."""
        now = time.perf_counter()
        self._per_epoch = (now - self._mark) / max(1, chunk)
        self._unsaved = True
        state = state._replace(seconds=state.seconds + now - self._mark)
        self._mark = now
        return state

    def _timed(self, state: State) -> State:
        return state._replace(total_seconds=self._total_before + time.perf_counter() - self._started)

    def _after_chunk(self, state: State, *, ending: bool) -> State:
        if ending or state.epoch % self.step == 0:
            state = self.hooks.held_out(state)
        try:
            self.progress.update(state.epoch, *self.hooks.progress(state), final=ending)
        except BrokenPipeError:  # stdout closed early (jaxnn-train ... | head): keep what was trained, then end
            if self.hooks.save is not None:
                self._write(state)
            raise
        if self.hooks.save is not None and (ending or self._checkpoint_due(state)):
            state = self._write(state)
        self._mark = time.perf_counter()
        return state

    def _checkpoint_due(self, state: State) -> bool:
        every = self.schedule.checkpoint_every
        on_epochs = every is not None and state.epoch % every == 0
        return on_epochs or time.perf_counter() - self._last_write >= self.schedule.checkpoint_seconds

    def _write(self, state: State) -> State:
        state = self._timed(state)
        self.hooks.save(state)
        self._last_write, self._unsaved = time.perf_counter(), False
        return state

    def _end(self, state: State, cut_short: bool) -> State:
        """Close the progress; checkpoint what no checkpoint holds yet; raise :class:`Interrupted` after Ctrl-C.
        A run that ends here has a held-out point at its last epoch, also when no chunk ran (a resumed run that a
        stop signal had cut at its last epoch, between two points)."""
        self.progress.close()
        if not cut_short:
            with_point = self.hooks.held_out(state)  # the state itself where the point is there already
            if with_point is not state:
                state, self._unsaved = with_point, True
        saves = self.hooks.save is not None
        if saves and self._unsaved:
            state = self._write(state)
        # a run that stopped on its own in its last chunk (a divergence) is over: it ends as it would have
        if cut_short or (saves and self.stop.pressed and not self.hooks.finished(state)):
            raise Interrupted(self.hooks.interrupted(state))
        return self._timed(state)
