"""The chunk runner of jaxnn-train on its own: chunk boundaries, checkpoint timing, progress and Ctrl-C."""

import itertools
from typing import NamedTuple

import pytest

from jaxnn.cli import runner as runner_module
from jaxnn.cli.devices import Runtime
from jaxnn.cli.errors import Interrupted
from jaxnn.cli.progress import Progress
from jaxnn.cli.runner import ChunkRunner, Hooks, Schedule

RUNTIME = Runtime(None, "cpu", 1, True)  # one process: Ctrl-C is this process's flag


class State(NamedTuple):
    epoch: int = 0
    seconds: float = 0.0
    total_seconds: float = 0.0
    held_out: tuple[int, ...] = ()  # the epochs the held-out loss was evaluated at
    diverged: bool = False


class CtrlC:
    pressed = False


class Recorder(Progress):
    def __init__(self):
        self.updates, self.closed = [], False

    def update(self, epoch, loss, score, test_loss, *, final=False):
        self.updates.append((epoch, final))

    def close(self):
        self.closed = True


def _runner(epochs, *, every=None, seconds=1e9, save=True, finished=lambda state: state.diverged, ctrl_c=None):
    saved, progress = [], Recorder()
    hooks = Hooks(
        held_out=lambda state: (  # the state itself where a point at its epoch is there already, as the modes'
            state if state.held_out[-1:] == (state.epoch,) else state._replace(held_out=(*state.held_out, state.epoch))
        ),
        progress=lambda state: (0.5, None, 0.25),
        interrupted=lambda state: f"stopped at {state.epoch}",
        save=(lambda state: saved.append(state.epoch)) if save else None,
        finished=finished,
    )
    runner = ChunkRunner(Schedule(epochs, every, seconds), hooks, progress, ctrl_c or CtrlC(), RUNTIME)
    return runner, saved, progress


def test_chunks_end_on_the_steps_boundaries_and_checkpoints_fall_on_them():
    runner, saved, progress = _runner(120, every=10)
    asked = []

    def advance(state, n):
        asked.append((state.epoch, n))
        return state._replace(epoch=state.epoch + n)

    final = runner.train(State(epoch=7), advance)  # a resumed run: its first chunk ends on a boundary
    assert runner.step == 2 and asked[:2] == [(7, 1), (8, 2)] and final.epoch == 120
    assert final.held_out == tuple(range(8, 121, 2)) and progress.closed
    assert saved == list(range(10, 121, 10))  # every 10 epochs, the last one also the end: written once
    assert [final for _, final in progress.updates] == [False] * 56 + [True]
    assert final.seconds <= final.total_seconds


def test_checkpoint_seconds_zero_writes_after_every_chunk_and_nothing_twice():
    runner, saved, _ = _runner(5, seconds=0)
    assert runner.train(State(), lambda state, n: state._replace(epoch=state.epoch + n)).epoch == 5
    assert saved == [1, 2, 3, 4, 5]


def test_a_run_with_nothing_left_still_writes_its_checkpoint():
    runner, saved, progress = _runner(5)
    assert runner.train(State(epoch=5), lambda state, n: pytest.fail("nothing to train")).epoch == 5
    assert saved == [5] and progress.updates == []


def test_held_out_points_fall_on_the_steps_multiples_and_the_end_whatever_the_chunks():
    """Chunks of one epoch (--checkpoint-seconds 0, after the first) or of the whole step: the same points, every
    2 epochs of a 100-epoch run; a run resumed where a stopped one was cut, between points, gets its last one."""
    for seconds in (0, 1e9):
        runner, _, _ = _runner(100, seconds=seconds)
        final = runner.train(State(), lambda state, n: state._replace(epoch=state.epoch + n))
        assert runner.step == 2 and final.held_out == tuple(range(2, 101, 2))
    runner, saved, _ = _runner(5)
    final = runner.train(State(epoch=5, held_out=(4,)), lambda state, n: pytest.fail("nothing to train"))
    assert final.held_out == (4, 5) and saved == [5]


def test_a_divergence_stops_the_run_and_is_checkpointed():
    runner, saved, progress = _runner(100)
    final = runner.train(State(), lambda state, n: state._replace(epoch=state.epoch + 1, diverged=state.epoch == 3))
    assert (final.epoch, final.diverged, saved) == (4, True, [4]) and progress.updates[-1] == (4, True)


def test_ctrl_c_checkpoints_the_last_chunk_and_raises_interrupted():
    ctrl_c = CtrlC()
    runner, saved, progress = _runner(100, ctrl_c=ctrl_c)

    def advance(state, n):
        ctrl_c.pressed = state.epoch + n == 6
        return state._replace(epoch=state.epoch + n)

    with pytest.raises(Interrupted, match="stopped at 6"):
        runner.train(State(), advance)
    assert saved == [6] and progress.closed


def test_a_signal_in_the_chunk_that_diverges_lets_the_divergence_end_the_run():
    """The run is over there (it diverged): nothing is left to stop or to resume, so it ends as it would have."""
    ctrl_c = CtrlC()
    runner, saved, _ = _runner(100, ctrl_c=ctrl_c)

    def diverging(state, n):
        ctrl_c.pressed = True
        return state._replace(epoch=state.epoch + 1, diverged=True)

    final = runner.train(State(), diverging)
    assert (final.epoch, final.diverged, saved) == (1, True, [1])


def test_a_mode_that_writes_at_the_end_is_interrupted_only_when_work_is_left():
    ctrl_c = CtrlC()
    runner, _, _ = _runner(4, save=False, ctrl_c=ctrl_c)

    def pressing(state, n):
        ctrl_c.pressed = True  # during the chunk: the run is cut short after it unless it was the last
        return state._replace(epoch=state.epoch + n)

    with pytest.raises(Interrupted, match="stopped at 1"):
        runner.train(State(), pressing)
    runner, _, _ = _runner(1, save=False, ctrl_c=ctrl_c)
    ctrl_c.pressed = False
    assert runner.train(State(), pressing).epoch == 1  # pressed during its last chunk: it finishes


def test_chunks_shrink_to_half_of_checkpoint_seconds_at_the_measured_pace(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(runner_module.time, "perf_counter", lambda: clock[0])
    runner, saved, _ = _runner(1000, every=40, seconds=1.0)  # step 20 (a divisor of 40): 2 s at 0.1 s an epoch
    asked = []

    def advance(state, n):
        asked.append(n)
        clock[0] += 0.1 * n
        return state._replace(epoch=state.epoch + n)

    assert runner.step == 20 and runner.train(State(), advance).epoch == 1000
    assert asked[:3] == [10, 5, 5] and set(asked[1:]) == {5}  # at most 10 to measure, then 0.5 s: 5 epochs
    assert all(later - earlier <= 15 for earlier, later in itertools.pairwise(saved))  # about 1 s apart
    assert set(range(40, 1001, 40)) <= set(saved)  # --checkpoint-every still falls on chunk ends
