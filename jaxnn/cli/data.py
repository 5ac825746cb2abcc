"""The data of a run: a bundled dataset or a CSV file, read, labelled, split and standardised into a :class:`Problem`.

Classification or regression.  The bundled datasets are classification.  A CSV target column is
classification when it holds text, or whole numbers with at most :data:`MAX_AUTO_CLASSES` distinct
values; otherwise regression (``--task`` overrides).  A column of mostly numbers is read by its numbers: when
they read as regression, a text cell is refused rather than made a class.  Missing targets (empty, NaN,
infinite, or a marker of :data:`MISSING_MARKERS`) are refused.

Class labels keep their identity.  Two target cells are the same class exactly when their text (without
surrounding spaces) is the same, and a class is named by that text: ``007`` and ``7`` are two classes,
``1234567`` and ``1234568`` two names.  The classes are numbered (0 .. k−1, the network's outputs) in
numeric order when the column is *genuinely numeric* — every label is a finite number and no two labels
are the same number written differently (``7`` and ``7.0``, or ``007`` and ``7``, are not) — and in
text order otherwise.

The split.  ``--test-size`` of the rows (rounded up) go to the test part, drawn with ``--seed``; a
classification split is stratified by default, row for row as scikit-learn's
``train_test_split(test_size, random_state=seed, stratify=labels)`` (:func:`jaxnn.data.stratified_split`),
and a regression split (or ``--no-stratify``) is ``train_test_split(test_size, random_state=seed)``
(:func:`jaxnn.data.shuffle_split`).  Where stratification is impossible (a class with one row, or fewer
test rows than classes) the split is by shuffling only, with a warning; a class left without training
rows is warned about too.  Inputs are standardised on the training split.

The fingerprint (SHA-256 of the split data) identifies the data wherever the file lives: a resumed run
checks it, and accepts a CSV file that moved.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import itertools
import math
import os
import re
import stat
import sys
import unicodedata
from array import array as float_buffer
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxnn.cli import csv_file
from jaxnn.cli.csv_cells import (
    exact_number,
    formatted_number,
    id_column_warning,
    look_alike_classes,
    plain_number,
    text_column_advice,
)
from jaxnn.cli.errors import PROG, CliError
from jaxnn.cli.option_table import GivenPath, as_given
from jaxnn.cli.options import refuse
from jaxnn.data import load_iris, shuffle_split, standardise, stratified_split

__all__ = [
    "MAX_AUTO_CLASSES",
    "MISSING_MARKERS",
    "CsvTable",
    "Problem",
    "check_same_data",
    "class_labels",
    "csv_targets",
    "fingerprint",
    "load_problem",
    "load_problems",
    "read_csv",
    "reads_standard_input",
    "say_warnings",
    "split_rows",
    "stratifies",
]

MAX_AUTO_CLASSES = 20  # a whole-number CSV target with more distinct values is read as regression
# Target cells that mark a missing value (pandas' default NA strings that are not numbers, with ? and -): refused,
# as an empty or NaN target is, rather than read as a class.  So no class can be named by one of them.
MISSING_MARKERS = frozenset(
    [*"NA N/A n/a #N/A #NA <NA> NULL null None 1.#IND -1.#IND 1.#QNAN -1.#QNAN ? -".split(), "#N/A N/A"]
)
_PANDAS_INDEX = re.compile(r"Unnamed: \d+")
_STANDARD_INPUT = ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")  # --csv names for the pipe or file on stdin
_FROM_STANDARD_INPUT = "the run being resumed read its data from standard input (--csv {})"
# The --resume argument is not known where the data is read (nor needed there): the advice names it as "the same".
_PIPE_IT_AGAIN = (
    f"pipe the same data in (the same {PROG} --resume command, with < data.csv), or pass its file with --csv PATH"
)


class Problem(NamedTuple):
    """The prepared data: inputs standardised on the training split, targets as class indices or values."""

    name: str
    task: str  # "classification" or "regression"
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray  # class indices 0..k-1, or target values in their own units
    y_test: np.ndarray
    class_names: tuple[str, ...]  # empty for regression
    feature_names: tuple[str, ...]  # the input columns, in order
    fingerprint: str  # sha256 of the split data, to recognise the data on resume
    warnings: tuple[str, ...]  # about the split, for the user


def _load_bundled(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Iris from jaxnn's own copy (no scikit-learn import), the others from scikit-learn."""
    if name == "iris":
        iris = load_iris()
        return iris.x, iris.y, iris.class_names, iris.feature_names
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    return (
        bunch.data.astype(float),
        bunch.target.astype(int),
        tuple(str(label) for label in bunch.target_names),
        tuple(str(feature) for feature in bunch.feature_names),
    )


class _NoRows(CliError):
    """A CSV file without a header row and a data row (an empty file, or standard input with nothing piped in)."""


def reads_standard_input(path: str | Path) -> bool:
    """Whether ``--csv path`` reads standard input (``/dev/stdin`` or one of its other names)."""
    return str(path) in _STANDARD_INPUT


class CsvTable(NamedTuple):
    """A CSV file's numeric input columns and its raw target cells."""

    x: np.ndarray  # (rows, inputs) float
    feature_names: tuple[str, ...]
    targets: list[str]  # the target cells, stripped
    lines: list[int]  # the file line of each row


def _check_header(header: list[str], name: str, line: int) -> None:
    """Refuse a header (file line ``line`` of the CSV file that messages call ``name``) with a column that has no
    name or pandas' index name, or a name twice.

    An empty last name is a trailing comma; an empty first name or ``Unnamed: N`` is how pandas writes its row index.
    """
    for position, column in enumerate(header, start=1):
        if not column and position == len(header) > 1:
            raise CliError(
                f"--csv {name} line {line} (the header) ends with a comma, so its last column has no name; "
                "remove the trailing comma from the end of every line (or name that column)"
            )
        if (not column and position == 1) or _PANDAS_INDEX.fullmatch(column):
            shown = "an empty name" if not column else repr(column)
            raise CliError(
                f"--csv {name} column {position} has {shown}, as pandas writes its row index (df.to_csv(path)); "
                "drop that column, or write the file with df.to_csv(path, index=False)"
            )
        if not column:
            raise CliError(
                f"--csv {name} line {line} (the header) gives column {position} no name; name it, or drop that column"
            )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise CliError(f"--csv {name} has repeated column names ({', '.join(map(repr, repeated))}); rename them")


def _file_bytes(path: str | Path, name: str) -> bytes:
    """The whole of ``path``: a file, a pipe, a terminal or ``/dev/null``.  Another device (``/dev/zero``, a disk)
    is a CliError before it is read (it never ends, or is no CSV file), and so is a file too large for memory."""
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            if device and not file.isatty() and not os.path.samefile(path, os.devnull):
                raise CliError(f"--csv {name} is a device, not a file of rows; pass a CSV file, or pipe one in")
            return file.read()
    except OSError as error:
        stdin = "; to read standard input, pass --csv /dev/stdin" if name == "-" and error.errno == errno.ENOENT else ""
        raise CliError(f"cannot read --csv {name}: {error.strerror or error}{stdin}") from None
    except MemoryError:
        raise CliError(
            f"--csv {name} is too large to read into this machine's memory; train on a sample of its rows"
        ) from None


def read_csv(path: str | Path, target: str) -> CsvTable:
    """Numeric input columns and the raw target cells of ``path``; a CliError names any bad cell or header.

    The file is read once, from start to end (so ``path`` may be a pipe such as ``/dev/stdin``).  Blank lines are
    skipped, and so is a first line ``sep=,`` (Excel's separator hint); line numbers in messages count both.
    Messages name the file as the user typed it (:func:`jaxnn.cli.option_table.as_given`).  Header names are read
    without surrounding spaces, as ``--target`` is (``jaxnn.cli.option_table``).
    """
    name = as_given(path)
    raw = _file_bytes(path, name)
    rows = csv_file.records(raw, name)
    first = list(itertools.islice(rows, 2))
    if len(first) < 2:
        raise _NoRows(f"--csv {name} needs a header row and at least one data row")
    header_line, header = first[0][0], [cell.strip() for cell in first[0][1]]
    if len(header) == 1 and any(mark in header[0] for mark in csv_file.SEPARATORS):
        raise CliError(csv_file.other_separator(header[0], raw, name))
    _check_header(header, name, header_line)
    if target not in header:
        raise CliError(
            f"--target column {target!r} is not in {name}; its {len(header)} columns are {_listed(header)}"
            + _missing_target_hint(target, header, header_line)
        )
    target_index = header.index(target)
    if len(header) < 2:
        raise CliError(f"--csv {name} has only the target column; it needs at least one input column")
    inputs, targets, lines = float_buffer("d"), [], []
    for number, row in itertools.chain(first[1:], rows):
        if len(row) != len(header):
            advice = csv_file.extra_cells_advice(row, len(header))
            raise CliError(f"{name} line {number} has {len(row)} cells but the header has {len(header)}{advice}")
        cells = [cell.strip() for cell in row]
        if [cells[0].removeprefix("\ufeff"), *cells[1:]] == header:  # a second export's byte-order mark, too
            raise CliError(
                f"{name} line {number} repeats the header line {header_line} (files joined together?); remove that line"
            )
        values = [_number(cell) for i, cell in enumerate(cells) if i != target_index]
        if not all(map(math.isfinite, values)):
            data_rows = list(csv_file.records(raw, name))[1:]  # the whole file again, for the column's other cells
            raise CliError(_bad_input(data_rows, number, cells, header, target_index, name))
        inputs.extend(values)
        label = cells[target_index]
        read = plain_number(label)
        if not label or not math.isfinite(read or 0.0):  # text may be a class label: only NaN/inf
            infinite = label and math.isinf(read)  # 'Inf' may have been meant as a class's name
            read_as = f", read as the number {read} (a class cannot be named so either)" if infinite else ""
            raise CliError(
                f"{name} line {number}, target column {target!r} holds {label!r}{read_as}; fill in or drop the row"
            )
        if label in MISSING_MARKERS:
            raise CliError(
                f"{name} line {number}, target column {target!r} holds {label!r}, a missing-value marker; "
                "fill in or drop the row"
            )
        if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in label):  # NUL, …: a damaged file
            raise CliError(
                f"{name} line {number}, target column {target!r} holds {label!r}, with a control character; "
                "check that the file is the text CSV meant, or clean that cell"
            )
        targets.append(label)
        lines.append(number)
    features = tuple(name for i, name in enumerate(header) if i != target_index)
    x = np.frombuffer(inputs, dtype=np.float64).reshape(len(lines), len(features))  # shares the array's memory
    return CsvTable(x, features, targets, lines)


def _missing_target_hint(target: str, header: list[str], header_line: int) -> str:
    """What may explain a ``--target`` missing from ``header``: a comment line read as the header, a header line
    that holds numbers (a file written without one), or a name spelt nearly alike (``Species`` for ``species``)."""
    if header[0].startswith("#") and target in (header[0].lstrip("# "), *header[1:]):  # numpy.savetxt's header
        return f" (line {header_line} starts with '#', as numpy.savetxt writes a header: remove the '#', not the line)"
    if header[0].startswith("#"):
        return f" (line {header_line} starts with '#': remove comment lines above the header)"
    if 2 * sum(plain_number(name) is not None for name in header) > len(header):
        return f" (line {header_line} holds numbers: the file may have no header line; write one naming the columns)"
    alike = [name for name in header if name.casefold() == target.casefold()]
    alike = alike or difflib.get_close_matches(target, header, n=1, cutoff=0.8)
    return f"; did you mean {alike[0]!r}?" if alike else ""


def _listed(names: Sequence[str], shown: int = 5) -> str:
    """``names`` quoted and separated by commas for a one-line message: the first ``shown`` of them, then
    ``… and N more`` when there are more (a target with hundreds of classes must not make a huge line)."""
    return _first_few([repr(name) for name in names], shown)


def _first_few(items: Sequence[str], shown: int = 5) -> str:
    """``items`` as they are, separated by commas: the first ``shown`` of them, then ``… and N more``."""
    joined = ", ".join(items[:shown])
    return joined if len(items) <= shown else f"{joined} … and {len(items) - shown} more"


def _number(cell: str) -> float:
    """The input cell's plain number (:func:`jaxnn.cli.csv_cells.plain_number`); NaN for text or an empty cell
    (:func:`_bad_input` says which)."""
    value = plain_number(cell)
    return math.nan if value is None else value


def _bad_input(
    rows: list[tuple[int, list[str]]], line: int, cells: list[str], header: list[str], target_index: int, name: str
) -> str:
    """The message for data line ``line`` (its stripped ``cells``), whose first input cell that is not a finite
    number is the one named: a number written for people (``$3.50``, ``1,234``, ``12%``: how to write it plainly),
    empty or a stray value (fill in or drop such cells); or, whatever that cell holds (empty and missing-value
    markers too), its column when the column mostly holds text (more than half of its filled cells in ``rows``,
    the data rows, not counting missing-value markers), named at its first text: it must be converted (true/false
    values, dates), one-hot encoded or dropped, a network taking numbers only.  Missing-value markers (``NA``,
    ``?``), ``nan``/``inf`` and numbers written for people are not counted as text."""
    index = next(i for i, cell in enumerate(cells) if i != target_index and not math.isfinite(_number(cell)))
    cell, column = cells[index], header[index]
    where = f"{name} line {line}, column {column!r}"
    formatted = formatted_number(cell) if cell else None
    if formatted is not None:
        return f"{where} holds {cell!r}, {formatted.what}; input columns must be plain numbers: {formatted.advice}"
    in_column = [(row_line, row[index].strip()) for row_line, row in rows if len(row) > index]
    filled = [(row_line, other) for row_line, other in in_column if other and other not in MISSING_MARKERS]
    texts = [(row_line, other) for row_line, other in filled if _is_text(other)]
    if 2 * len(texts) > len(filled):
        what, advice = text_column_advice([text for _, text in texts], column)
        first_line, first_text = texts[0]
        return (
            f"{name} line {first_line}, column {column!r} holds {first_text!r}: input column {column!r} holds {what} "
            f"({len(texts)} of its {len(filled)} filled cells), but input columns must be numbers; {advice}"
        )
    if not cell:
        return f"{where} is empty; input columns must be numbers (fill in or drop such cells)"
    stray = f"holds {cell!r}, which is not a finite number"
    return f"{where} {stray}; input columns must be numbers (fill in or drop such cells)"


def _is_text(cell: str) -> bool:
    """Whether a filled cell holds text: not a number (plain or written for people) nor a missing-value marker."""
    return plain_number(cell) is None and cell not in MISSING_MARKERS and formatted_number(cell) is None


def _as_numbers(cells: list[str]) -> np.ndarray | None:
    """The cells' numbers when every one is a finite plain number (:func:`_number`), else None."""
    values = np.asarray([_number(cell) for cell in cells], dtype=float)
    return values if np.all(np.isfinite(values)) else None


def class_labels(cells: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(indices, names)``: each cell's class index and the class names, the labels' own text.

    Cells are the same class when their text is the same.  The classes are ordered by value when the
    column is genuinely numeric (every label a finite number, no number written two ways), else as text.
    """
    names = sorted(set(cells))
    if _as_numbers(names) is not None:
        exact = [exact_number(name) for name in names]  # not floats: 2e16 and 2e16 + 1 are two numbers
        if len(set(exact)) == len(names):
            names = [name for _, name in sorted(zip(exact, names, strict=True))]
    position = {name: i for i, name in enumerate(names)}
    return np.asarray([position[cell] for cell in cells], dtype=int), tuple(names)


def csv_targets(cells: list[str], lines: list[int], task: str | None, path: str | Path, column: str):
    """``(task, targets, class_names)``: class indices with their names, or float values (regression); messages
    name the file ``path`` as :func:`read_csv`'s do."""
    values = np.asarray([_number(cell) for cell in cells], dtype=float)  # once: a cell at a time took seconds
    finite = np.isfinite(values)
    numbers = values if finite.all() else None
    guessed = task is None
    if guessed:
        # a column of mostly numbers is read by its numbers: a few text cells among numbers that read as
        # regression (a missing-value marker, a typo) are refused rather than making a class of each value
        numeric = values[finite]
        task = _auto_task(numeric) if numbers is not None or 2 * len(numeric) > len(cells) else "classification"
        if task == "classification" and numbers is None:
            _refuse_formatted_regression(cells, lines, path, column)
    if task == "regression":
        if numbers is None:
            bad = int(np.flatnonzero(~finite)[0])
            others = " but its other cells are mostly numbers, read as regression" if guessed else ""
            raise CliError(
                f"{as_given(path)} line {lines[bad]}, target column {column!r} holds {cells[bad]!r}{others}; "
                "regression needs numbers there (or use --task classification)"
            )
        return task, numbers, ()
    labels, names = class_labels(cells)
    return task, labels, names


def _refuse_formatted_regression(cells: list[str], lines: list[int], path: str | Path, column: str) -> None:
    """A CliError when the target ``cells`` (of file ``lines``) are all numbers, some written for people (``$3.50``,
    ``1,234``, ``12%``: :func:`jaxnn.cli.csv_cells.formatted_number`), whose values read as regression: such a
    column would otherwise become one class per distinct text."""
    formatted = [formatted_number(cell) for cell in cells]
    if any(_as_numbers([cell]) is None and kind is None for cell, kind in zip(cells, formatted, strict=True)):
        return  # some cell is text: class labels
    values = np.asarray(
        [_number(cell) if kind is None else kind.value for cell, kind in zip(cells, formatted, strict=True)]
    )
    if _auto_task(values) == "regression":
        first = next(i for i, kind in enumerate(formatted) if kind is not None)
        raise CliError(
            f"{as_given(path)} line {lines[first]}, target column {column!r} holds {cells[first]!r}, "
            f"{formatted[first].what}: its values read as regression, which needs plain numbers; "
            f"{formatted[first].advice} (or use --task classification to make each text a class)"
        )


def _auto_task(numbers: np.ndarray) -> str:
    """Classification for whole numbers with at most :data:`MAX_AUTO_CLASSES` distinct values, else regression."""
    whole = bool(np.all(numbers == np.round(numbers)))
    return "classification" if whole and len(np.unique(numbers)) <= MAX_AUTO_CLASSES else "regression"


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 over the arrays' bytes: the same data gives the same fingerprint wherever it was read from."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def stratifies(task: str, option: bool | None) -> bool:
    """Whether the split is stratified: classification, unless ``--no-stratify`` (``option`` False)."""
    return task == "classification" and option is not False


def split_rows(
    y: np.ndarray, class_names: tuple[str, ...], stratify: bool, test_size: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(train, test, warnings)``: the row indices of each part, stratified where asked and possible."""
    try:
        train, test = shuffle_split(len(y), test_size, seed)
    except ValueError as error:
        raise CliError(f"cannot split the {len(y)} rows of {name} with --test-size {test_size}: {error}") from None
    warnings = []
    if stratify:
        counts = np.bincount(y, minlength=len(class_names))
        single = [class_names[i] for i in np.flatnonzero(counts < 2)]
        if single:
            warnings.append(
                f"cannot stratify the split of {name}: class{'es' if len(single) > 1 else ''} "
                f"{_listed(single)} {'have' if len(single) > 1 else 'has'} a single row; "
                "splitting by shuffling only"
            )
        elif min(len(train), len(test)) < len(class_names):
            part = "training" if len(train) < len(test) else "test"
            rows = min(len(train), len(test))
            warnings.append(
                f"cannot stratify the split of {name}: its {part} part has {rows} row{'s' if rows > 1 else ''} for "
                f"{len(class_names)} classes; splitting by shuffling only"
            )
        else:
            train, test = stratified_split(y, test_size, seed)
    if not class_names and len(test) == 1:  # scikit-learn's r2_score: NaN, with a warning
        warnings.append(
            f"the test part of {name} has a single row, whose R^2 is not defined (it is reported as 0): use a larger "
            "--test-size for a score that means something"
        )
    if class_names:
        missing = [class_names[i] for i in sorted(set(range(len(class_names))) - set(y[train].tolist()))]
        if missing:
            warnings.append(
                f"class{'es' if len(missing) > 1 else ''} {_listed(missing)} of {name} "
                f"{'have' if len(missing) > 1 else 'has'} no training rows: the network cannot learn "
                f"{'them' if len(missing) > 1 else 'it'} (add rows, or use another --seed or --test-size)"
            )
    return train, test, tuple(warnings)


def load_problem(options: dict[str, Any]) -> Problem:
    """Load, split and standardise the data that ``options`` names; the task is settled here.

    ``options["stratify"]`` None means "stratify classification".
    """
    return load_problems(options, (options["seed"],))[options["seed"]]


def say_warnings(problems: Sequence[Problem]) -> None:
    """Each warning about the data of ``problems`` (the members' splits of one dataset), once, on stderr."""
    for warning in dict.fromkeys(warning for problem in problems for warning in problem.warnings):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


def check_same_data(
    problem: Problem, stored: dict[str, Any], stored_fingerprint: Any, given_csv: str | None, path: Path
) -> None:
    """A resumed run's data must be the data its checkpoint at ``path`` was trained on: the same numbers (the
    ``problem``'s fingerprint is ``stored_fingerprint``) under the same input column and class names as the
    checkpoint's config ``stored`` lists (a renamed class or column would silently rename the network's), where
    ``stored["csv"]`` is where that data was and ``given_csv`` is ``--csv`` given again (None when not given)."""
    if stored_fingerprint == problem.fingerprint:
        for what, key, names in (
            ("input columns", "input_columns", problem.feature_names),
            ("classes", "class_names", problem.class_names),
        ):
            if key in stored and not (isinstance(stored[key], list) and all(isinstance(n, str) for n in stored[key])):
                raise CliError(f"{path} is corrupt: its {key} is not a list of names; restore it from a copy")
            if key in stored and list(stored[key]) != list(names):
                raise CliError(
                    f"{_renamed(what, list(stored[key]), list(names), path)}; "
                    "resume with the names it was trained on, or start a new run (a different --out)"
                )
        return
    stored_csv = stored.get("csv")
    if given_csv is None and stored_csv is not None and reads_standard_input(stored_csv):
        raise CliError(
            f"the data on standard input differs from the data {path} was trained on (their SHA-256 fingerprints "
            f"differ); {_FROM_STANDARD_INPUT.format(stored_csv)}: {_PIPE_IT_AGAIN}"
        )
    if given_csv is not None and given_csv != stored_csv:
        raise CliError(
            f"--csv {as_given(given_csv)} holds other data than {path} was trained on (their SHA-256 fingerprints "
            f"differ); pass the file the run was trained on (it was at {stored_csv})"
        )
    raise CliError(f"the data differs from the data {path} was trained on (was the CSV file changed?)")


def _renamed(what: str, stored: list[str], names: list[str], path: Path) -> str:
    """How the data's ``names`` of ``what`` (input columns, classes) differ from the ``stored`` ones of the
    checkpoint at ``path``: each renamed one, position by position, or both lists when their lengths differ; a few,
    then how many more."""
    if len(stored) != len(names):
        return f"the data's {what} are named {_listed(names)} but {path} was trained on {_listed(stored)}"
    changes = [f"{new!r} (was {old!r})" for old, new in zip(stored, names, strict=True) if old != new]
    return f"the data's {what} are not named as in {path}: {_first_few(changes)}"


def load_problems(options: dict[str, Any], seeds: Sequence[int]) -> dict[int, Problem]:
    """The data that ``options`` names, read once and split with each of ``seeds`` (a population run's
    members with different ``--seed`` values train on different splits); ``options["seed"]`` is ignored."""
    data = _read_data(options)
    return {seed: _split_problem(data, options, seed) for seed in dict.fromkeys(seeds)}


class _Data(NamedTuple):
    """The whole dataset, read and labelled, before the split."""

    name: str
    task: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    warnings: tuple[str, ...]  # about the data, before any split's


def _read_data(options: dict[str, Any]) -> _Data:
    if options["csv"] is not None:
        path = options["csv"]  # a GivenPath from the command line: messages show it as typed
        table = _read_table(path, options["target"])
        task, y, class_names = csv_targets(table.targets, table.lines, options["task"], path, options["target"])
        x, feature_names, name = table.x, table.feature_names, Path(path).name
    else:
        if options["task"] == "regression":
            raise CliError(f"the {options['dataset']} dataset is classification; leave --task out")
        x, y, class_names, feature_names = _load_bundled(options["dataset"])
        task, name = "classification", options["dataset"]
    if task == "classification" and len(class_names) < 2:
        raise CliError(_one_class(name, class_names[0], guessed=options["task"] is None))
    if task == "regression" and options["stratify"]:
        raise CliError("--stratify needs class labels; a regression target is split by shuffling only")
    refuse(options, ("classification only",) if task != "classification" else (), task)
    alike = look_alike_classes(class_names) if options["csv"] is not None else []
    warnings = (_look_alike_warning(alike, name, len(class_names)),) if alike else ()
    warnings += tuple(id_column_warning(x[:, i], column, name) for i, column in enumerate(feature_names))
    return _Data(name, task, x, y, class_names, feature_names, tuple(filter(None, warnings)))


def _look_alike_warning(groups: list[list[str]], name: str, classes: int) -> str:
    """The warning for classes of ``name`` (``classes`` in all) that are written differently but alike (``groups``
    of :func:`jaxnn.cli.csv_cells.look_alike_classes`): they stay apart, as documented, but said."""
    shown = _first_few(["/".join(map(repr, group)) for group in groups], 3)
    numbers = sum(plain_number(group[0]) is not None for group in groups)
    if numbers == 0:
        how = "differ only in letter case"
    elif numbers == len(groups):
        how = "are the same number written differently"
    else:
        how = "differ only in letter case or in how a number is written"
    return (
        f"classes {shown} of {name} {how}; they are kept apart "
        f"({classes} classes in all): write each class one way if they are one"
    )


def _read_table(path: str, target: str) -> CsvTable:
    """:func:`read_csv` of ``path``: a :class:`GivenPath` when ``--csv`` was typed on this command line, else the
    path a resumed run's checkpoint stores.  When that stored path is standard input (the run was trained on
    ``--csv /dev/stdin``), a terminal there or nothing piped in is a CliError saying so (it named ``--csv
    /dev/stdin``, which this command line does not give, or waited for the terminal)."""
    if isinstance(path, GivenPath) or not reads_standard_input(path):
        return read_csv(path, target)
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError(f"{_FROM_STANDARD_INPUT.format(path)}, but standard input is a terminal; {_PIPE_IT_AGAIN}")
    try:
        return read_csv(path, target)
    except _NoRows:
        raise CliError(f"{_FROM_STANDARD_INPUT.format(path)}, but it holds no CSV data now; {_PIPE_IT_AGAIN}") from None


def _one_class(name: str, label: str, guessed: bool) -> str:
    """The message for a classification target with the single class ``label``; a number read as a class by
    default (no --task) gets the hint that a regression fits it."""
    message = f"the target of {name} has only one class ({label!r}); classification needs two"
    if guessed and _as_numbers([label]) is not None:
        message += "; to fit the value itself, use --task regression"
    return message


def _split_problem(data: _Data, options: dict[str, Any], seed: int) -> Problem:
    name, task, x, y, class_names, feature_names, data_warnings = data
    train, test, split_warnings = split_rows(
        y, class_names, stratifies(task, options["stratify"]), options["test_size"], seed, name
    )
    x_train, x_test, y_train, y_test = x[train], x[test], y[train], y[test]
    scaler = standardise(x_train)
    scaled_train, scaled_test = scaler(x_train), scaler(x_test)
    for scaled in (scaled_train, scaled_test):
        bad = np.flatnonzero(~np.all(np.isfinite(scaled), axis=0))
        if bad.size:
            raise CliError(
                f"input column {feature_names[bad[0]]!r} of {name} holds numbers too large to standardise "
                "(near the float64 limit, 1.8e308); rescale it"
            )
    return Problem(
        name,
        task,
        scaled_train,
        scaled_test,
        y_train,
        y_test,
        class_names,
        feature_names,
        fingerprint(x_train, y_train, x_test, y_test),
        data_warnings + split_warnings,
    )
