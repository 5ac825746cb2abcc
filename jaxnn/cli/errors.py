"""The exit statuses of ``jaxnn-train`` and the exceptions that end a run early.

``0`` done; ``1`` the run failed after training started (the loss diverged, a test metric is not a finite
number, or a file could not be written, say on a full disk: :class:`WriteFailed`); ``2`` bad input, said in one
line (:class:`CliError`); ``130``, ``143``, ``129`` stopped by Ctrl-C, SIGTERM or SIGHUP, 128 + the signal's
number (:class:`Interrupted`).
"""

from __future__ import annotations

import errno

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "Interrupted",
    "WriteFailed",
    "is_disk_full",
    "shown",
]

PROG = "jaxnn-train"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """Bad input, said in the user's words; ``main`` prints it as one line and exits with status 2."""


class Interrupted(Exception):
    """A stop signal came (Ctrl-C, SIGTERM, SIGHUP); raised at the next safe point (a stage boundary, or the
    end of a chunk of epochs).

    ``message`` is the line to print: where the run stopped and what was saved.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class WriteFailed(Exception):
    """A checkpoint could not be written once training had started (the disk or the quota filled up, ``--out`` was
    removed, the file system became read-only, ...); ``main`` prints ``message`` and exits with status 1."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says no space is left on the device (or in the user's quota)."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def shown(text: str) -> str:
    """``text`` as it can be printed and drawn: a file name's bytes that are not UTF-8 (Python's surrogate
    escapes, which no encoder writes) as ``\\xff``, as Python writes them on stderr."""
    return "".join(
        f"\\x{ord(char) & 0xFF:02x}"
        if "\udc80" <= char <= "\udcff"
        else "\ufffd"
        if "\ud800" <= char <= "\udfff"
        else char
        for char in text
    )
