"""Ctrl-C as a flag: the first press asks the run to stop at its next safe point, a second one quits at once.

Why not Python's KeyboardInterrupt: raised inside JAX it can be swallowed (JAX's garbage-collection
callback catches it and prints ``Exception ignored in: <function _xla_gc_callback ...>``, and training
goes on), and raised in the middle of a write it would cut a checkpoint short.  So while a
:class:`CtrlC` block is active, SIGINT never raises: it sets a flag that ``jaxnn-train`` checks at every
stage boundary (after the data is loaded, after the devices start, ...) and after every chunk of epochs.

Python runs a signal handler only between bytecodes of the main thread, which may be inside a
compilation or a chunk of training for seconds.  So the signal is also delivered through
``signal.set_wakeup_fd``: the interpreter's C-level handler writes each signal's number to a pipe at
once, and a watcher thread reads it.  On the first SIGINT the watcher sets the flag and says so on
stderr; on the second it prints one line and ends the process with ``os._exit(130)`` — no clean-up: the
last complete checkpoint stays (writes are atomic), and the lock on the output directory goes with the
process.

This module imports nothing but the standard library, so ``jaxnn-train`` can install it before JAX loads.
Outside the main thread, where Python allows no signal handler, :class:`CtrlC` does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["CtrlC"]


def _say(line: str) -> None:
    """One line on stderr, written directly (the watcher thread must not wait on a lock the main thread holds)."""
    try:
        os.write(sys.stderr.fileno(), (line + "\n").encode())
    except (OSError, ValueError, AttributeError):  # no usable stderr: say nothing
        pass


class CtrlC:
    """``with CtrlC(prog) as ctrl_c:`` — inside, Ctrl-C sets ``ctrl_c.pressed``; a second Ctrl-C exits 130."""

    def __init__(self, prog: str, exit_status: int = 130):
        self.prog = prog
        self.exit_status = exit_status
        self._pressed = threading.Event()
        self._first = threading.Lock()
        self._previous_handler = None
        self._previous_fd = -1
        self._pipe: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None

    @property
    def pressed(self) -> bool:
        return self._pressed.is_set()

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is not threading.main_thread():
            return self
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self._pipe = (read_end, write_end)
        self._previous_handler = signal.signal(signal.SIGINT, self._on_signal)
        self._previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._watcher = threading.Thread(target=self._watch, args=(read_end,), name="ctrl-c-watcher", daemon=True)
        self._watcher.start()
        return self

    def _on_signal(self, signum, frame) -> None:
        """The Python-level handler: never raises (the watcher counts the presses)."""
        self._first_press()

    def _first_press(self) -> None:
        """Say what Ctrl-C does, then set the flag: once, whichever of the handler and the watcher comes first."""
        with self._first:
            if not self._pressed.is_set():
                _say(f"{self.prog}: Ctrl-C: stopping at the next safe point (Ctrl-C again quits at once)")
                self._pressed.set()

    def _watch(self, read_end: int) -> None:
        presses = 0
        while True:
            try:
                data = os.read(read_end, 512)
            except OSError:
                return
            if not data:  # the write end was closed: the block is over
                return
            for number in data:
                if number != signal.SIGINT:
                    continue
                presses += 1
                if presses == 1:
                    self._first_press()
                else:
                    _say(f"{self.prog}: Ctrl-C again: quitting at once; the last checkpoint written is kept")
                    os._exit(self.exit_status)

    def __exit__(self, *exc) -> bool:
        if self._pipe is None:
            return False
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGINT, self._previous_handler)
        read_end, write_end = self._pipe
        os.close(write_end)  # the watcher reads end-of-file and returns
        self._watcher.join(timeout=5)
        os.close(read_end)
        self._pipe = None
        return False
