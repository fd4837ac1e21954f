"""Every tutorial in tutorials/ has the shape the test suite and its readers rely on.

Tutorials are found by globbing ``tutorials/[0-9][0-9]_*.py``, so a new one is tested as soon as it exists.
The contract each must meet: percent format (``# %%`` cells), nothing runs on import,
``main(quick=False, outdir="figures")`` returning ``{"numbers": {...}, "claims": {statement: bool},
"figures": [paths]}`` and called last as ``result = main(quick=quick_mode())`` (``SPHERENET_QUICK=1`` picks
quick mode), every ``spherenet.*`` name the text points at exists, and the tutorial is listed in
tutorials/README.md. tests/test_notebooks.py runs each one as a notebook in quick mode and checks that its
claims hold and that it writes non-empty PNGs named ``tutorialNN_*.png`` into its figure folder only.
"""
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

TUTORIALS_DIR = Path(__file__).resolve().parents[1] / "tutorials"
TUTORIALS = sorted(TUTORIALS_DIR.glob("[0-9][0-9]_*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ids = [path.stem for path in TUTORIALS]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tutorial_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve(dotted: str):
    """The object named ``spherenet.a.b...``: attributes where they exist, else submodules."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for part in parts[1:]:
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif inspect.ismodule(obj):
            obj = importlib.import_module(f"{obj.__name__}.{part}")
        else:
            raise AttributeError(f"{dotted}: {obj!r} has no attribute {part!r}")
    return obj


def test_tutorials_exist():
    assert [p.name[:2] for p in TUTORIALS][:2] == ["01", "02"], TUTORIALS


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_structure(path, tmp_path, monkeypatch, capsys):
    text = path.read_text(encoding="utf-8")
    assert "# %% [markdown]" in text and re.search(r"^# %%$", text, re.M), "not in jupytext percent format"
    assert 'if __name__ == "__main__":\n    result = main(quick=quick_mode())' in text
    monkeypatch.chdir(tmp_path)
    module = load(path)
    assert capsys.readouterr().out == "", "importing the tutorial printed something: it must run nothing"
    assert list(tmp_path.iterdir()) == [], "importing the tutorial wrote files"
    params = inspect.signature(module.main).parameters
    assert params["quick"].default is False and params["outdir"].default == "figures"


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_references_resolve(path):
    """Every ``spherenet.x.y`` the tutorial points at (in backticks) is a real function, class or module."""
    names = set(re.findall(r"`(spherenet(?:\.\w+)+)", path.read_text(encoding="utf-8")))
    assert names, "a tutorial must point at the functions that compute its formulas"
    for name in sorted(names):
        resolve(name)


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_listed_in_readme(path):
    assert path.name in (TUTORIALS_DIR / "README.md").read_text(encoding="utf-8")
