"""What a CSV cell holds: a plain number, or a number written for people (``1,234``, ``12%``, ``$3.50``), a
true/false value or a date, which jaxnn-train does not read as numbers but names in its messages; and what a
column of cells says about itself (classes written alike, an ID column).

A *plain number* is what the command line accepts too: ASCII digits, perhaps a sign, a decimal point and an
exponent (``1.5``, ``+2``, ``.5``, ``1e-3``), or one of the words Python's ``float`` reads as NaN or infinity
(``nan``, ``inf``, ``Infinity``), which the callers refuse as not finite.  Python's ``float`` alone would also
read ``1_000`` as 1000 and ``１２`` (full-width digits) as 12, which pandas reads as text: such a cell is not a
plain number.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

__all__ = [
    "Formatted",
    "exact_number",
    "formatted_number",
    "id_column_warning",
    "look_alike_classes",
    "plain_number",
    "text_column_advice",
]

_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def plain_number(cell: str) -> float | None:
    """The number a stripped cell holds when it is a plain number (NaN, infinities and 1e400 included); None for any
    other cell (text, an empty cell, ``1_000``, digits of other scripts)."""
    return float(cell) if _PLAIN_NUMBER.fullmatch(cell) else None


def exact_number(cell: str) -> Decimal | None:
    """The exact value of a plain number (:func:`plain_number`) as a Decimal, None for any other cell: numbers that
    float64 rounds to one value (``20000000000000000`` and ``20000000000000001``, long IDs) stay two, while one
    number written two ways (``7``, ``7.0``, ``70e-1``) compares equal.  A number whose exponent is beyond
    Decimal's (``1e-99999999999999999999``) is taken at float64's value (0 or an infinity)."""
    if not _PLAIN_NUMBER.fullmatch(cell):
        return None
    try:
        return Decimal(cell)
    except InvalidOperation:
        return Decimal(float(cell))


class Formatted(NamedTuple):
    """A number written for people: its value (a best reading, to judge a column by) and how it is written."""

    value: float
    what: str  # e.g. "a number with a currency sign", after the cell in a message
    advice: str  # how to write such cells plainly


_DIGITS = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?")  # 1,234 or 1,234.5 (0,125 is 1/8)
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+")  # 1,5 or 1.234,5
_CURRENCY = re.compile(r"([+-]?)[$€£¥]\s?(.+)|(.+?)\s?[$€£¥]")
_PERCENT = re.compile(r"(.+?)\s?%")
_UNDERSCORES = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)+(?:\.[0-9]+)?")
_COMMAS = (
    "remove the thousands separators (pandas.read_csv(path, thousands=',')), or write decimal commas as points "
    "(pandas.read_csv(path, decimal=','))"
)


def formatted_number(cell: str) -> Formatted | None:
    """How a stripped cell that is not a plain number (:func:`plain_number`) writes a number for people —
    ``$3.50`` or ``3,50 €``, ``12%``, ``1,234`` (a thousands separator or a decimal comma: ``1,5``), ``1_000``, or
    digits of another script — or None when it is not such a number (text, a date, a plain number)."""
    if plain_number(cell) is not None:
        return None
    currency = _CURRENCY.fullmatch(cell)
    if currency:
        amount = _comma_number(currency.group(2) or currency.group(3))
        if amount is not None:
            sign = -1.0 if currency.group(1) == "-" else 1.0
            return Formatted(sign * amount, "a number with a currency sign", "remove the currency signs")
    percent = _PERCENT.fullmatch(cell)
    if percent and _comma_number(percent.group(1)) is not None:
        return Formatted(_comma_number(percent.group(1)), "a percentage", "write 12% as 12 (or 0.12)")
    if _comma_number(cell) is not None:
        return Formatted(
            _comma_number(cell), "a number with a comma (a thousands separator or a decimal comma)", _COMMAS
        )
    if _UNDERSCORES.fullmatch(cell):
        return Formatted(float(cell), "a number with underscores", "remove the underscores")
    if cell and all(c.isascii() or unicodedata.decimal(c, None) is not None for c in cell):
        ascii_digits = "".join(str(unicodedata.decimal(c)) if not c.isascii() else c for c in cell)
        if plain_number(ascii_digits) is not None:
            return Formatted(float(ascii_digits), "a number in digits other than ASCII 0-9", "write it in ASCII digits")
    return None


def _comma_number(text: str) -> float | None:
    """``text`` (a sign allowed) as a plain number, a number with thousands separators (``1,234.5``) or with a decimal
    comma (``1,5``, ``1.234,5``); None otherwise.  ``1,234`` reads as a thousands separator."""
    sign, digits = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    if re.fullmatch(_DIGITS, digits):
        return float(sign + digits)
    if _THOUSANDS.fullmatch(digits):
        return float(sign + digits.replace(",", ""))
    if _DECIMAL_COMMA.fullmatch(digits):
        return float(sign + digits.replace(".", "").replace(",", "."))
    return None


_TRUE_FALSE = frozenset(["true", "false", "yes", "no"])
_TIME = r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?: ?[AaPp][Mm])?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_DATE = re.compile(
    rf"(?:[0-9]{{4}}[-/.][0-9]{{1,2}}[-/.][0-9]{{1,2}}|[0-9]{{1,2}}[-/.][0-9]{{1,2}}[-/.][0-9]{{2,4}}){_TIME}"
)
_ONE_HOT = "one-hot encode it (a 0/1 column per value, e.g. pandas.get_dummies) or drop that column"


def text_column_advice(texts: list[str], column: str) -> tuple[str, str]:
    """``(what, advice)`` for an input column whose filled cells are mostly the text cells ``texts``: true/false
    values (``true``/``FALSE``, ``yes``/``no``) are written as 1 and 0, dates become numbers, text that differs in
    every row (10 rows or more: an ID such as ``P0001``, a name, free text) is dropped, as one-hot encoding it would
    give a column per row, and other text (a category) is one-hot encoded; any of them may be dropped."""
    folded = {text.casefold() for text in texts}
    if folded <= _TRUE_FALSE:
        if folded <= {"true", "false"}:  # pandas reads these as booleans
            how = f"df[{column!r}].astype(int)"
        else:  # yes/no stay text in pandas, where astype(int) fails
            ones = {value: int(value in ("true", "yes")) for value in ("yes", "true", "no", "false") if value in folded}
            how = f"df[{column!r}].str.lower().map({ones})"
        return "true/false values", f"write them as 1 and 0 (e.g. {how}) or drop that column"
    if all(_DATE.fullmatch(text) for text in texts):
        return "dates", (
            "convert them to numbers (e.g. days since the first date, or year, month and day columns) or drop "
            "that column"
        )
    if len(texts) >= 10 and len(set(texts)) == len(texts):
        return "a different text in every row, like an ID or a name", (
            "drop that column (one-hot encoding it would give a column per row, which the network cannot learn from)"
        )
    return "text", _ONE_HOT


def look_alike_classes(names: tuple[str, ...]) -> list[list[str]]:
    """The groups (of two or more, in ``names``' order) of class names that differ only in letter case (``Yes``,
    ``YES``) or are the same number written differently (``1``, ``1.0``, ``01``): separate classes, which a user
    rarely means."""
    groups: dict[tuple[str, object], list[str]] = {}
    for name in names:
        number = exact_number(name)
        key = ("number", number) if number is not None and not number.is_nan() else ("text", name.casefold())
        groups.setdefault(key, []).append(name)
    return [group for group in groups.values() if len(group) > 1]


_ID_NAMES = re.compile(r"(?i)(id|index|row|row ?number|.*[ _]id)")


def id_column_warning(values: np.ndarray, column: str, name: str) -> str | None:
    """A warning for an input column that looks like an ID rather than a measurement: whole numbers that count the
    rows in file order (1, 2, 3, …), or, under a name such as ``id`` or ``customer_id``, a different whole number in
    every row; None for any other column (and for fewer than 10 rows).  Such a column lets the network learn the
    file's order (Kaggle's Iris.csv numbers its rows, sorted by species), not the data."""
    whole = len(values) >= 10 and bool(np.all(values == np.round(values)))
    if whole and np.all(np.diff(values) == 1):
        how = f"counts the rows ({values[0]:g} to {values[-1]:g})"
    elif whole and _ID_NAMES.fullmatch(column) and len(np.unique(values)) == len(values):
        how = "holds a different whole number in every row"
    else:
        return None
    return (
        f"input column {column!r} of {name} {how}, like an ID or a row number: the network can learn the file's order "
        "from it rather than the data (rows are often sorted by class); drop that column unless it measures something"
    )
