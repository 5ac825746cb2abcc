"""What an installed jaxnn holds: every folder of the source tree is a package that setuptools ships, and every
file in it that is not Python is package data (``pyproject.toml``), so a wheel works as the checkout does."""

import fnmatch
import tomllib
from pathlib import Path

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
