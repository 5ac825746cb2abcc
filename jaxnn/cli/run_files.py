"""The files ``jaxnn-train`` writes in ``--out``, named in one place, and what ``--overwrite`` removes.

A fresh run into a directory that holds another run's checkpoint is refused unless ``--overwrite`` is given.
``--overwrite`` removes nothing while the new command is being checked: only once the new run has passed every
check (its options, its data, its network) and is about to train does :func:`clear` remove every file of
:data:`RUN_FILES` in the directory, the old run's checkpoints and results alike, so that none of them is left
beside the new run's files.  Any other file in the directory stays.  So a command refused as bad input leaves
the directory exactly as it was, and the old run can still be resumed.

A directory where one of these files (or its temporary ``.tmp``) belongs could be neither written nor removed:
:func:`directory_in_the_way` finds it, so that the command is refused before anything is done; so is a run whose
input file is one of these files (:func:`run_file_named`): the run would overwrite its own data.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxnn.cli.population_checkpoint import POPULATION_CHECKPOINT
from jaxnn.cli.population_results import POPULATION_FILE
from jaxnn.cli.report import CONFUSION_PLOT, HISTORY_FILE, LOSS_PLOT, METRICS_FILE
from jaxnn.cli.training import CHECKPOINT_FILE, DIVERGED_FILE

__all__ = ["CHECKPOINTS", "RUN_FILES", "checkpoints_in", "clear", "directory_in_the_way", "run_file_named"]

CHECKPOINTS = (CHECKPOINT_FILE, DIVERGED_FILE, POPULATION_CHECKPOINT)
RUN_FILES = (*CHECKPOINTS, POPULATION_FILE, METRICS_FILE, HISTORY_FILE, LOSS_PLOT, CONFUSION_PLOT)


def checkpoints_in(out: Path) -> list[Path]:
    """The checkpoints of an earlier run in ``out`` (whatever is at those names), in :data:`CHECKPOINTS` order."""
    return [out / name for name in CHECKPOINTS if (out / name).exists()]


def directory_in_the_way(out: Path) -> Path | None:
    """The first name of :data:`RUN_FILES` in ``out``, or of their temporary ``.tmp`` files (each is written there
    first, then renamed), that is taken by a directory (or a link to one), else None."""
    names = [name for run_file in RUN_FILES for name in (run_file, f"{run_file}.tmp")]
    return next((out / name for name in names if (out / name).is_dir()), None)


def run_file_named(out: Path, path: Path) -> Path | None:
    """The file of :data:`RUN_FILES` in ``out`` (or its temporary ``.tmp``) that ``path`` is, the same file under
    whatever name or link, else None."""
    for name in RUN_FILES:
        for candidate in (out / name, out / f"{name}.tmp"):
            try:
                if os.path.samefile(candidate, path):
                    return candidate
            except OSError:  # not there (or not readable): not the same file
                continue
    return None


def clear(out: Path) -> None:
    """Remove every file of :data:`RUN_FILES` in ``out`` (a link is removed, not what it points to); nothing else.

    Call it only after :func:`directory_in_the_way` found none: a directory at one of the names is an error here.
    """
    for name in RUN_FILES:
        path = out / name
        if path.exists() or path.is_symlink():
            path.unlink()
