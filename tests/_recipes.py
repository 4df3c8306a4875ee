"""Load a recipe script as a module, so tests can call its ``main``.

The recipes a user runs to train live in ``recipes/``; benchmarks in ``recipes/benchmarks/`` and report
generators in ``recipes/reports/``. A script is named by its file stem wherever it lives.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
#: The folders that hold scripts: the training recipes, then the benchmarks and the report generators.
FOLDERS = (RECIPES, RECIPES / "benchmarks", RECIPES / "reports")


def recipe_path(name: str) -> Path:
    """The script ``<name>.py`` in ``recipes/`` or one of its named subfolders."""
    found = [folder / f"{name}.py" for folder in FOLDERS if (folder / f"{name}.py").is_file()]
    if len(found) != 1:
        raise FileNotFoundError(f"expected one recipe named {name!r} under {RECIPES}, found {len(found)}")
    return found[0]


def all_scripts() -> list[Path]:
    """Every script with a command line: the training recipes and those in the named subfolders."""
    return sorted(path for folder in FOLDERS for path in folder.glob("*.py"))


def load_recipe(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", recipe_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
