"""The README's Python examples run as written, in order, in one namespace, and give the values their comments
state (``expression  # 0.967``: the value to the digits shown; ``# (100, 2000)``: equal)."""

from __future__ import annotations

import ast
import importlib.util
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
STATED = re.compile(r"^(?P<expression>[^#]*\S)\s+#\s*(?P<value>[-+(\d][\d., ()e+-]*)$")


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _decimals(value: str) -> int:
    return len(value.split(".")[1]) if "." in value else 0


def _checked(block: str) -> str:
    """The block with each line that states its value turned into a check of it."""
    lines = []
    for line in block.splitlines():
        stated = STATED.match(line)
        if stated is None or not _is_expression(stated["expression"]):
            lines.append(line)
        else:
            lines.append(f"_check({stated['expression']}, {stated['value']!r})")
    return "\n".join(lines)


def _is_expression(code: str) -> bool:
    """A whole expression on its line (not an assignment, nor a piece of a statement that spans lines)."""
    try:
        (statement,) = ast.parse(code).body
    except (SyntaxError, ValueError):
        return False
    return isinstance(statement, ast.Expr)


def _check(actual, stated: str) -> None:
    expected = ast.literal_eval(stated)
    if isinstance(expected, tuple):
        assert tuple(actual) == expected, f"README states {stated}, the example gives {actual}"
    else:
        assert round(float(actual), _decimals(stated)) == pytest.approx(expected), (
            f"README states {stated}, the example gives {float(actual)}"
        )


def test_the_examples_state_values_the_checker_reads():
    checked = [line for block in _examples() for line in _checked(block).splitlines() if line.startswith("_check(")]
    assert len(checked) >= 4  # a fit_many history's shape, the score, the cross-validation and search means
    assert _checked("x = f()  # 1.0") == "x = f()  # 1.0"  # an assignment is run, not checked
    assert _checked("clf.score(X, y)  # 0.5") == "_check(clf.score(X, y), '0.5')"
    with pytest.raises(AssertionError, match=r"README states 0\.97"):
        _check(0.96, "0.97")


@pytest.mark.slow
def test_the_readme_examples_run_and_give_what_they_state():
    namespace = {"_check": _check}  # every other name the examples use, they define
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the short examples, the progress bar's
        for block in _examples():
            if "sklearn.callback" in block and not _has_callbacks():
                continue  # scikit-learn before 1.9 has no callbacks (the README says so)
            exec(compile(_checked(block), str(README), "exec"), namespace)


def _has_callbacks() -> bool:
    """scikit-learn's callbacks (1.9 and later) and the ``rich`` package their ProgressBar draws with."""
    return importlib.util.find_spec("sklearn.callback") is not None and importlib.util.find_spec("rich") is not None
