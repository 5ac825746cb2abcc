"""Stop signals as a flag: Ctrl-C (SIGINT), SIGTERM and SIGHUP ask the run to stop at its next safe point; a
second one quits at once.

Why not Python's KeyboardInterrupt (or the default action of SIGTERM, which ends the process on the spot): raised
inside JAX it can be swallowed (JAX's garbage-collection callback catches it and prints ``Exception ignored in:
<function _xla_gc_callback ...>``, and training goes on), and raised in the middle of a write it would cut a
checkpoint short.  So while a :class:`StopSignals` block is active, these signals never raise: the first sets a
flag that ``jaxnn-train`` checks at every stage boundary (after the data is loaded, after the devices start,
...) and after every chunk of epochs.  A batch scheduler or a cloud machine about to be taken back sends
SIGTERM; a closed terminal or ssh session sends SIGHUP: both are handled exactly as Ctrl-C, the epochs done are
checkpointed, and the process exits with ``128 + the signal's number`` (130 for Ctrl-C, 143 for SIGTERM, 129 for
SIGHUP), the shell's convention for "ended by that signal".

Python runs a signal handler only between bytecodes of the main thread, which may be inside a compilation or a
chunk of training for seconds.  So the signals are also delivered through ``signal.set_wakeup_fd``: the
interpreter's C-level handler writes each signal's number to a pipe at once, and a watcher thread reads it.  On
the first signal the watcher sets the flag and says so on stderr; on the second it prints one line and ends the
process with ``os._exit`` and the first signal's status — no clean-up: the last complete checkpoint stays
(writes are atomic), and the lock on the output directory goes with the process.  The same signal again within
:data:`REPEAT_SECONDS` of the first is the same request, not a second one: GNU ``timeout``, Slurm and other
wrappers signal the process and then its process group, so it receives their one request twice, microseconds
apart (it quit at once, without the final checkpoint).

Once the run's work is done (its results written and its summary printed: :func:`stopped_before_the_end`) with no
stop signal before, a signal changes nothing: it is said ("the run has finished; exiting"), the exit status stays
the run's, and a second one no longer quits at once (the process is ending anyway).

While the devices start (:meth:`StopSignals.quitting_at_once`) the first signal quits at once too, saying that nothing
was saved: joining a multi-host run waits in JAX's native code for the other processes (for minutes when one never
comes), and a flag would be read only when that wait ends; nothing has been written by then.

JAX's distributed runtime installs its own SIGTERM handler when a multi-host run starts: ``jaxnn-train`` then
calls :meth:`StopSignals.reinstall`.  With several hosts the runner asks every process which signal it received
(:meth:`StopSignals.agree`), so every process stops at the same chunk boundary with the same status.

This module imports nothing but the standard library, so ``jaxnn-train`` can install it before JAX loads.
Outside the main thread, where Python allows no signal handler, :class:`StopSignals` does nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = [
    "REPEAT_SECONDS",
    "SIGNALS",
    "StopSignals",
    "exit_status",
    "quitting_at_once",
    "signal_name",
    "stopped_before_the_end",
]

# The signals that ask a run to stop (SIGHUP is missing on Windows).
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
# The same signal again this soon after the first is the first one delivered twice (to the process and to its
# process group), not a second request.
REPEAT_SECONDS = 1.0


def signal_name(number: int) -> str:
    """``Ctrl-C`` for SIGINT, else the signal's name (``SIGTERM``)."""
    if number == signal.SIGINT:
        return "Ctrl-C"
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_status(stop) -> int:
    """The exit status of a run stopped by ``stop``: 128 + the signal's number (a plain flag object: Ctrl-C)."""
    return 128 + (getattr(stop, "received", 0) or signal.SIGINT)


def quitting_at_once(stop, where: str):
    """``stop.quitting_at_once(where)``, or nothing for a plain flag object (which has no signals to quit on)."""
    quitting = getattr(stop, "quitting_at_once", None)
    return contextlib.nullcontext() if quitting is None else quitting(where)


def stopped_before_the_end(stop) -> bool:
    """Whether a stop signal came before the run's work was done, which it is now: from here on a signal changes
    nothing (:meth:`StopSignals.finish`; a plain flag object just answers ``pressed``)."""
    finish = getattr(stop, "finish", None)
    return finish() if finish is not None else stop.pressed


def _say(line: str) -> None:
    """One line on stderr, written directly (the watcher thread must not wait on a lock the main thread holds)."""
    try:
        os.write(sys.stderr.fileno(), (line + "\n").encode())
    except (OSError, ValueError, AttributeError):  # no usable stderr: say nothing
        pass


class StopSignals:
    """``with StopSignals(prog) as stop:`` — inside, Ctrl-C, SIGTERM or SIGHUP sets ``stop.pressed`` (and
    ``stop.received``, the signal's number); a second signal exits at once with the first one's status.  The
    earlier handlers come back when the block ends; with ``until_exit=True`` (a process that ends after the
    block) this handling stays until the process ends."""

    def __init__(self, prog: str, *, until_exit: bool = False):
        self.prog = prog
        self.until_exit = until_exit  # the process ends after the block: the handling stays until it does
        self.received = 0  # the number of the first stop signal received (0: none)
        self._pressed = threading.Event()
        # re-entrant: the Python-level handler runs on the main thread, which may hold it (finish, agree) when the
        # signal comes; a plain lock deadlocked there, and every later signal waited on it too
        self._first = threading.RLock()
        self._previous_handlers: dict[int, object] = {}
        self._previous_fd = -1
        self._pipe: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None
        self._finished = False  # the run's work is done: a signal is said and changes nothing
        self._said_finished = False
        self._quit_at_once_where: str | None = None  # inside quitting_at_once: where the run is, for its message
        self._tidy_before_quitting: Callable[[], None] | None = None  # what on_quit registered

    @property
    def pressed(self) -> bool:
        """Whether a stop signal was received (in this process, or in another one: :meth:`agree`)."""
        return self._pressed.is_set()

    @property
    def status(self) -> int:
        """The exit status that says the run was stopped: 128 + the signal's number (130 before any)."""
        return exit_status(self)

    def agree(self, number: int) -> None:
        """Take ``number`` as the signal received, when every process agreed that one stops the run."""
        with self._first:
            self.received = number
            self._pressed.set()

    def finish(self) -> bool:
        """The run's work is done: whether a stop signal came before now.  If none did, a signal from now on is
        said once and otherwise ignored (the exit status stays the run's); if one did, the run ends as stopped,
        and a second signal still quits at once."""
        with self._first:
            self._finished = not self._pressed.is_set()
            return not self._finished

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self._pipe = (read_end, write_end)
        for number in SIGNALS:
            self._previous_handlers[number] = signal.signal(number, self._on_signal)
        self._previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._watcher = threading.Thread(target=self._watch, args=(read_end,), name="stop-signal-watcher", daemon=True)
        self._watcher.start()
        if self.until_exit:  # registered before JAX loads, so it runs after JAX's own exit functions
            atexit.register(self._ignore_from_now_on)
        return self

    def _ignore_from_now_on(self) -> None:
        """The last exit function: ignore the stop signals while Python tears itself down.  Python then stops
        running signal handlers (the watcher too) and gives every handled signal its default action back, so a
        signal in those tenths of a second would kill the process (status -15, not the 143 a stop returned, or
        not the 0 of a finished run); ignored, it leaves the status the command returned."""
        for number in SIGNALS:
            signal.signal(number, signal.SIG_IGN)

    def on_quit(self, tidy: Callable[[], None]) -> None:
        """Have ``tidy`` run just before a signal inside :meth:`quitting_at_once` ends the process (the command's
        lock and the ``--out`` it created, which nothing was written to yet)."""
        self._tidy_before_quitting = tidy

    @contextlib.contextmanager
    def quitting_at_once(self, where: str):
        """Inside, the first stop signal ends the process at once with its status, after ``interrupted {where};
        nothing was saved``: for a stage that writes nothing and may wait long in native code or a blocking read,
        where the flag would be read only when that wait ends (joining a multi-host run whose other processes do
        not come; reading ``--csv`` from a pipe that no one writes to)."""
        self._quit_at_once_where = where
        try:
            yield self
        finally:
            with self._first:
                self._quit_at_once_where = None

    def reinstall(self) -> None:
        """Take the signals back from whatever replaced this block's handlers: JAX's distributed runtime installs
        its own SIGTERM handler (a preemption notifier) when a multi-host run starts."""
        if self._pipe is not None:
            for number in SIGNALS:
                signal.signal(number, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        """The Python-level handler: never raises (the watcher counts the signals)."""
        self._first_signal(signum)

    def _first_signal(self, number: int) -> None:
        """Say what the signal does, then set the flag: once, whichever of the handler and the watcher comes first."""
        with self._first:
            if self._finished:  # said once; the flag stays as it was, and so does the status
                if not self._said_finished:
                    self._said_finished = True
                    _say(f"{self.prog}: {signal_name(number)}: the run has finished; exiting")
            elif self._quit_at_once_where is not None and not self._pressed.is_set():
                _say(f"{self.prog}: {signal_name(number)}: interrupted {self._quit_at_once_where}; nothing was saved")
                if self._tidy_before_quitting is not None:
                    with contextlib.suppress(Exception):  # quitting is what was asked for
                        self._tidy_before_quitting()
                os._exit(128 + number)  # the status a stop by this signal returns (exit_status)
            elif not self._pressed.is_set():
                name = signal_name(number)
                again = "Ctrl-C again quits at once" if number == signal.SIGINT else "a second signal quits at once"
                _say(f"{self.prog}: {name}: stopping at the next safe point ({again})")
                self.received = number
                self._pressed.set()

    def _watch(self, read_end: int) -> None:
        first: tuple[int, float] | None = None  # the first signal's number and when it came
        while True:
            try:
                data = os.read(read_end, 512)
            except OSError:
                return
            if not data:  # the write end was closed: the block is over
                return
            for number in data:
                if number not in SIGNALS:
                    continue
                now = time.monotonic()
                if self._finished:
                    self._first_signal(number)  # said once, else ignored
                elif first is None:
                    first = (number, now)
                    self._first_signal(number)
                elif number == first[0] and now - first[1] < REPEAT_SECONDS:
                    continue  # the first request delivered twice (to the process and to its process group)
                else:
                    after = "again" if number == first[0] else f"after {signal_name(first[0])}"
                    again = f"{self.prog}: {signal_name(number)} {after}"
                    _say(f"{again}: quitting at once; the last checkpoint written is kept")
                    os._exit(self.status)

    def __exit__(self, *exc) -> bool:
        if self._pipe is None or self.until_exit:  # until_exit: the watcher and the handlers go with the process
            return False
        signal.set_wakeup_fd(self._previous_fd)
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        read_end, write_end = self._pipe
        os.close(write_end)  # the watcher reads end-of-file and returns
        self._watcher.join(timeout=5)
        os.close(read_end)
        self._pipe = None
        return False
