"""``jaxnn-train``: train a dense network on a bundled dataset or a CSV file, from the shell.

    jaxnn-train                                        # iris, a 4-10-5-3 network, 2000 epochs of gd
    jaxnn-train --dataset digits --layers 64,32 --optimizer adam --out runs/digits
    jaxnn-train --csv houses.csv --target price --out runs/houses
    jaxnn-train --resume runs/digits --epochs 400       # continue that run up to 400 epochs in all

This module is the entry point only, and imports nothing heavy: :func:`main` first makes Ctrl-C, SIGTERM and
SIGHUP a flag (:mod:`jaxnn.cli.interrupts`), then loads the rest.  The package, one job per module:

* :mod:`~jaxnn.cli.option_table` — every option declared once (type, default, help, checkpoint, refusals);
* :mod:`~jaxnn.cli.options` — the command line generated from it: argparse, defaults, a checkpoint's options;
* :mod:`~jaxnn.cli.refusals` — what lbfgs, population and resumed runs refuse, one line each;
* :mod:`~jaxnn.cli.data` — bundled datasets and CSV files into a split, standardised :class:`Problem`;
* :mod:`~jaxnn.cli.csv_file` — a CSV file's bytes as records, one at a time, with the file-level checks;
* :mod:`~jaxnn.cli.csv_cells` — what a CSV cell holds (a number, a number written for people, a date, ...);
* :mod:`~jaxnn.cli.devices` — platform, hosts and the device mesh;
* :mod:`~jaxnn.cli.locking` — one writer per output directory;
* :mod:`~jaxnn.cli.run_files` — the files a run writes in ``--out``, and what ``--overwrite`` removes;
* :mod:`~jaxnn.cli.runner` — every mode's training in chunks, with held-out loss, progress, checkpoints and Ctrl-C;
* :mod:`~jaxnn.cli.training` — the model, its state and checkpoint, and gd/sgd/adam runs;
* :mod:`~jaxnn.cli.lbfgs_training` — ``--optimizer lbfgs`` runs (full-batch L-BFGS);
* :mod:`~jaxnn.cli.population` — several ``--lr``/``--l2``/``--seed`` values: one population (``jaxnn.fit_many``);
* :mod:`~jaxnn.cli.population_results` — a population's best member, its files and the summary;
* :mod:`~jaxnn.cli.population_checkpoint` — every member's state in ``population.npz``, which ``--resume`` continues;
* :mod:`~jaxnn.cli.progress` — the progress bar or log lines;
* :mod:`~jaxnn.cli.report` — metrics, ``metrics.json``, ``history.csv``, plots and the summary;
* :mod:`~jaxnn.cli.command` — one invocation from the parsed options to the exit status;
* :mod:`~jaxnn.cli.errors` — exit statuses and the exceptions that end a run early.

Exit status: 0 done, 1 the run failed after training started (divergence, or a non-finite test
metric, a file that could not be written), 2 bad input (one line on stderr), 130 interrupted by Ctrl-C,
143 stopped by SIGTERM, 129 by SIGHUP (128 + the signal's number).  See docs/cli.md.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

from jaxnn.cli.errors import EXIT_INTERRUPTED, PROG
from jaxnn.cli.interrupts import StopSignals

__all__ = ["command_line", "main"]


def main(argv: Sequence[str] | None = None, *, ends_process: bool = False) -> int:
    """Run ``jaxnn-train`` with ``argv`` (default: the command line); returns the exit status.

    Bad input ends in ``SystemExit(2)`` after one line on stderr, as argparse does.  Ctrl-C, SIGTERM or SIGHUP at
    any moment until the run's summary is printed ends with status 130, 143 or 129 (after a checkpoint, once
    training has started); after it, the run is done, and a signal is only said.

    ``ends_process=True`` is for the command (:func:`command_line`, ``python -m jaxnn.cli``), whose process ends
    when this returns: the stop signals stay handled until it does, so a second signal while a stopped run's
    process winds down (Python's exit takes a few tenths of a second with JAX loaded) still quits at once with
    the first one's status (once Python tears itself down, after the exit functions, they are ignored: the status
    stays the one returned).  Called from Python, the signals' earlier handlers are back when this returns.
    """
    started = False
    try:
        with StopSignals(PROG, until_exit=ends_process) as stop:
            started = True
            from jaxnn.cli import command  # JAX and the rest load only now, with Ctrl-C already a flag

            return command.execute(argv, stop)
    except KeyboardInterrupt:
        # Ctrl-C in the microseconds before StopSignals's handler is in place, or after it is gone (inside the
        # block SIGINT never raises).  A further press while this is said must not end in a traceback.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"{PROG}: interrupted" + ("" if started else " before starting; nothing was saved"), file=sys.stderr)
        return EXIT_INTERRUPTED


def command_line() -> int:
    """The ``jaxnn-train`` command: :func:`main` on the command line, in a process that ends when it returns."""
    printable_streams()
    return main(ends_process=True)


def printable_streams() -> None:
    """Let stdout and stderr print any text, writing what their encoding lacks as ``\\xe4``, as Python's stderr does.

    The summary and messages show the user's names (a CSV file's, its classes' and columns'); a stdout whose
    encoding cannot write one (``PYTHONIOENCODING=ascii``, a pipe under an ASCII locale) raised UnicodeEncodeError
    after training, a traceback instead of the summary.  A stream with another error handler (surrogateescape under
    the C locale) is left as it is; only the command does this, as the process is its own."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
