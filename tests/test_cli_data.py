"""jaxnn-train's data: CSV columns and labels, the stratified split, and a CSV file that moved."""

import contextlib
import io
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_support import arrays, metrics, train, with_config, write_csv
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from jaxnn import checkpoint
from jaxnn.cli import csv_cells, data
from jaxnn.cli.errors import CliError


def test_csv_with_text_labels_trains_exactly_like_the_bundled_dataset(tmp_path):
    bunch = load_iris()
    names = [str(name) for name in bunch.target_names]  # already in sorted order, so the class indices agree
    rows = [
        [*map(repr, features), names[label]] for features, label in zip(bunch.data.tolist(), bunch.target, strict=True)
    ]
    csv_file = write_csv(tmp_path / "iris.csv", [*bunch.feature_names, "species"], rows)
    assert train("--csv", csv_file, "--target", "species", "--epochs", "30", "--quiet", "--out", tmp_path / "csv") == 0
    assert train("--dataset", "iris", "--epochs", "30", "--quiet", "--out", tmp_path / "bundled") == 0
    from_csv, bundled = arrays(tmp_path / "csv"), arrays(tmp_path / "bundled")
    for name in bundled:
        np.testing.assert_array_equal(from_csv[name], bundled[name], err_msg=name)
    config = checkpoint.read_config(tmp_path / "csv" / "checkpoint.npz")
    assert config["class_names"] == names and config["input_columns"] == list(bunch.feature_names)


def test_target_kind_is_read_from_the_column():
    path = Path("t.csv")
    assert data.csv_targets(["1", "0", "2", "1"], [2, 3, 4, 5], None, path, "y")[0] == "classification"
    task, labels, names = data.csv_targets(["b", "a", "b"], [2, 3, 4], None, path, "y")
    assert (task, labels.tolist(), names) == ("classification", [1, 0, 1], ("a", "b"))
    assert data.csv_targets(["0.5", "1.25", "3"], [2, 3, 4], None, path, "y")[0] == "regression"
    many = [str(i) for i in range(data.MAX_AUTO_CLASSES + 1)]
    assert data.csv_targets(many, list(range(len(many))), None, path, "y")[0] == "regression"
    assert data.csv_targets(many, list(range(len(many))), "classification", path, "y")[0] == "classification"
    # text with a few numbers is classification; numbers with a few text cells are read by their numbers
    assert data.csv_targets(["a", "b", "1.5"], [2, 3, 4], None, path, "y")[0] == "classification"
    assert data.csv_targets(["0", "1", "1", "x"], [2, 3, 4, 5], None, path, "y")[0] == "classification"
    with pytest.raises(CliError, match="line 4, target column 'y' holds 'x' but its other cells are mostly numbers"):
        data.csv_targets(["0.5", "1.25", "x", "3"], [2, 3, 4, 5], None, path, "y")
    assert data.csv_targets(["0.5", "1.25", "x"], [2, 3, 4], "classification", path, "y")[0] == "classification"


@pytest.mark.parametrize(
    ("cells", "indices", "names"),
    [
        (["007", "7", "7"], [0, 1, 1], ("007", "7")),  # the same number written two ways: two classes, text order
        (["1234568", "1234567"], [1, 0], ("1234567", "1234568")),  # %g would name both 1.23457e+06
        (["10", "9", "2", "10"], [2, 1, 0, 2], ("2", "9", "10")),  # genuinely numeric: by value, not "10" < "2"
        (["7", "7.0"], [0, 1], ("7", "7.0")),  # 7 and 7.0 are one number written two ways: text
        (["-1.5", "0.25", "-1.5"], [0, 1, 0], ("-1.5", "0.25")),
        (["b", "10", "a"], [2, 0, 1], ("10", "a", "b")),  # text: sorted as text
        # two numbers float64 cannot tell apart (beyond 2**53) are still two numbers: genuinely numeric, by value
        (["20000000000000001", "3", "20000000000000000"], [2, 0, 1], ("3", "20000000000000000", "20000000000000001")),
        (["1", "1e-99999999999999999999"], [1, 0], ("1e-99999999999999999999", "1")),  # beyond Decimal's exponents
    ],
)
def test_class_labels_keep_their_own_text(cells, indices, names):
    got_indices, got_names = data.class_labels(cells)
    assert got_indices.tolist() == indices and got_names == names


def test_large_numeric_labels_keep_their_names_in_the_checkpoint(tmp_path):
    rows = [[i, (i * 3) % 7, 1234567 + i % 2] for i in range(40)]
    csv_file = write_csv(tmp_path / "ids.csv", ["a", "b", "id"], rows)
    assert train("--csv", csv_file, "--target", "id", "--epochs", "2", "--quiet", "--out", tmp_path / "run") == 0
    assert checkpoint.read_config(tmp_path / "run" / "checkpoint.npz")["class_names"] == ["1234567", "1234568"]


def test_a_pandas_index_column_is_refused_and_the_inputs_are_listed(tmp_path, capsys):
    frame = pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12.0) % 5, "label": ["x", "y", "z"] * 4})
    frame.to_csv(tmp_path / "indexed.csv")  # the index becomes a first column with an empty name
    with pytest.raises(SystemExit) as exit_info:
        train("--csv", tmp_path / "indexed.csv", "--target", "label", "--epochs", "2")
    assert exit_info.value.code == 2
    assert "column 1 has an empty name" in capsys.readouterr().err
    pd.read_csv(tmp_path / "indexed.csv").to_csv(tmp_path / "round_trip.csv", index=False)  # "Unnamed: 0"
    with pytest.raises(SystemExit):
        train("--csv", tmp_path / "round_trip.csv", "--target", "label", "--epochs", "2")
    assert "column 1 has 'Unnamed: 0'" in capsys.readouterr().err
    frame.to_csv(tmp_path / "clean.csv", index=False)  # as the message advises
    assert train("--csv", tmp_path / "clean.csv", "--target", "label", "--epochs", "2", "--out", tmp_path / "r") == 0
    assert "inputs (2): a, b" in capsys.readouterr().out
    assert metrics(tmp_path / "r")["input_columns"] == ["a", "b"]
    frame.rename(columns={"b": "b,c"}).to_csv(tmp_path / "comma.csv", index=False)  # a quoted header cell
    assert train("--csv", tmp_path / "comma.csv", "--target", "label", "--epochs", "2", "--out", tmp_path / "c") == 0
    assert "inputs (2): a, 'b,c'\n" in capsys.readouterr().out  # it read as three columns: a, b,c


def _refused(capsys, *args) -> str:
    """The one line on stderr of a refused ``jaxnn-train *args`` (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        train(*args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    return err


def test_trailing_commas_are_named_as_such_not_as_a_pandas_index(tmp_path, capsys):
    """An empty last column (every line ending in a comma) was blamed on pandas' row index."""
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("a,b,label,\n1,2,x,\n3,4,y,\n5,6,x,\n7,8,y,\n")
    err = _refused(capsys, "--csv", trailing, "--target", "label", "--epochs", "2")
    assert (
        f"--csv {trailing} line 1 (the header) ends with a comma, so its last column has no name; remove the trailing "
        "comma from the end of every line (or name that column)"
    ) in err
    assert "pandas" not in err
    rows_only = tmp_path / "rows_only.csv"  # only the data rows end with a comma
    rows_only.write_text("a,b,label\n1,2,x\n3,4,y,\n5,6,x\n")
    err = _refused(capsys, "--csv", rows_only, "--target", "label", "--epochs", "2")
    assert "rows_only.csv line 3 has 4 cells but the header has 3; it ends with a comma: remove the trailing" in err
    middle = tmp_path / "middle.csv"  # an empty name inside the header: not pandas' index (which comes first)
    middle.write_text("a,,label\n1,2,x\n3,4,y\n")
    err = _refused(capsys, "--csv", middle, "--target", "label", "--epochs", "2")
    assert "middle.csv line 1 (the header) gives column 2 no name; name it, or drop that column" in err


def test_a_quote_never_closed_is_refused_not_read_as_the_rest_of_the_file(tmp_path, capsys):
    """An unclosed quote made the rest of the file one target cell: 4 of 12 rows trained, exit status 0."""
    rows = "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(12))
    broken = tmp_path / "broken.csv"
    broken.write_text('a,b,label\n1,2,x\n3,4,y\n5,6,"x\n' + rows)
    err = _refused(capsys, "--csv", broken, "--target", "label", "--epochs", "2")
    assert f'--csv {broken} line 4 opens a quoted cell (") that is never closed' in err
    stray = tmp_path / "stray.csv"  # text after a closing quote: not read as 'xz' silently
    stray.write_text('a,b,label\n1,2,x\n3,4,"x"z\n' + rows)
    assert "stray.csv line 3 is not valid CSV" in _refused(capsys, "--csv", stray, "--target", "label")


def test_line_numbers_count_lines_not_records_after_a_quoted_line_break(tmp_path, capsys):
    """A label holding a line break shifted every later line number in messages by one."""
    bad = tmp_path / "multiline.csv"
    bad.write_text('a,b,label\n1,2,"two\nlines"\n3,4,x\n5,6,"two\nlines"\n7,8,x\n9,oops,x\n')
    err = _refused(capsys, "--csv", bad, "--target", "label", "--epochs", "2")
    assert f"{bad} line 8, column 'b' holds 'oops'" in err


def test_a_file_that_is_not_utf8_is_refused_naming_its_line_and_what_to_do(tmp_path, capsys):
    """A Latin-1 byte was reported as 'can't decode byte 0xe9 in position 20' (a byte offset within a read chunk,
    past a byte-order mark); the message names the file line, as other CSV messages do, and says how to fix it."""
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b'\xef\xbb\xbfa,b,label\r\n1,2,x\r\n3,4,"two\r\nlines"\r\n5,6,caf\xe9\r\n')
    err = _refused(capsys, "--csv", latin1, "--target", "label", "--epochs", "2")
    assert f"--csv {latin1} line 5 is not UTF-8 text (byte 0xe9); save the file as UTF-8" in err
    assert "position" not in err and "iconv -f windows-1252 -t utf-8" in err


def test_a_file_name_that_is_not_utf8_is_shown_as_in_the_summary(tmp_path, capsys):
    """The refusal wrote a name's byte 0xff as Python's surrogate, \\udcff, where the summary and the plots write
    \\xff (what the file is called, for the iconv line it suggests)."""
    latin1 = Path(os.fsdecode(bytes(tmp_path) + b"/lat\xff.csv"))
    latin1.write_bytes(b"a,b,label\n1,2,caf\xe9\n")
    err = _refused(capsys, "--csv", latin1, "--target", "label", "--epochs", "2")
    assert "lat\\xff.csv line 2 is not UTF-8 text" in err and "iconv -f windows-1252 -t utf-8 " in err
    assert "udcff" not in err


def test_a_control_character_in_a_label_is_refused_not_taken_as_a_class(tmp_path, capsys):
    """A NUL in an input cell was refused (not a number), but in a label it made a class of its own."""
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(8)) + "9,y\x00es\n")
    err = _refused(capsys, "--csv", damaged, "--target", "label", "--epochs", "2")
    assert f"{damaged} line 10, target column 'label' holds 'y\\x00es', with a control character" in err


def test_a_constant_whole_number_target_hints_at_regression(tmp_path, capsys):
    """Every label 5: refused as one class, without saying that --task regression fits it."""
    constant = write_csv(tmp_path / "constant.csv", ["a", "y"], [[i, 5] for i in range(8)])
    err = _refused(capsys, "--csv", constant, "--target", "y", "--epochs", "2")
    assert "has only one class ('5'); classification needs two; to fit the value itself, use --task regression" in err
    assert train("--csv", constant, "--target", "y", "--task", "regression", "--epochs", "2", "--quiet") == 0
    capsys.readouterr()
    err = _refused(capsys, "--csv", constant, "--target", "y", "--task", "classification", "--epochs", "2")
    assert err.rstrip().endswith("classification needs two (see jaxnn-train --help)")


def test_target_is_matched_without_surrounding_spaces_as_the_header_is(tmp_path, capsys):
    """Header ' label ' matched --target label, but --target ' label' was 'not in' a file listing 'label'."""
    rows = [[i, "xy"[i % 2]] for i in range(8)]
    for header, target in [(["a", " label "], "label"), (["a", "label"], " label"), (["a", "label"], "label ")]:
        csv_file = write_csv(tmp_path / "spaced.csv", header, rows)
        assert train("--csv", csv_file, "--target", target, "--epochs", "2", "--quiet") == 0, (header, target)
        assert "inputs (1): a" in capsys.readouterr().out
    assert train("--csv", csv_file, "--target", " label", "--epochs", "2", "--quiet", "--out", tmp_path / "run") == 0
    assert checkpoint.read_config(tmp_path / "run" / "checkpoint.npz")["target"] == "label"
    assert train("--resume", tmp_path / "run", "--target", "label", "--epochs", "3", "--quiet") == 0


def test_a_one_row_test_part_is_one_row_in_the_warning(capsys):
    """--test-size 0.001 on iris warned that 'its test part has 1 rows for 3 classes'."""
    assert train("--test-size", "0.001", "--epochs", "2", "--quiet") == 0
    assert "its test part has 1 row for 3 classes; splitting by shuffling only" in capsys.readouterr().err


def test_excel_separator_hint_is_skipped_as_excel_skips_it(tmp_path, capsys):
    """A first line ``sep=,`` (Excel's hint) was read as the header and blamed on pandas' row index."""
    body = "a,b,label\n" + "".join(f"{(i * 5) % 12},{i % 3},{'xy'[i % 2]}\n" for i in range(12))
    (tmp_path / "hinted.csv").write_text("sep=,\n" + body)
    (tmp_path / "plain.csv").write_text(body)
    for name in ("hinted", "plain"):
        csv_file, out = tmp_path / f"{name}.csv", tmp_path / name
        assert train("--csv", csv_file, "--target", "label", "--epochs", "2", "--quiet", "--out", out) == 0
    assert metrics(tmp_path / "hinted")["input_columns"] == ["a", "b"]
    for name in arrays(tmp_path / "plain"):
        np.testing.assert_array_equal(arrays(tmp_path / "hinted")[name], arrays(tmp_path / "plain")[name], name)
    ragged = tmp_path / "ragged.csv"  # line numbers still count the hint line
    ragged.write_text("sep=,\na,b,label\n1,2,x\n3,y\n")
    assert "ragged.csv line 4 has 2 cells" in _refused(capsys, "--csv", ragged, "--target", "label", "--epochs", "2")
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("sep=;\na;b;label\n1;2;x\n3;4;y\n")
    err = _refused(capsys, "--csv", semicolons, "--target", "label", "--epochs", "2")
    assert (
        f"--csv {semicolons} line 1, 'sep=;', says its cells are separated by ';', but jaxnn-train reads "
        "comma-separated files; convert it, e.g. pandas.read_csv(path, sep=';', skiprows=1)"
    ) in err
    european = tmp_path / "european.csv"  # decimal commas: sep=';' alone would leave '1,5' as text
    european.write_text("sep=;\na;b;label\n1,5;2;x\n3;4,25;y\n")
    err = _refused(capsys, "--csv", european, "--target", "label", "--epochs", "2")
    assert "pandas.read_csv(path, sep=';', decimal=',', skiprows=1)" in err


def test_csv_from_a_pipe_is_read_and_named_as_given(tmp_path, capsys):
    """``--csv /dev/stdin`` was resolved to /proc/self/fd/0's target: a pipe could not be read at all (``cannot read
    --csv /proc/123/fd/pipe:[456]``) and a redirected file was named by its own path."""
    read, write = os.pipe()
    with os.fdopen(write, "w") as writer:
        writer.write("a,b,label,\n1,2,x,\n")  # small enough for the pipe's buffer
    fd_path = f"/dev/fd/{read}"
    try:
        err = _refused(capsys, "--csv", fd_path, "--target", "label", "--epochs", "2")
    finally:
        os.close(read)
    assert f"--csv {fd_path} line 1 (the header) ends with a comma" in err and "/proc/" not in err
    read, write = os.pipe()
    with os.fdopen(write, "w") as writer:
        writer.write("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(12)))
    try:
        assert train("--csv", f"/dev/fd/{read}", "--target", "label", "--epochs", "2", "--quiet") == 0
    finally:
        os.close(read)


def test_a_relative_csv_path_is_named_as_typed(tmp_path, monkeypatch, capsys):
    """A relative --csv was named by its absolute path in messages (the path is made absolute for the checkpoint)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trailing.csv").write_text("a,b,label,\n1,2,x,\n")
    err = _refused(capsys, "--csv", "./data/trailing.csv", "--target", "label", "--epochs", "2")
    assert "--csv ./data/trailing.csv line 1 (the header) ends with a comma" in err and str(tmp_path) not in err
    err = _refused(capsys, "--csv", "data/missing.csv", "--target", "label", "--epochs", "2")
    assert "cannot read --csv data/missing.csv: No such file or directory" in err and str(tmp_path) not in err
    (tmp_path / "run").mkdir()
    write_csv(tmp_path / "run" / "history.csv", ["a", "label"], [[1, "x"], [2, "y"]])
    err = _refused(capsys, "--csv", "run/history.csv", "--target", "label", "--out", "run", "--epochs", "2")
    assert "the CSV file run/history.csv is the history.csv that jaxnn-train writes in --out run" in err


def test_a_missing_target_column_lists_a_few_columns_then_how_many_more(tmp_path, capsys):
    """A --target not among the columns listed every column: a file with hundreds made a huge line."""
    wide = write_csv(tmp_path / "wide.csv", [f"x{i}" for i in range(300)], [range(300)])
    err = _refused(capsys, "--csv", wide, "--target", "label", "--epochs", "2")
    assert (
        f"--target column 'label' is not in {wide}; its 300 columns are 'x0', 'x1', 'x2', 'x3', 'x4' … and 295 more"
    ) in err
    assert len(err) < 300
    narrow = write_csv(tmp_path / "narrow.csv", ["a", "b"], [[1, 2]])
    err = _refused(capsys, "--csv", narrow, "--target", "label", "--epochs", "2")
    assert f"--target column 'label' is not in {narrow}; its 2 columns are 'a', 'b' (see" in err
    # a name spelt nearly alike, and a file written without a header line (to_csv(header=False)), are said
    err = _refused(capsys, "--csv", write_csv(tmp_path / "iris.csv", ["petal", "species"], [[1, "x"]]), "--target",
                   "Species", "--epochs", "2")  # fmt: skip
    assert "its 2 columns are 'petal', 'species'; did you mean 'species'?" in err
    headless = write_csv(tmp_path / "headless.csv", ["0.1257", "-0.3604", "no"], [[0.5, 0.25, "yes"]])
    err = _refused(capsys, "--csv", headless, "--target", "label", "--epochs", "2")
    assert "(line 1 holds numbers: the file may have no header line; write one naming the columns)" in err


def test_a_quote_never_closed_in_a_long_file_is_named_at_its_line_not_as_a_cell_too_long(tmp_path, capsys):
    """Past Python csv's 131,072-character cell limit the message named a line thousands below the quote and
    advised writing quotes as two quotes."""
    rows = "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(20_000))
    broken = tmp_path / "long.csv"
    broken.write_text('a,b,label\n1,2,x\n3,4,y\n5,6,"x\n' + rows)
    err = _refused(capsys, "--csv", broken, "--target", "label", "--epochs", "2")
    assert f"--csv {broken} line 4 starts a cell of more than 131,072 characters: most likely a quote" in err


@pytest.mark.parametrize(
    ("magic", "said"),
    [
        (b"\x1f\x8b\x08\x00", "is gzip-compressed: decompress it first"),
        (b"PK\x03\x04\x14\x00", "is a zip archive (an Excel .xlsx workbook is one)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "is an old Excel .xls workbook"),
    ],
    ids=["gzip", "zip", "xls"],
)
def test_a_compressed_file_or_a_workbook_is_named_as_such(tmp_path, capsys, magic, said):
    """They were told "line 1 is not UTF-8 text ... iconv -f windows-1252", which only makes junk of them."""
    packed = tmp_path / "data.bin"
    packed.write_bytes(magic + bytes(range(256)))
    err = _refused(capsys, "--csv", packed, "--target", "label", "--epochs", "2")
    assert f"--csv {packed} {said}" in err and "iconv" not in err


def test_a_numpy_savetxt_header_is_told_to_lose_its_hash_not_the_line(tmp_path, capsys):
    """numpy.savetxt(header=...) writes '# label,a,b': removing the line, as advised, lost the column names."""
    data = tmp_path / "saved.csv"
    np.savetxt(data, np.array([[0, 1.0, 2.0], [1, 3.0, 4.0]]), delimiter=",", header="label,a,b")
    err = _refused(capsys, "--csv", data, "--target", "label", "--epochs", "2")
    assert "(line 1 starts with '#', as numpy.savetxt writes a header: remove the '#', not the line)" in err


def test_a_class_named_like_infinity_is_told_why_it_is_refused(tmp_path, capsys):
    data = write_csv(tmp_path / "inf.csv", ["a", "label"], [[i, ["Sup", "Inf"][i % 2]] for i in range(8)])
    err = _refused(capsys, "--csv", data, "--target", "label", "--epochs", "2")
    said = "holds 'Inf', read as the number inf (a class cannot be named so either); fill in or drop the row"
    assert said in err
    missing = write_csv(tmp_path / "nan.csv", ["a", "label"], [[i, ["1.5", "NaN"][i % 2]] for i in range(8)])
    assert (
        _refused(capsys, "--csv", missing, "--target", "label")
        .rstrip()
        .endswith("holds 'NaN'; fill in or drop the row (see jaxnn-train --help)")
    )


def test_a_csv_whose_text_starts_like_a_binary_format_is_read_as_csv(tmp_path):
    """Only magic bytes that no text holds name a binary format: a header 'PAR1' (Parquet's magic, but text) and
    'PK' train."""
    for first in ("PAR1", "PK"):
        data = write_csv(tmp_path / f"{first}.csv", [first, "label"], [[i, "xy"[i % 2]] for i in range(12)])
        assert train("--csv", data, "--target", "label", "--epochs", "2", "--quiet", "--out", tmp_path / first) == 0


def test_a_comment_line_read_as_the_header_is_named(tmp_path, capsys):
    """A line '# exported by …' above the header was read as the header: the message listed it as the only column."""
    data = tmp_path / "commented.csv"
    data.write_text("# exported by a tool\na,label\n1,x\n2,y\n")
    err = _refused(capsys, "--csv", data, "--target", "label", "--epochs", "2")
    assert "(line 1 starts with '#': remove comment lines above the header)" in err


def test_warnings_list_a_few_classes_then_how_many_more():
    """A class list in a warning was every class: a target with 300 classes made a line of thousands of characters."""
    y = np.arange(300)
    names = tuple(f"c{i:03d}" for i in range(300))
    _, _, warnings = data.split_rows(y, names, True, 0.25, 0, "many.csv")
    assert warnings[0].startswith(
        "cannot stratify the split of many.csv: classes 'c000', 'c001', 'c002', 'c003', 'c004' … and 295 more have "
        "a single row"
    )
    missing = r"classes ('c\d{3}', ){4}'c\d{3}' … and 70 more of many.csv have no training rows: .*"
    assert re.fullmatch(missing, warnings[1])
    assert max(map(len, warnings)) < 200
    _, _, warnings = data.split_rows(np.arange(5).repeat(2), names[:5], True, 0.5, 0, "five.csv")
    assert warnings == ()
    _, _, warnings = data.split_rows(np.arange(5), names[:5], True, 0.5, 0, "five.csv")
    assert "classes 'c000', 'c001', 'c002', 'c003', 'c004' have a single row" in warnings[0]  # all five, no "more"


# --- the split ------------------------------------------------------------------------------------


def test_classes_are_split_as_scikit_learn_stratifies_them():
    y = np.repeat([0, 1, 2], [20, 6, 4])
    train_rows, test_rows, warnings = data.split_rows(y, ("a", "b", "c"), True, 0.25, 7, "small.csv")
    expected_train, expected_test = train_test_split(np.arange(len(y)), test_size=0.25, random_state=7, stratify=y)
    np.testing.assert_array_equal(train_rows, expected_train)
    np.testing.assert_array_equal(test_rows, expected_test)
    assert warnings == () and set(y[train_rows]) == set(y[test_rows]) == {0, 1, 2}


def test_a_split_that_cannot_be_stratified_warns(tmp_path, capsys):
    y = np.array([0] * 10 + [1] * 10 + [2])  # class "c" has a single row
    _, test_rows, warnings = data.split_rows(y, ("a", "b", "c"), True, 0.25, 0, "small.csv")
    assert "cannot stratify the split of small.csv: class 'c' has a single row" in warnings[0]
    if 20 in test_rows:
        assert "class 'c' of small.csv has no training rows" in warnings[1]
    rows = [[i, i % 3, "abc"[min(i // 10, 2)]] for i in range(21)]
    csv_file = write_csv(tmp_path / "small.csv", ["x1", "x2", "label"], rows)
    assert train("--csv", csv_file, "--target", "label", "--epochs", "2", "--quiet", "--seed", "0") == 0
    assert "jaxnn-train: warning: cannot stratify the split of small.csv" in capsys.readouterr().err


def test_a_regression_test_part_of_one_row_warns_that_its_r2_means_nothing(tmp_path, capsys):
    """R² is not defined for one row (scikit-learn's r2_score gives NaN with a warning); the run printed
    "test R^2 0.0000" without a word."""
    _, test_rows, warnings = data.split_rows(np.arange(4.0), (), False, 0.25, 0, "four.csv")
    assert len(test_rows) == 1
    assert warnings == ("the test part of four.csv has a single row, whose R^2 is not defined (it is reported as 0): "
                        "use a larger --test-size for a score that means something",)  # fmt: skip
    assert data.split_rows(np.arange(8.0), (), False, 0.25, 0, "eight.csv")[2] == ()
    csv_file = write_csv(tmp_path / "four.csv", ["x", "y"], [[i, 2.5 * i + 0.25] for i in range(4)])
    assert train("--csv", csv_file, "--target", "y", "--epochs", "2", "--quiet") == 0
    assert "jaxnn-train: warning: the test part of four.csv has a single row" in capsys.readouterr().err


def test_an_unstratified_split_that_leaves_a_class_out_of_training_warns():
    y = np.array([0] * 12 + [1] * 2)
    for seed in range(200):  # find a seed whose shuffle puts both rows of class 1 in the test part
        train_rows, _, warnings = data.split_rows(y, ("a", "b"), False, 0.25, seed, "tiny.csv")
        if 1 not in y[train_rows]:
            break
    assert warnings == ("class 'b' of tiny.csv has no training rows: the network cannot learn it "
                        "(add rows, or use another --seed or --test-size)",)  # fmt: skip
    train_rows, _, warnings = data.split_rows(y, ("a", "b"), True, 0.25, seed, "tiny.csv")
    assert warnings == () and 1 in y[train_rows]  # stratified, the same seed keeps class b in training


# --- a CSV file that moved ------------------------------------------------------------------------------


def test_a_resumed_run_refuses_renamed_classes_or_columns(tmp_path, capsys):
    """The fingerprint covers the numbers (class indices, not names): a class or column renamed in the CSV resumed
    as "the same data", and the checkpoint took the new names (docs/cli.md: a changed file is refused)."""
    rows = [[i, (i * 7) % 11, "xy"[i % 2]] for i in range(40)]
    original = write_csv(tmp_path / "data.csv", ["a", "b", "label"], rows)
    out = tmp_path / "run"
    assert train("--csv", original, "--target", "label", "--epochs", "4", "--quiet", "--out", out) == 0
    renamed_class = write_csv(
        tmp_path / "c.csv", ["a", "b", "label"], [[*r[:2], {"x": "w", "y": "y"}[r[2]]] for r in rows]
    )
    renamed_column = write_csv(tmp_path / "d.csv", ["a", "zzz", "label"], rows)
    for csv, renamed in ((renamed_class, "classes are not named as in {}: 'w' (was 'x');"),
                         (renamed_column, "input columns are not named as in {}: 'zzz' (was 'b');")):  # fmt: skip
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", out, "--csv", csv, "--epochs", "6", "--quiet")
        assert exit_info.value.code == 2
        assert f"the data's {renamed.format(out / 'checkpoint.npz')} resume with the names" in capsys.readouterr().err
    assert checkpoint.read_config(out / "checkpoint.npz")["class_names"] == ["x", "y"]


def test_renamed_names_on_resume_are_named_a_few_then_how_many_more():
    """The names check showed both lists cut at eight, without saying so: the renamed ones were lost among them."""
    columns = tuple(f"x{i}" for i in range(300))
    renamed = tuple(f"y{i}" if i % 30 == 7 else name for i, name in enumerate(columns))  # 10 renamed
    problem = data.Problem("d.csv", "regression", *[np.zeros(1)] * 4, (), renamed, "sha", ())
    stored, path = {"input_columns": list(columns)}, Path("run/checkpoint.npz")
    with pytest.raises(CliError) as error:
        data.check_same_data(problem, stored, "sha", None, path)
    assert str(error.value).startswith(
        f"the data's input columns are not named as in {path}: 'y7' (was 'x7'), 'y37' (was 'x37'), 'y67' (was 'x67'), "
        "'y97' (was 'x97'), 'y127' (was 'x127') … and 5 more; resume with the names it was trained on"
    )
    with pytest.raises(CliError) as error:
        data.check_same_data(problem._replace(feature_names=columns[:-1]), stored, "sha", None, path)
    assert str(error.value).startswith(
        "the data's input columns are named 'x0', 'x1', 'x2', 'x3', 'x4' … and 294 more but run/checkpoint.npz was "
        "trained on 'x0', 'x1', 'x2', 'x3', 'x4' … and 295 more; resume"
    )


def test_a_named_pipe_where_the_runs_csv_was_is_refused_not_waited_on(tmp_path, capsys):
    """The CSV path a checkpoint names is read without being asked for: a pipe there (a forged path) blocked the
    resume in open() until a second Ctrl-C."""
    data = write_csv(tmp_path / "data.csv", ["a", "b", "label"], [[i, (i * 7) % 11, "xy"[i % 2]] for i in range(40)])
    out = tmp_path / "run"
    assert train("--csv", data, "--target", "label", "--epochs", "4", "--quiet", "--out", out) == 0
    data.unlink()
    os.mkfifo(data)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", out, "--epochs", "6", "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"names {data} as its CSV file, which is not a regular file; pass the data with --csv PATH" in err


def test_a_run_on_a_moved_csv_resumes_when_its_data_is_the_same(tmp_path, capsys, monkeypatch):
    rows = [[i, (i * 7) % 11, "xy"[i % 2]] for i in range(40)]
    original = write_csv(tmp_path / "data.csv", ["a", "b", "label"], rows)
    out = tmp_path / "run"
    assert train("--csv", original, "--target", "label", "--epochs", "4", "--quiet", "--out", out) == 0
    moved = tmp_path / "elsewhere" / "renamed.csv"
    moved.parent.mkdir()
    shutil.move(original, moved)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", out, "--epochs", "6", "--quiet")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"the CSV file {original} that" in err and "pass its new path with --csv NEWPATH" in err
    swapped = [[*row[:2], "yx"[i % 2]] for i, row in enumerate(rows)]  # the same inputs, other labels
    other = write_csv(tmp_path / "other.csv", ["a", "b", "label"], swapped)
    with pytest.raises(SystemExit):
        train("--resume", out, "--csv", other, "--epochs", "6", "--quiet")
    assert f"--csv {other} holds other data than" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # a relative --csv is named as typed; where the run's data was, absolute
    with pytest.raises(SystemExit):
        train("--resume", out, "--csv", "other.csv", "--epochs", "6", "--quiet")
    err = capsys.readouterr().err
    assert "--csv other.csv holds other data than" in err and f"(it was at {original})" in err
    assert train("--resume", out, "--csv", moved, "--epochs", "6", "--quiet") == 0
    config = checkpoint.read_config(out / "checkpoint.npz")
    assert config["epoch"] == 6 and config["csv"] == str(moved)  # the next resume needs no --csv
    assert train("--resume", out, "--epochs", "7", "--quiet") == 0


def test_a_csv_given_to_resume_a_run_on_a_bundled_dataset_is_refused_naming_that_dataset(tmp_path, capsys):
    """--resume of an iris run with --csv said "--target column None is not in data.csv": --csv may name a moved
    file, but a run on a bundled dataset read no file."""
    csv_file = write_csv(tmp_path / "data.csv", ["a", "b", "label"], [[i, i % 3, "xy"[i % 2]] for i in range(20)])
    out = tmp_path / "run"
    assert train("--epochs", "2", "--quiet", "--out", out) == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    for extra in ([], ["--target", "label"]):
        err = _refused(capsys, "--resume", out, "--csv", csv_file, *extra, "--epochs", "3", "--quiet")
        assert "None" not in err and "the iris dataset" in err and "leave --csv out" in err, err
    assert (out / "checkpoint.npz").read_bytes() == before


@contextlib.contextmanager
def _standard_input(path: Path | str):
    """File descriptor 0 (what ``/dev/stdin`` opens) reads ``path`` for the duration, as ``< path`` would."""
    saved, opened = os.dup(0), os.open(path, os.O_RDONLY)
    os.dup2(opened, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(opened)
        os.close(saved)


def test_a_run_trained_on_standard_input_says_so_when_resumed_without_it(tmp_path, capsys, monkeypatch):
    """Resuming a ``--csv /dev/stdin`` run with nothing piped in said '--csv /dev/stdin needs a header row and at
    least one data row', naming an option the resume was not given; other data on stdin asked 'was the CSV file
    changed?'; a terminal on stdin waited for typed input."""
    rows = [[(i * 3) % 40, (i * 7) % 11, "xy"[i % 2]] for i in range(40)]
    csv_file = write_csv(tmp_path / "data.csv", ["a", "b", "label"], rows)
    trained = tmp_path / "trained"
    assert train("--csv", csv_file, "--target", "label", "--epochs", "2", "--quiet", "--out", trained) == 0
    run = with_config(trained, tmp_path / "run", csv="/dev/stdin")  # as `--csv /dev/stdin < data.csv` stores it
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: fd 0 is read
    advice = (  # it said "(jaxnn-train --resume DIR < data.csv)", DIR literally, whatever --resume was given
        "pipe the same data in (the same jaxnn-train --resume command"
        ", with < data.csv), or pass its file with --csv PATH"
    )
    with _standard_input(os.devnull):
        err = _refused(capsys, "--resume", run, "--epochs", "3")
    read = "the run being resumed read its data from standard input (--csv /dev/stdin)"
    assert f"{read}, but it holds no CSV data now; {advice}" in err
    other = write_csv(
        tmp_path / "other.csv", ["a", "b", "label"], [[*row[:2], "yx"[i % 2]] for i, row in enumerate(rows)]
    )
    with _standard_input(other):
        err = _refused(capsys, "--resume", run, "--epochs", "3")
    assert f"the data on standard input differs from the data {run / 'checkpoint.npz'} was trained on" in err
    assert advice in err
    monkeypatch.setattr(sys, "stdin", type("Terminal", (io.StringIO,), {"isatty": lambda self: True})())
    err = _refused(capsys, "--resume", run, "--epochs", "3")
    assert "(--csv /dev/stdin), but standard input is a terminal; pipe the same data in" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with _standard_input(csv_file):
        assert train("--resume", run, "--epochs", "3", "--quiet") == 0


@pytest.mark.parametrize("lists", [[], ["--lr", "0.1,0.2"]], ids=["single", "population"])
def test_resuming_with_other_data_is_refused_without_that_datas_warnings(tmp_path, capsys, lists):
    """Other data given to a resumed run printed its warnings (here: classes with a single row, read from a
    regression target) before the refusal, which is all that concerns that data."""
    rows = [[i % 5, (i * 7) % 11, "xy"[i % 2]] for i in range(40)]
    trained = tmp_path / "run"
    csv_file = write_csv(tmp_path / "data.csv", ["a", "b", "label"], rows)
    assert train(*lists, "--csv", csv_file, "--target", "label", "--epochs", "2", "--quiet", "--out", trained) == 0
    other = write_csv(tmp_path / "other.csv", ["a", "b", "label"], [[a, b, a * 1.37 + b / 3] for a, b, _ in rows])
    train("--csv", other, "--target", "label", "--task", "classification", "--epochs", "1", "--quiet")
    assert "warning: classes" in capsys.readouterr().err  # what this data says when it is trained on
    err = _refused(capsys, *lists, "--resume", trained, "--csv", other, "--epochs", "3", "--quiet")
    assert "holds other data than" in err and "warning" not in err and len(err.splitlines()) == 1, err


def test_a_device_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    """``--csv /dev/zero`` (typed, or stored by a checkpoint someone sent) read bytes until memory ran out, and
    ended in a MemoryError traceback; so did ``< /dev/zero`` on standard input.  /dev/null stays an empty file."""

    class Bounded(io.FileIO):  # should the check go, a read of 64 MiB of zeros fails this test, not the machine
        def read(self, size=-1):
            return super().read(64 << 20 if size is None or size < 0 else min(size, 64 << 20))

    monkeypatch.setattr(data, "open", lambda path, mode: Bounded(path, mode), raising=False)  # the module's own open
    zero = "/dev/zero"
    err = _refused(capsys, "--csv", zero, "--target", "y", "--epochs", "2")
    assert f"--csv {zero} is a device, not a file of rows; pass a CSV file, or pipe one in" in err
    with _standard_input(zero):
        err = _refused(capsys, "--csv", "/dev/stdin", "--target", "y", "--epochs", "2")
    assert "--csv /dev/stdin is a device, not a file of rows" in err
    err = _refused(capsys, "--csv", os.devnull, "--target", "y", "--epochs", "2")
    assert f"--csv {os.devnull} needs a header row and at least one data row" in err
    rows = [[i % 5, (i * 7) % 11, "xy"[i % 2]] for i in range(20)]
    trained = tmp_path / "trained"
    csv_file = write_csv(tmp_path / "data.csv", ["a", "b", "label"], rows)
    assert train("--csv", csv_file, "--target", "label", "--epochs", "2", "--quiet", "--out", trained) == 0
    err = _refused(capsys, "--resume", with_config(trained, tmp_path / "run", csv=zero), "--epochs", "3")
    assert f"names {zero} as its CSV file, which is not a regular file; pass the data with --csv PATH" in err


def test_a_dash_for_standard_input_is_pointed_to_dev_stdin(tmp_path, capsys, monkeypatch):
    """Many Unix tools read standard input from a file named '-'; jaxnn-train said only that no such file exists."""
    monkeypatch.chdir(tmp_path)
    err = _refused(capsys, "--csv", "-", "--target", "y", "--epochs", "2")
    assert "cannot read --csv -: No such file or directory; to read standard input, pass --csv /dev/stdin" in err
    write_csv(tmp_path / "-", ["a", "y"], [[i, "xy"[i % 2]] for i in range(20)])  # a file named '-' is read as one
    assert train("--csv", "-", "--target", "y", "--epochs", "2", "--quiet", "--out", tmp_path / "run") == 0


def test_a_file_too_large_for_memory_is_one_line(tmp_path, capsys, monkeypatch):
    class TooLarge(io.FileIO):
        def read(self, *args):
            raise MemoryError

    big = write_csv(tmp_path / "big.csv", ["a", "y"], [[1, 2], [3, 4]])
    monkeypatch.setattr(data, "open", lambda path, mode: TooLarge(path, mode), raising=False)  # the module's own open
    err = _refused(capsys, "--csv", big, "--target", "y", "--epochs", "2")
    assert f"--csv {big} is too large to read into this machine's memory; train on a sample of its rows" in err


def test_a_text_input_column_is_named_with_advice_to_encode_or_drop_it(tmp_path, capsys):
    """An input column of text (a category, beside the --target column) was refused like a stray cell: 'holds
    'blue', which is not a finite number; ... (fill in or drop such cells)', advice for one bad cell, not a column
    of them.  It names the column and line and says to one-hot encode or drop the column; a stray text cell in a
    column of numbers, and a column mostly of missing-value markers, keep the advice to fill in or drop cells."""
    rows = [[i, ["red", "blue", "green"][i % 3], "xy"[i % 2]] for i in range(12)]
    colours = write_csv(tmp_path / "colours.csv", ["a", "color", "label"], rows)
    err = _refused(capsys, "--csv", colours, "--target", "label", "--epochs", "2", "--quiet")
    assert (
        "colours.csv line 2, column 'color' holds 'red': input column 'color' holds text (12 of its 12 filled cells), "
        "but input columns must be numbers; one-hot encode it (a 0/1 column per value, e.g. pandas.get_dummies) or "
        "drop that column" in err
    )
    stray = write_csv(
        tmp_path / "stray.csv", ["a", "b", "label"], [[i, "x" if i == 3 else i, "xy"[i % 2]] for i in range(8)]
    )
    err = _refused(capsys, "--csv", stray, "--target", "label", "--epochs", "2", "--quiet")
    assert "stray.csv line 5, column 'b' holds 'x', which is not a finite number; input columns must be numbers" in err
    assert "(fill in or drop such cells)" in err and "one-hot" not in err
    markers = write_csv(
        tmp_path / "markers.csv", ["a", "b", "label"], [[i, "?" if i % 4 else i, "xy"[i % 2]] for i in range(8)]
    )
    err = _refused(capsys, "--csv", markers, "--target", "label", "--epochs", "2", "--quiet")
    assert "markers.csv line 3, column 'b' holds '?', which is not a finite number" in err and "one-hot" not in err


@pytest.mark.parametrize("first", ["", "NA", "?"])
def test_a_text_column_is_named_as_such_whatever_its_first_cell_holds(tmp_path, capsys, first):
    """A text column whose first cell was empty (Titanic's Cabin) was told that the cell is empty, to be filled in;
    then, filled in, that the column holds text.  Whose first cell was a missing-value marker, the marker was quoted
    as the text and counted among the filled cells."""
    rows = [[i, first if i % 4 == 0 else ["red", "blue", "green"][i % 3], "xy"[i % 2]] for i in range(12)]
    colours = write_csv(tmp_path / "colours.csv", ["a", "color", "label"], rows)
    err = _refused(capsys, "--csv", colours, "--target", "label", "--epochs", "2", "--quiet")
    assert (
        "colours.csv line 3, column 'color' holds 'blue': input column 'color' holds text (9 of its 9 filled cells), "
        "but input columns must be numbers; one-hot encode it" in err
    ), err


def test_a_text_column_different_in_every_row_is_told_to_be_dropped_not_one_hot_encoded(tmp_path, capsys):
    """An ID column of text (P0000, P0001, ...) was told to be one-hot encoded: a column per row, nothing to learn.
    A text that differs in every one of 10 or more rows is told to be dropped; a category keeps the one-hot advice."""
    rows = [[f"P{i:04d}", i % 5, "xy"[i % 2]] for i in range(12)]
    ids = write_csv(tmp_path / "ids.csv", ["ID", "a", "label"], rows)
    err = _refused(capsys, "--csv", ids, "--target", "label", "--epochs", "2", "--quiet")
    assert (
        "ids.csv line 2, column 'ID' holds 'P0000': input column 'ID' holds a different text in every row, like an ID "
        "or a name (12 of its 12 filled cells), but input columns must be numbers; drop that column" in err
    )
    assert "one-hot encode it" not in err and len(err.strip().splitlines()) == 1
    assert csv_cells.text_column_advice([f"r{i}" for i in range(9)], "c")[0] == "text"


@pytest.mark.parametrize("cell", ["1_000", "\uff11\uff12", "\u0661\u0662"])
def test_an_input_cell_is_a_number_only_when_written_plainly(tmp_path, capsys, cell):
    """Python's float read 1_000 as 1000 and full-width or Arabic-Indic digits as numbers; pandas reads them as text."""
    path = write_csv(tmp_path / "d.csv", ["a", "b", "label"], [[1, 2, "x"], [cell, 4, "y"], [5, 6, "x"], [7, 8, "y"]])
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert f"d.csv line 3, column 'a' holds {cell!r}" in err
    assert data.csv_targets(["1_0", "2", "1_0", "2"], [2, 3, 4, 5], None, path, "y")[2] == ("1_0", "2")  # as text


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("${:,.2f}", "a number with a currency sign"),
        ("{:,.0f}", "a number with a comma (a thousands separator or a decimal comma)"),
        ("{:.1f}%", "a percentage"),
    ],
)
def test_a_regression_target_written_for_people_is_refused_not_made_one_class_per_value(
    tmp_path, capsys, written, what
):
    """A price column exported as "$1,234.50" trained as classification with one class per row, accuracy 0."""
    rng = np.random.default_rng(0)
    rows = [[a, written.format(1000 + 5000 * a)] for a in rng.uniform(size=30).round(3).tolist()]
    path = write_csv(tmp_path / "prices.csv", ["a", "price"], rows)
    err = _refused(capsys, "--csv", path, "--target", "price", "--epochs", "2")
    assert f"prices.csv line 2, target column 'price' holds {rows[0][1]!r}, {what}: its values read as regr" in err
    assert "(or use --task classification to make each text a class)" in err
    few = write_csv(tmp_path / "few.csv", ["a", "tier"], [[i, f"{10 * (i % 3)}%"] for i in range(30)])
    assert train("--csv", few, "--target", "tier", "--epochs", "2", "--out", tmp_path / "r") == 0  # classes, as text
    assert data.csv_targets(["$1", "$2.5", "x"], [2, 3, 4], None, few, "y")[0] == "classification"  # text among them


@pytest.mark.parametrize(
    ("cells", "said"),
    [
        (["1,234", "567", "2,001", "12"], "holds '1,234', a number with a comma (a thousands separator or a decimal"),
        (["0,5", "1,25", "2,5", "3"], "holds '0,5', a number with a comma (a thousands separator or a decimal comma)"),
        (["12%", "5%", "7%", "9%"], "holds '12%', a percentage; input columns must be plain numbers: write 12% as 12"),
        (["$3.50", "$1", "$2", "$4"], "holds '$3.50', a number with a currency sign; input columns must be plain"),
        (["True", "False", "False", "True"], "holds 'True': input column 'a' holds true/false values (4 of its 4"),
        (["True", "FALSE", "false", "true"], "write them as 1 and 0 (e.g. df['a'].astype(int)) or drop that column"),
        # pandas keeps yes/no as text, where astype(int) raised ValueError
        (["yes", "NO", "no", "yes"], "as 1 and 0 (e.g. df['a'].str.lower().map({'yes': 1, 'no': 0})) or drop that"),
        (["2024-01-31", "2024-02-01", "2024-02-02", "2024-02-03"], "input column 'a' holds dates (4 of its 4"),
        (["1/31/2024 8:00 PM", "2/1/2024 9:15 AM", "2/2/2024 10:00 AM", "2/3/2024 11:00 AM"], "column 'a' holds dates"),
    ],
)
def test_input_cells_that_are_not_plain_numbers_get_advice_that_fits_them(tmp_path, capsys, cells, said):
    """Numbers written for people, true/false values and dates were all told to be one-hot encoded (or called stray
    values to fill in)."""
    path = write_csv(tmp_path / "d.csv", ["a", "label"], [[cell, "xy"[i % 2]] for i, cell in enumerate(cells)])
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert (f"d.csv line 2, column 'a' {said}" if said.startswith("holds") else said) in err
    assert "one-hot" not in err and "fill in" not in err


def test_classes_written_differently_but_alike_are_kept_apart_with_a_warning(tmp_path, capsys):
    """'Yes', 'YES' and 'yes', or 1 and 1.0, were silently separate classes (as documented, but unsaid)."""
    labels = ["Yes", "no", "YES", "no", "yes ", "No"] * 5
    path = write_csv(tmp_path / "case.csv", ["a", "label"], [[i, label] for i, label in enumerate(labels)])
    assert train("--csv", path, "--target", "label", "--epochs", "2", "--quiet", "--out", tmp_path / "r") == 0
    assert (
        "warning: classes 'No'/'no', 'YES'/'Yes'/'yes' of case.csv differ only in letter case; they are kept apart "
        "(5 classes in all): write each class one way if they are one"
    ) in capsys.readouterr().err
    path = write_csv(tmp_path / "one.csv", ["a", "label"], [[i, ["1", "0", "1.0", "0"][i % 4]] for i in range(20)])
    assert train("--csv", path, "--target", "label", "--epochs", "2", "--quiet", "--out", tmp_path / "s") == 0
    assert "classes '1'/'1.0' of one.csv are the same number written differently; they are kept apart (3 classes" in (
        capsys.readouterr().err
    )
    assert csv_cells.look_alike_classes(("0", "1", "10", "a", "b")) == []


def test_a_header_repeated_among_the_rows_is_named_as_such(tmp_path, capsys):
    """Two exports joined with cat: the second header was "column 'a' holds 'a', which is not a finite number"."""
    path = tmp_path / "joined.csv"
    path.write_text("sep=,\na,b,label\n1,2,x\n3,4,y\n a ,b,label\n5,6,x\n7,8,y\n")
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert "joined.csv line 5 repeats the header line 2 (files joined together?); remove that line" in err
    bom = tmp_path / "joined-bom.csv"  # two Excel "CSV UTF-8" exports: the second header starts with its own mark
    bom.write_bytes(b"\xef\xbb\xbfa,b,label\n1,2,x\n3,4,y\n\xef\xbb\xbfa,b,label\n5,6,x\n7,8,y\n")
    err = _refused(capsys, "--csv", bom, "--target", "label", "--epochs", "2")
    assert "joined-bom.csv line 4 repeats the header line 1 (files joined together?); remove that line" in err


def test_a_utf16_file_is_named_as_such_with_how_to_convert_it(tmp_path, capsys):
    """Excel's Unicode Text (UTF-16, tab-separated) was told to convert from windows-1252, which mangles it."""
    path = tmp_path / "unicode.txt"
    path.write_text("a\tb\tlabel\r\n1\t2\tx\r\n3\t4\ty\r\n", encoding="utf-16")
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert f"--csv {path} is UTF-16 text (as Excel saves Unicode Text), but jaxnn-train reads UTF-8 CSV files" in err
    advice = "pandas.read_csv(path, sep=None, engine='python', encoding='utf-16').to_csv(new_path, index=False)"
    assert advice in err and "windows-1252" not in err
    converted = tmp_path / "converted.csv"
    pd.read_csv(path, sep=None, engine="python", encoding="utf-16").to_csv(converted, index=False)  # as advised
    assert data.read_csv(converted, "label").targets == ["x", "y"]


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("a;b;label\n0,5;1,25;x\n1,5;2;y\n", {"sep": ";", "decimal": ","}),
        ("a;b;label\n0.5;1;x\n1.5;2;y\n", {"sep": ";"}),
        ("a\tb\tlabel\n0.5\t1\tx\n1.5\t2\ty\n", {"sep": "\t"}),
        ("a|b|label\n0.5|1|x\n1.5|2|y\n", {"sep": "|"}),
    ],
)
def test_another_separator_is_named_with_a_conversion_that_reads_its_numbers(tmp_path, capsys, text, options):
    """A European export (semicolons, decimal commas) was advised sep=None, which leaves '0,5' as text; a
    pipe-separated file was told that its target column is missing."""
    path = tmp_path / "other.csv"
    path.write_text(text)
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert f"--csv {path} has one column, {text.splitlines()[0]!r}: its cells seem separated by" in err
    given = ", ".join(f"{key}={value!r}" for key, value in options.items())
    assert f"pandas.read_csv(path, {given}).to_csv(new_path, index=False)" in err
    pd.read_csv(path, **options).to_csv(tmp_path / "converted.csv", index=False)  # as advised
    table = data.read_csv(tmp_path / "converted.csv", "label")
    assert table.x.tolist() == [[0.5, 1.25 if "1,25" in text else 1.0], [1.5, 2.0]]


def test_an_unquoted_thousands_separator_is_named_where_it_splits_a_row(tmp_path, capsys):
    """``5,720`` unquoted in a comma file reads as two cells; the message said only that the counts differ."""
    path = tmp_path / "prices.csv"
    path.write_text("area,price,label\n3,5,720,x\n4,610,y\n")
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert (
        "prices.csv line 2 has 4 cells but the header has 3; 5,720 may be one number written with a thousands "
        "separator: write numbers plainly (5720), or quote such cells and convert them"
    ) in err
    fewer = tmp_path / "fewer.csv"  # too few cells: no such guess
    fewer.write_text("a,b,label\n1,2,x\n3,y\n")
    err = _refused(capsys, "--csv", fewer, "--target", "label", "--epochs", "2")
    assert "fewer.csv line 3 has 2 cells but the header has 3 (see jaxnn-train --help)" in err


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_named_with_the_codec_that_reads_it(tmp_path, capsys, encoding):
    """Without a BOM, UTF-8 decoding succeeds with a NUL before or after every character: the message named the
    NULs as cells that are not numbers, not the file's encoding."""
    path = tmp_path / "no_bom.csv"
    path.write_bytes("a,b,label\r\n1,2,x\r\n3,4,y\r\n".encode(encoding))
    err = _refused(capsys, "--csv", path, "--target", "label", "--epochs", "2")
    assert f"--csv {path} is UTF-16 text" in err and f"encoding={encoding!r}" in err
    converted = tmp_path / "converted.csv"
    pd.read_csv(path, sep=None, engine="python", encoding=encoding).to_csv(converted, index=False)  # as advised
    assert data.read_csv(converted, "label").targets == ["x", "y"]


def test_an_id_column_is_warned_about_as_one(tmp_path, capsys):
    """Kaggle's Iris.csv numbers its rows (sorted by species) in an Id column, which trained as a feature, unsaid."""
    rows = [[i + 1, 5.0 + (i % 7) / 10, "setosa" if i < 15 else "virginica"] for i in range(30)]
    path = write_csv(tmp_path / "Iris.csv", ["Id", "SepalLengthCm", "Species"], rows)
    assert train("--csv", path, "--target", "Species", "--epochs", "2", "--quiet", "--out", tmp_path / "r") == 0
    err = capsys.readouterr().err
    assert (
        "warning: input column 'Id' of Iris.csv counts the rows (1 to 30), like an ID or a row number: the network "
        "can learn the file's order from it rather than the data (rows are often sorted by class); drop that column "
        "unless it measures something"
    ) in err
    assert "SepalLengthCm" not in err
    ids = np.random.default_rng(0).permutation(1000)[:30] + 5000  # shuffled IDs: named by the column's name alone
    assert "holds a different whole number in every row" in csv_cells.id_column_warning(
        ids.astype(float), "cust_id", "f"
    )
    assert csv_cells.id_column_warning(ids.astype(float), "income", "f") is None
    assert csv_cells.id_column_warning(np.arange(9.0), "Id", "f") is None  # too few rows to say
    assert csv_cells.id_column_warning(np.arange(30.0) / 2, "index", "f") is None  # not whole numbers


def test_numbers_that_float64_cannot_tell_apart_are_not_called_the_same_number(tmp_path, capsys):
    """Labels beyond 2**53 (long IDs) that differ by one were warned about as 'the same number written
    differently': they were compared as floats."""
    labels = [str(2**53 + i % 2) for i in range(20)]
    assert csv_cells.look_alike_classes(tuple(sorted(set(labels)))) == []
    path = write_csv(tmp_path / "ids.csv", ["a", "label"], [[i, label] for i, label in enumerate(labels)])
    assert train("--csv", path, "--target", "label", "--epochs", "2", "--quiet") == 0
    assert "written differently" not in capsys.readouterr().err
    assert csv_cells.look_alike_classes(("7", "7.0", "70e-1", "8")) == [["7", "7.0", "70e-1"]]


def test_read_csv_holds_about_the_file_and_its_numbers_not_a_string_per_cell(tmp_path):
    """A 200,000 x 50 CSV (90 MB) took 1.5 GB to read: every cell's string, then a Python float per cell, were held
    at once.  Read a record at a time into a float64 buffer, the peak is the file's bytes and the numbers."""
    import tracemalloc

    rng = np.random.default_rng(0)
    values = rng.normal(size=(3000, 20)).round(6)
    lines = [",".join([*(f"f{i}" for i in range(20)), "y"])]
    lines += [",".join([*map(str, row), str(i % 2)]) for i, row in enumerate(values)]
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        table = data.read_csv(path, "y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(table.x, values)
    assert table.targets[:3] == ["0", "1", "0"] and table.lines[:2] == [2, 3]
    assert peak < 3 * path.stat().st_size + 2 * values.nbytes, (peak, path.stat().st_size, values.nbytes)


def test_read_csv_names_a_text_cell_and_a_separator_hint_after_reading_a_record_at_a_time(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("a,b,y\n1,2,0\n3,x,1\n4,y,0\n")
    with pytest.raises(CliError, match=r"line 3, column 'b' holds 'x': input column 'b' holds"):
        data.read_csv(path, "y")
    hinted = tmp_path / "hinted.csv"
    hinted.write_text("sep=,\na,y\n1.5,0\n2,1\n")
    assert data.read_csv(hinted, "y").x.tolist() == [[1.5], [2.0]]
