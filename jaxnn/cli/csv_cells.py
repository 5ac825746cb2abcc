"""What a CSV cell holds: a plain number, or a number written for people (``1,234``, ``12%``, ``$3.50``), a
true/false value or a date, which jaxnn-train does not read as numbers but names in its messages.

A *plain number* is what the command line accepts too: ASCII digits, perhaps a sign, a decimal point and an
exponent (``1.5``, ``+2``, ``.5``, ``1e-3``), or one of the words Python's ``float`` reads as NaN or infinity
(``nan``, ``inf``, ``Infinity``), which the callers refuse as not finite.  Python's ``float`` alone would also
read ``1_000`` as 1000 and ``１２`` (full-width digits) as 12, which pandas reads as text: such a cell is not a
plain number.
"""

from __future__ import annotations

import re

__all__ = ["plain_number"]

_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def plain_number(cell: str) -> float | None:
    """The number a stripped cell holds when it is a plain number (NaN, infinities and 1e400 included); None for any
    other cell (text, an empty cell, ``1_000``, digits of other scripts)."""
    return float(cell) if _PLAIN_NUMBER.fullmatch(cell) else None
