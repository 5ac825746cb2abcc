"""A CSV file's bytes as records: the file-level checks and messages of ``jaxnn-train --csv``.

:func:`records` decodes UTF-8 (a byte-order mark dropped; UTF-16 and other encodings refused with the conversion to
make), skips blank lines and a first line ``sep=,`` (Excel's separator hint), and yields ``(line, cells)`` one record
at a time, numbered by the line it starts on: the strings of a whole file's cells take about ten times the memory of
its numbers, so the reader holds one record.  The CSV is read strictly (an unclosed quote is refused, not read as
the rest of the file).  The messages for a file in another separator and for a row with extra cells are here too;
what a cell holds is :mod:`jaxnn.cli.csv_cells`'.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator

from jaxnn.cli.errors import CliError

__all__ = ["SEPARATORS", "extra_cells_advice", "other_separator", "records"]


def records(raw: bytes, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of each record of the CSV file ``name`` whose bytes are ``raw`` that is not blank, without a
    first line ``sep=,``; a CliError for bytes that are not UTF-8 text, a record that is not valid CSV, or a
    separator hint naming another separator."""
    raw = _utf8_bytes(raw, name)
    rows = _records(_text(raw), name)
    first = next(rows, None)
    if first is None:
        return
    if not _is_comma_hint(first, raw, name):
        yield first
    yield from rows


def _text(raw: bytes) -> io.TextIOWrapper:
    """``raw`` decoded as it is read (``io.StringIO`` of the whole text would hold up to four bytes a character)."""
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")


def _is_comma_hint(first: tuple[int, list[str]], raw: bytes, name: str) -> bool:
    """Whether the ``first`` record is Excel's separator hint ``sep=,`` on line 1, which Excel skips too (it is not
    the header); a hint naming another separator (``sep=;``) is refused: jaxnn-train reads comma-separated files."""
    line, cells = first
    hint = re.fullmatch(r"sep=(.)", ",".join(cells).strip(" \r\n"), flags=re.IGNORECASE) if line == 1 else None
    if hint is None:
        return False
    if hint.group(1) != ",":
        rest = list(itertools.islice(_records(_text(raw), name), 1, None))
        raise CliError(
            f"--csv {name} line 1, {cells[0]!r}, says its cells are separated by {hint.group(1)!r}, but "
            "jaxnn-train reads comma-separated files; convert it, e.g. "
            f"pandas.read_csv(path, sep={hint.group(1)!r}{_decimal_comma_option(rest)}, skiprows=1)"
            ".to_csv(new_path, index=False)"
        )
    return True


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def other_separator(header: str, raw: bytes, name: str) -> str:
    """The message for a CSV file ``name`` (bytes ``raw``) whose ``header`` is one cell holding another separator
    (semicolons, tabs or pipes), with a conversion for it: ``decimal=','`` too when its data rows hold decimal commas
    (``1,5``), as a European-locale export does."""
    rows = list(records(raw, name))[1:]  # the whole file again: an error path
    mark = next(mark for mark in SEPARATORS if mark in header)
    return (
        f"--csv {name} has one column, {header!r}: its cells seem separated by {SEPARATORS[mark]}, but jaxnn-train "
        f"reads comma-separated files; convert it, e.g. pandas.read_csv(path, sep={mark!r}"
        f"{_decimal_comma_option(rows)}).to_csv(new_path, index=False)"
    )


def extra_cells_advice(row: list[str], n_columns: int) -> str:
    """What may have split ``row`` into more cells than the header's ``n_columns``: a comma at the end of the line,
    or a number written with a thousands separator and not quoted (``5,720`` read as the cells ``5`` and ``720``);
    else nothing."""
    if len(row) == n_columns + 1 and not row[-1].strip():
        return "; it ends with a comma: remove the trailing comma"
    cells = [cell.strip() for cell in row] if len(row) > n_columns else []
    for left, right in itertools.pairwise(cells):
        if re.fullmatch(r"[+-]?[1-9][0-9]{0,2}", left) and re.fullmatch(r"[0-9]{3}", right):
            return (
                f"; {left},{right} may be one number written with a thousands separator: write numbers plainly "
                f"({left}{right}), or quote such cells and convert them"
            )
    return ""


def _decimal_comma_option(rows: list[tuple[int, list[str]]]) -> str:
    """``, decimal=','`` for pandas when the data ``rows`` of a file in another separator hold decimal commas
    (``1,5``, as a European-locale export writes numbers), else nothing."""
    return ", decimal=','" if any(re.search(r"[0-9],[0-9]", ",".join(row)) for _, row in rows) else ""


def _utf16_encoding(raw: bytes) -> str | None:
    """The codec that reads ``raw`` when it is UTF-16 text: ``'utf-16'`` after a byte-order mark (Excel's "Unicode
    Text"), ``'utf-16-le'``/``'utf-16-be'`` for mostly-ASCII text without one (every other byte NUL, which UTF-8
    would read as control characters); else None."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = raw[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls >= 0.9 * half and even_nuls == 0:
        return "utf-16-le"
    if even_nuls >= 0.9 * half and odd_nuls == 0:
        return "utf-16-be"
    return None


# Files often passed for a CSV file, by first bytes no text holds; each would be told to convert Windows-1252 text.
_PACKED_FORMATS = {
    b"\x1f\x8b": "gzip-compressed: decompress it first (gunzip -k FILE), or pipe it in (zcat FILE | jaxnn-train "
    "--csv /dev/stdin ...)",
    b"PK\x03\x04": "a zip archive (an Excel .xlsx workbook is one): save the sheet as CSV UTF-8, or unzip the CSV "
    "file inside",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook: save the sheet as CSV UTF-8",
}


def _utf8_bytes(raw: bytes, name: str) -> bytes:
    """``raw`` without a UTF-8 byte-order mark, once it is known to be UTF-8 text; bytes that are not UTF-8 are a
    CliError naming the file line they are on (1-based, counted as :func:`_records` counts lines) and how to fix the
    file."""
    raw = raw.removeprefix(codecs.BOM_UTF8)
    packed = next((what for magic, what in _PACKED_FORMATS.items() if raw.startswith(magic)), None)
    if packed is not None:
        raise CliError(f"--csv {name} is {packed}, not a CSV text file")
    encoding = _utf16_encoding(raw)
    if encoding:
        raise CliError(
            f"--csv {name} is UTF-16 text (as Excel saves Unicode Text), but jaxnn-train reads UTF-8 CSV files; save "
            "it as CSV UTF-8, or convert it, e.g. pandas.read_csv(path, sep=None, engine='python', "
            f"encoding={encoding!r}).to_csv(new_path, index=False)"
        )
    try:
        raw.decode("utf-8")  # the check alone: the text is decoded again a record at a time
    except UnicodeDecodeError as error:
        line = len(re.findall(r"\r\n|\r|\n", raw[: error.start].decode("utf-8"))) + 1
        raise CliError(
            f"--csv {name} line {line} is not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8 "
            f"(Excel: CSV UTF-8), or convert it, e.g. iconv -f windows-1252 -t utf-8 {name} > converted.csv"
        ) from None
    return raw


def _records(file: io.TextIOWrapper, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of each record of ``file`` that is not blank, numbered by the line it starts on, one at a
    time.

    The CSV is read strictly: a quote that is never closed (which would swallow the rest of the file into one
    cell) or text after a closing quote is a CliError naming the line, not a silently different table.
    """
    reader = csv.reader(file, strict=True)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise CliError(_malformed(name, line, reader.line_num, error)) from None
        if any(cell.strip() for cell in row):
            yield line, row
        line = reader.line_num + 1


def _malformed(name: str, start: int, line: int, error: csv.Error) -> str:
    """The one-line message for a record of ``name`` (from line ``start``; the reader stopped at ``line``) that is
    not valid CSV."""
    if "field larger than field limit" in str(error):  # Python's csv module reads cells of up to 131,072 characters
        return (
            f"--csv {name} line {start} starts a cell of more than {csv.field_size_limit():,} characters: most "
            'likely a quote (") opened there, or on a line just before, is never closed, so the rest of the file '
            "would be read as one cell; close that quote, or remove it (a cell really that long is not read)"
        )
    if "unexpected end of data" in str(error):
        return (
            f'--csv {name} line {start} opens a quoted cell (") that is never closed, so the rest of the file would '
            "be read as one cell; close that quote, or remove it"
        )
    return (
        f"--csv {name} line {line} is not valid CSV ({error}): a cell that starts with a quote must end with it; "
        'write a quote inside a quoted cell as two quotes ("")'
    )
