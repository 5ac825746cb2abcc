"""The exit statuses of ``jaxnn-train`` and the exceptions that end a run early.

``0`` done; ``1`` the run failed after training started (the loss diverged, or a test metric is not a
finite number); ``2`` bad input, said in one line (:class:`CliError`); ``130`` interrupted by Ctrl-C
(:class:`Interrupted`).
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "PROG", "CliError", "Interrupted"]

PROG = "jaxnn-train"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """Bad input, said in the user's words; ``main`` prints it as one line and exits with status 2."""


class Interrupted(Exception):
    """Ctrl-C was pressed; raised at the next safe point (a stage boundary, or the end of a chunk of epochs).

    ``message`` is the line to print: where the run stopped and what was saved.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
