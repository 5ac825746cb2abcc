"""One ``jaxnn-train`` invocation, from the command line to the exit status: the stages in order.

1. options (fresh: given + defaults; resumed: the checkpoint's, checked, given ones must agree);
2. devices and hosts; the output directory and its lock (checked, nothing removed yet);
3. the data (a resumed run checks its fingerprint), the head, the model, the starting state;
4. with ``--overwrite``, the old run's files removed (:mod:`jaxnn.cli.run_files`); training in chunks
   (:mod:`jaxnn.cli.runner`): :func:`jaxnn.cli.training.train`, or, for ``--optimizer lbfgs``, one
   minimisation in compiled calls (:func:`jaxnn.cli.lbfgs_training.train`);
5. metrics, files and the summary.

Several ``--lr``, ``--l2`` or ``--seed`` values make a population run instead: stages 3-5 are
:func:`jaxnn.cli.population.execute`'s.

Ctrl-C, SIGTERM and SIGHUP are a flag (:mod:`jaxnn.cli.interrupts`) checked between the stages and between
chunks: at any moment one ends the run with status 128 + its number (130, 143, 129), after a checkpoint once
training has started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jaxnn import checkpoint, compile_cache, distributed
from jaxnn.cli import lbfgs_training, population, run_files
from jaxnn.cli import options as cli_options
from jaxnn.cli.data import check_same_data, load_problem, reads_standard_input, say_warnings
from jaxnn.cli.devices import Runtime, arithmetic_note, one_device, start_runtime
from jaxnn.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    CliError,
    Interrupted,
    WriteFailed,
    is_disk_full,
)
from jaxnn.cli.interrupts import StopSignals, exit_status, quitting_at_once, stopped_before_the_end
from jaxnn.cli.locking import LOCK_FILE, OutLock
from jaxnn.cli.option_table import as_given
from jaxnn.cli.population_checkpoint import POPULATION_CHECKPOINT
from jaxnn.cli.population_results import POPULATION_FILE
from jaxnn.cli.progress import make_progress
from jaxnn.cli.report import metrics_of, non_finite_metrics, shown, summary, write_results
from jaxnn.cli.training import (
    CHECKPOINT_FILE,
    DIVERGED_FILE,
    RunSetup,
    TrainState,
    build_model,
    fresh_state,
    make_head,
    make_optimizer,
    make_targets,
    refuse_what_cannot_fit,
    resumed_state,
    settled_options,
    train,
    tunable_rates,
)

__all__ = ["execute", "resumed_checkpoint"]


def _stage(stop: StopSignals, before: str) -> None:
    """Stop here if Ctrl-C was pressed (before training starts: nothing to save)."""
    if stop.pressed:
        raise Interrupted(f"{PROG}: interrupted {before}; nothing was saved")


def _enable_compile_cache() -> None:
    """Switch the compilation cache on; a cache that stays off (a read-only home, a full disk) is one line in the
    command's own words, not a Python warning located at ``<frozen runpy>:88`` or the entry script's line."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compile_cache.enable_default()
    except ValueError as error:  # a malformed JAXNN_CACHE_MAX_BYTES
        raise CliError(str(error)) from None
    for warning in caught:
        print(shown(f"{PROG}: warning: {warning.message}"), file=sys.stderr)


def resumed_checkpoint(resume: Path) -> Path:
    """The checkpoint ``--resume`` continues: a file as named; for a directory, its population checkpoint when it
    holds one (a population run continues whole), else its ``checkpoint.npz``."""
    if resume.is_file():
        return resume
    return resume / (POPULATION_CHECKPOINT if (resume / POPULATION_CHECKPOINT).exists() else CHECKPOINT_FILE)


def _read_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(options, stored)``: the run's options, and the checkpoint's config when resuming."""
    given = cli_options.given_options(args)
    if args.resume is None:
        return cli_options.with_defaults(given), None
    path = resumed_checkpoint(args.resume)
    if not path.exists() and path.name == CHECKPOINT_FILE and (path.parent / DIVERGED_FILE).exists():
        raise CliError(
            f"no checkpoint at {path}: that run diverged before its first checkpoint "
            f"({DIVERGED_FILE} holds its last finite state); start a new run with a smaller --lr"
        )
    if path.is_dir():
        raise CliError(
            f"{path} is a directory, not a checkpoint {PROG} wrote, so there is nothing to resume in {args.resume}; "
            "move or rename that directory, or --resume another run"
        )
    population = path.name == POPULATION_CHECKPOINT
    if not population:
        cli_options.refuse(given, ("resume lists",))
    if not path.exists():
        raise CliError(_no_checkpoint(args.resume, path))
    stored = checkpoint.read_config(path)
    options = cli_options.agreeing_with(stored, given, path)
    if population != bool(cli_options.listed_options(options)):
        raise CliError(
            f"{path} holds an invalid --lr/--l2/--seed: lists belong to a population's {POPULATION_CHECKPOINT}, "
            "only there"
        )
    stored_csv = None if "csv" in given or options["csv"] is None else options["csv"]  # read unasked
    if stored_csv is not None and not Path(stored_csv).exists():
        raise CliError(
            f"the CSV file {stored_csv} that {path} was trained on is not there any more; "
            "if it moved, pass its new path with --csv NEWPATH (its contents are checked)"
        )
    if stored_csv is not None and not reads_standard_input(stored_csv) and not Path(stored_csv).is_file():
        # a named pipe there (a forged path) would wait for a writer for ever
        raise CliError(
            f"{path} names {stored_csv} as its CSV file, which is not a regular file; pass the data with "
            "--csv PATH (its contents are checked)"
        )
    return options, stored


def _no_checkpoint(resume: Path, path: Path) -> str:
    """The message for ``--resume resume`` whose checkpoint ``path`` is not there: what ``resume`` is instead (not
    there at all, a run's other files without their checkpoint, or a directory without a run) and what to do."""
    advice = "--resume the --out directory of a run, or its checkpoint"
    if not resume.exists():
        return f"no checkpoint at {resume}: no such file or directory; {advice}"
    if (resume / LOCK_FILE).is_file():
        with OutLock(resume):  # a run writing there, which has saved no checkpoint yet, is named instead
            pass
    others = [name for name in run_files.RUN_FILES if (resume / name).is_file()]
    if others:
        return (
            f"no checkpoint at {path}: {resume} holds {', '.join(others)} of a run but not its checkpoint, so that run "
            f"cannot be continued; start a new run (--out {resume} --overwrite replaces those files)"
        )
    return f"no checkpoint at {path}: {resume} holds no {PROG} run; {advice}"


def _output_directory(args: argparse.Namespace) -> Path | None:
    """``--out``, else the directory of the checkpoint ``--resume`` continues (a population's best member,
    continued alone from its ``checkpoint.npz``, needs an ``--out`` of its own, not the population's)."""
    if args.resume is None:
        return args.out
    path = resumed_checkpoint(args.resume)
    out = path.parent if args.out is None else args.out
    if path.name == POPULATION_CHECKPOINT or out.resolve() != path.parent.resolve():
        return out
    if (path.parent / POPULATION_CHECKPOINT).exists():
        raise CliError(
            f"{path.parent} holds a population run; continuing its best member alone from {path} writes another "
            "run's files: give it its own --out"
        )
    if (path.parent / POPULATION_FILE).exists():  # the population's results without its checkpoint
        raise CliError(
            f"{path.parent} holds a population run ({POPULATION_FILE}) but not its {POPULATION_CHECKPOINT}, so the "
            f"population cannot be continued; continue its best member alone with --resume {path} --out NEWDIR"
        )
    return out


def _in_place(args: argparse.Namespace, out: Path) -> bool:
    """Whether the run resumes a checkpoint in ``out`` itself (its files are the run's own, to continue)."""
    return args.resume is not None and out.resolve() == resumed_checkpoint(args.resume).parent.resolve()


def _check_out(args: argparse.Namespace, out: Path, csv: str | None) -> None:
    """Refuse an ``out`` where a file the run writes is a directory or the ``csv`` it reads, a fresh run into
    another run's checkpoints without --overwrite, and --overwrite on the run that is resumed in place.  Nothing is
    removed here: :func:`_overwriting` says when."""
    if args.overwrite and _in_place(args, out):
        raise CliError(
            f"--overwrite starts afresh, but --resume {args.resume} continues the run in {out}; leave --overwrite out "
            f"to continue it, or start afresh with --out {out} --overwrite and no --resume"
        )
    in_the_way = run_files.directory_in_the_way(out)
    if in_the_way is not None:
        raise CliError(
            f"{in_the_way} is a directory, not a file {PROG} writes; move or rename it, or choose another --out"
        )
    data_file = None if csv is None else run_files.run_file_named(out, Path(csv))
    if data_file is not None:
        raise CliError(
            f"the CSV file {as_given(csv)} is the {data_file.name} that {PROG} writes in --out {out}, so the run would "
            "overwrite its own data; move or rename the CSV file, or choose another --out"
        )
    if not _in_place(args, out) and run_files.checkpoints_in(out) and not args.overwrite:
        raise CliError(
            f"{out} already holds a checkpoint; continue it with --resume {out}, "
            "or start afresh with --overwrite or another --out"
        )


def _overwriting(args: argparse.Namespace, runtime: Runtime, out: Path | None) -> Callable[[], None]:
    """What a run does once it has passed every check, just before it trains: with --overwrite into another run's
    ``out``, remove that run's files (:func:`jaxnn.cli.run_files.clear`); otherwise nothing.  A command refused
    before then leaves ``out`` as it was."""
    if out is None or not runtime.main or not args.overwrite or _in_place(args, out):
        return lambda: None
    return partial(run_files.clear, out)


def _make_directory(out: Path) -> list[Path]:
    """Create ``out`` if needed, and check that files can be written in it (before any training).

    Returns the directories this call created, ``out`` first and then the parents it needed, for
    :func:`_remove_created` when the command ends by an error (refused, stopped or failed); a refusal here removes
    them itself.
    """
    missing = [path for path in (out, *out.parents) if not os.path.lexists(path)]
    if os.path.lexists(out) and not out.is_dir():
        raise CliError(f"--out {out} exists but is not a directory; choose another --out")
    file_above = next((path for path in out.parents if os.path.lexists(path) and not path.is_dir()), None)
    if file_above is not None:
        raise CliError(f"--out {out} is inside {file_above}, which is a file, not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _remove_created(missing)
        raise CliError(f"cannot create --out {out}: {error.strerror or error}") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        _remove_created(missing)
        raise CliError(f"cannot write in --out {out}: {error.strerror or error}; choose another --out") from None
    return missing


def _remove_created(created: list[Path]) -> None:
    """Remove the directories :func:`_make_directory` created (innermost first) when the command ends by an
    error (refused, stopped, a write that failed) before anything was written, so it leaves no new ``--out``
    behind.  Only empty ones: the first that is not empty (something was written there after all), or cannot be
    removed, stays with the directories above it."""
    for path in created:
        try:
            path.rmdir()
        except OSError:
            return


def _prepare(args: argparse.Namespace, stop: StopSignals, runtime: Runtime, out: Path | None, options, stored):
    """Data, model and the starting state (fresh, or the checkpoint's)."""
    with quitting_at_once(stop, "while loading the data"):  # a --csv pipe no one writes to blocks the read
        problem = load_problem(options)
    resume_path = resumed_checkpoint(args.resume) if args.resume is not None else None
    if stored is not None:  # before the data's warnings: other data's would be beside the point
        given_csv = cli_options.given_options(args).get("csv")
        check_same_data(problem, stored, stored.get("data_sha256"), given_csv, resume_path)
    _stage(stop, "while loading the data")
    options = settled_options(options, problem)
    head = make_head(options, problem)
    refuse_what_cannot_fit(options, problem, head, runtime)
    model = build_model(options, head)
    lbfgs = options["optimizer"] == cli_options.LBFGS
    optimizer = None if lbfgs else make_optimizer(options)
    state, key = fresh_state(model, optimizer, problem.x_train.shape[1], options["seed"], tunable_rates(options))
    if stored is not None:
        state, key, _ = resumed_state(resume_path, state)
    epochs = cli_options.checked_total_epochs(args.epochs, options, stored, state.epoch)
    targets = make_targets(problem, head, options["class_weight"])
    setup = RunSetup(
        options,
        problem,
        head,
        targets,
        model,
        optimizer,
        key,
        runtime,
        epochs,
        cli_options.checkpoint_every(args.checkpoint_every, stored),
        args.checkpoint_seconds,
        out if runtime.main else None,
    )
    if lbfgs:
        lbfgs_training.refuse_an_overflowing_penalty(setup, state.params)
    if runtime.main:  # once nothing is refused: a refusal is one line
        say_warnings([problem])
    _stage(stop, "while building the network")
    return setup, state


def _divergence_advice(setup: RunSetup, state: TrainState, resumed: bool) -> str:
    where = ""
    if setup.out is not None:
        where = f" and written to {setup.out / DIVERGED_FILE}"
        if (setup.out / CHECKPOINT_FILE).exists():
            where += f"; {setup.out / CHECKPOINT_FILE} keeps the last healthy checkpoint"
    smaller = "a smaller --lr" + (" or --l2" if setup.options["l2"] else "")
    if resumed:
        advice = f"a resumed run keeps its --lr: start a new run with {smaller} in another --out"
    else:
        advice = f"start again with {smaller}" + (" (and --overwrite, or another --out)" if setup.out else "")
    return (
        f"{PROG}: training diverged after epoch {state.epoch} (the loss became NaN or infinite); "
        f"the last finite parameters were kept{where}; {advice}"
    )


def _finish(setup: RunSetup, state: TrainState, resumed: bool) -> int:
    """Metrics, files and the summary; the exit status."""
    if not setup.runtime.main:
        return EXIT_FAILED if state.diverged else EXIT_OK
    metrics, predicted = metrics_of(setup, state)
    written = []
    if setup.out is not None:
        written = [
            DIVERGED_FILE if state.diverged else CHECKPOINT_FILE,
            *write_results(setup, state, metrics, predicted),
        ]
    print(summary(setup, state, metrics, written), flush=True)
    if state.diverged:
        print(_divergence_advice(setup, state, resumed), file=sys.stderr)
        return EXIT_FAILED
    bad = non_finite_metrics(metrics)
    if bad:
        values = ", ".join(f"{name} {metrics[name]}" for name in bad)
        print(
            f"{PROG}: the run finished but {values} {'is' if len(bad) == 1 else 'are'} not a finite number: "
            "the values are too large for floating-point arithmetic; look for extreme values in the data "
            "(test rows far outside the training rows' range) and rescale or drop them",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _after_write_error(error: OSError, remedy: str) -> str:
    """What to do after ``error`` stopped the results being written: the run's checkpoint, written before them, is
    in the file's directory, and resuming it with no more epochs only writes the results again."""
    out = Path(error.filename).parent if error.filename else None
    if out is not None and any(path.name != DIVERGED_FILE for path in run_files.checkpoints_in(out)):
        return f"the checkpoint is kept: {remedy}, then --resume {out} writes the results again"
    return f"{remedy}, then run the command again"


def _execute_parsed(args: argparse.Namespace, stop: StopSignals) -> int:
    """The invocation from its parsed ``args`` to the exit status (bad input raises :class:`CliError`)."""
    _enable_compile_cache()
    options, stored = _read_options(args)
    lbfgs = options["optimizer"] == cli_options.LBFGS
    members = cli_options.population_members(options)
    if len(members) > 1:
        cli_options.refuse_arguments(args, "population")
    if lbfgs:
        cli_options.refuse_arguments(args, cli_options.LBFGS)
    _stage(stop, "while reading the options")
    # nothing is written until the devices are up, and joining other hosts waits in native code: a signal quits there
    with quitting_at_once(stop, "while starting the devices"):
        _stage(stop, "while starting the devices")  # a signal just before: the flag alone would wait with the rest
        runtime = start_runtime(args)
    if hasattr(stop, "reinstall"):  # JAX's distributed runtime may have taken SIGTERM for itself
        stop.reinstall()
    if lbfgs:
        runtime = one_device(runtime)
    note = None if stored is None else arithmetic_note(stored, runtime, resumed_checkpoint(args.resume))
    _stage(stop, "while starting the devices")
    out = _output_directory(args)
    lock, created = contextlib.nullcontext(), []
    if out is not None and runtime.main:
        created = _make_directory(out)
        lock = OutLock(out)
    if hasattr(stop, "on_quit"):  # a signal while the data is read quits at once, leaving no lock or new --out
        stop.on_quit(lambda: (lock.__exit__(None, None, None), _remove_created(created)))
    try:
        return _run_in(args, stop, runtime, out, options, stored, lock, lbfgs=lbfgs, members=members, note=note)
    except BaseException:  # refused, stopped or failed: a --out this command created goes while still empty
        _remove_created(created)  # (the lock is out; a checkpoint or any other file written keeps it)
        raise


def _run_in(
    args: argparse.Namespace, stop: StopSignals, runtime: Runtime, out: Path | None, options, stored, lock, *,
    lbfgs: bool, members: list[dict[str, Any]], note: str | None,
):  # fmt: skip
    """The invocation once ``out`` exists, holding its ``lock``: the checks of ``out``, the data, training and
    the results; the exit status.  ``lbfgs`` and ``members`` are what :func:`_execute_parsed` read from
    ``options``; ``note`` (on a resumed run's arithmetic) is said once ``out`` is this run's (a refusal is one line)."""
    with lock:
        if out is not None and runtime.main:
            _check_out(args, out, options["csv"])
        if note is not None and runtime.main:
            print(f"{PROG}: {note}", file=sys.stderr)
        before_training = _overwriting(args, runtime, out)
        if len(members) > 1:
            resumed = None if stored is None else (resumed_checkpoint(args.resume), stored)
            return population.execute(args, stop, runtime, out, options, resumed, before_training=before_training)
        setup, state = _prepare(args, stop, runtime, out, options, stored)
        before_training()
        quiet = args.quiet or not runtime.main
        unit = cli_options.unit(options["optimizer"])
        if not quiet and state.epoch:
            print(f"resuming {resumed_checkpoint(args.resume)} at {unit} {state.epoch} of {setup.epochs}", flush=True)
        progress = make_progress(quiet, setup.epochs, state.epoch, setup.problem.name, unit)
        state = (lbfgs_training.train if lbfgs else train)(setup, state, progress, stop)
        status = _finish(setup, state, resumed=stored is not None)
        if stopped_before_the_end(stop) and status == EXIT_OK:  # a failure (a divergence) said so, keeps its status
            raise Interrupted(
                f"{PROG}: interrupted after training (at {unit} {state.epoch}); checkpoint in {setup.out}"
                if setup.out and runtime.main
                else (f"{PROG}: interrupted after training" if runtime.main else "")
            )
        return status


def execute(argv: Sequence[str] | None, stop: StopSignals) -> int:
    """Parse ``argv`` and carry out the invocation; the exit status (bad input: ``SystemExit(2)`` after one
    line on stderr)."""
    parser = cli_options.build_parser()
    args = parser.parse_args(argv)
    try:
        return _execute_parsed(args, stop)
    except CliError as error:
        parser.error(str(error))
    except distributed.ProcessesDiffer as error:  # the hosts' data differ (their commands were compared before)
        parser.error(f"{error}; start every process on the same data")
    except checkpoint.NotACheckpoint as error:  # --resume of some other file (a CSV, a text): not damaged, mistaken
        parser.error(
            f"{error.path} is not a {PROG} checkpoint ({error.reason}); "
            f"--resume takes a run's --out directory or its {CHECKPOINT_FILE}"
        )
    except checkpoint.CheckpointError as error:  # only a checkpoint --resume reads: what is wrong, then what to do
        parser.error(f"{error}; that run cannot continue from it: restore the file from a copy, or start a new run")
    except WriteFailed as failed:
        print(shown(failed.message), file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # stdout closed early (jaxnn-train ... | head), after a checkpoint: stop quietly,
        # as Python's docs advise (an OSError: before that clause, or this one is never reached)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_FAILED
    except OSError as error:  # writing the results (a checkpoint's write error is a WriteFailed)
        where = error.filename or "a file"
        if is_disk_full(error):
            said = f"the disk is full: could not write {where}; {_after_write_error(error, 'free some space')}"
        else:
            said = f"could not write {where} ({error.strerror or error}); {_after_write_error(error, 'mend that')}"
        print(shown(f"{PROG}: {said}"), file=sys.stderr)
        return EXIT_FAILED
    except Interrupted as interrupted:
        if interrupted.message:
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone (EIO): the status still says
                print(interrupted.message, file=sys.stderr, flush=True)
        return exit_status(stop)
    except KeyboardInterrupt:  # only where Ctrl-C could not be made a flag (outside the main thread)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
