"""jaxnn.sklearn.internals: every private scikit-learn name jaxnn uses is listed in ``INTERNALS`` and present in
the installed scikit-learn, and no other jaxnn module names one.

When a scikit-learn release renames or removes one, its test here fails with the version and the name, and
says which of the adapter's public names to mend."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re

import pytest
import sklearn

from jaxnn.sklearn import internals

ROOT = pathlib.Path(internals.__file__).parents[2]
ADAPTER = pathlib.Path(internals.__file__)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _missing(internal: internals.Internal) -> str:
    return (
        f"scikit-learn {sklearn.__version__} has no {internal.owner}.{internal.name} ({internal.kind}); "
        f"jaxnn.sklearn.internals.{internal.used_by} relies on it: mend it there for this version"
    )


@pytest.mark.parametrize("internal", internals.INTERNALS, ids=lambda internal: internal.name)
def test_scikit_learn_still_has_the_private_name(internal):
    if internal.since is not None and _version(sklearn.__version__) < _version(internal.since):
        pytest.skip(f"{internal.name} came with scikit-learn {internal.since}; jaxnn does without it before")
    if internal.kind == "method":
        module_name, _, class_name = internal.owner.rpartition(".")
        owner = getattr(importlib.import_module(module_name), class_name, None)
        assert owner is not None and hasattr(owner, internal.name), _missing(internal)
        return
    try:
        module = importlib.import_module(internal.owner)
    except ImportError:
        pytest.fail(_missing(internal))
    if internal.kind == "import":
        assert hasattr(module, internal.name), _missing(internal)
    else:  # an attribute the module's code sets on instances
        assert internal.kind == "instance", internal
        assert re.search(rf"\.{internal.name}\s*=[^=]", inspect.getsource(module)), _missing(internal)


def _private_sklearn_names(tree: ast.Module) -> set[str]:
    """Private names taken from scikit-learn (imports of private names, or of any name from a private module),
    and private attributes read or set anywhere in ``tree`` (also by name, in ``getattr``/``hasattr``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
            private_module = any(part.startswith("_") for part in node.module.split("."))
            names.update(alias.name for alias in node.names if alias.name.startswith("_") or private_module)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            names.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr"):
            names.update(
                arg.value
                for arg in node.args[1:2]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("_")
            )
    return names


def test_the_table_lists_every_private_name_the_adapter_uses():
    used = _private_sklearn_names(ast.parse(ADAPTER.read_text()))
    listed = {internal.name for internal in internals.INTERNALS}
    assert used == listed, f"used but not listed: {sorted(used - listed)}; listed but not used: {sorted(listed - used)}"
    for internal in internals.INTERNALS:
        assert internal.used_by in internals.__all__, internal


def test_no_other_jaxnn_module_uses_a_private_scikit_learn_name():
    listed = {internal.name for internal in internals.INTERNALS}
    hits = []
    for path in sorted((ROOT / "jaxnn").rglob("*.py")):
        if path == ADAPTER:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                private_module = any(part.startswith("_") for part in node.module.split("."))
                private_names = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private_module or private_names:
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import …")
            elif isinstance(node, ast.Import):
                hits.extend(
                    f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("sklearn") and any(p.startswith("_") for p in alias.name.split("."))
                )
        hits.extend(f"{path.relative_to(ROOT)}: {name}" for name in sorted(_private_sklearn_names(tree) & listed))
    assert hits == [], "private scikit-learn names outside jaxnn.sklearn.internals:\n" + "\n".join(hits)
