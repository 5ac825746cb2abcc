"""What an installed jaxnn holds: every folder of the source tree is a package that setuptools ships, and every
file in it that is not Python is package data (``pyproject.toml``), so a wheel works as the checkout does; and the
versions it was tested with are versions it allows."""

import fnmatch
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_folders() -> list[Path]:
    package = ROOT / "jaxnn"
    return [package, *(p for p in sorted(package.rglob("*")) if p.is_dir() and p.name != "__pycache__")]


def test_every_folder_of_jaxnn_is_a_listed_package():
    listed = set(_setuptools_config()["packages"])
    for folder in _source_folders():
        name = ".".join(folder.relative_to(ROOT).parts)
        assert name in listed, f"{name} is not in [tool.setuptools] packages: a wheel would leave it out"


def test_every_data_file_is_package_data():
    package_data = _setuptools_config().get("package-data", {})
    for folder in _source_folders():
        name = ".".join(folder.relative_to(ROOT).parts)
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                patterns = package_data.get(name, [])
                assert any(fnmatch.fnmatch(path.name, p) for p in patterns), f"{path} is not package data of {name}"


def _pins(path: Path) -> dict[str, str]:
    """A constraints file's ``name==version`` lines, by normalised name (comments and blank lines skipped)."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    pins = [line.split("==") for line in lines if line]
    assert all(len(pin) == 2 for pin in pins), f"{path.name}: every line pins one version (name==version)"
    return {canonicalize_name(name): version for name, version in pins}


@pytest.mark.parametrize("constraints", ["constraints.txt", "constraints-next.txt"])
def test_each_tested_set_of_versions_is_one_pyproject_allows(constraints):
    """The pins `make test` passed with (Python 3.11's, and the newest releases' on Python 3.13) are within the
    runtime dependencies' ranges in pyproject.toml, each of which they pin."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins(ROOT / constraints)
    for requirement in map(Requirement, dependencies):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{constraints} pins no version of {requirement.name}"
        assert requirement.specifier.contains(pins[name]), f"{constraints}: {name}=={pins[name]} is not {requirement}"
