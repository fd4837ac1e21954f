"""Every tutorial in tutorials/ has the shape its readers and the test suite rely on (no tutorial is run here).

Tutorials are found by globbing ``tutorials/[0-9][0-9]_*.py``, so a new one is tested as soon as it exists. The
shape: jupytext percent format (``# %%`` cells); top-level cells that compute and show their own results, not
functions run by a final ``main()``; quick mode from the environment only (``QUICK = quick_mode()``); claims
recorded as ``claims[statement] = bool`` where they are computed and checked by a last cell that prints them all
and asserts them; figures drawn by ``spherenet.plots`` and shown with ``show(...)`` under the cell that made them,
as ``figures/tutorialNN_*.png``; at most 350 lines. Every ``spherenet.*`` name the text points at exists, every
figure README.md, docs/ and tutorials/README.md link to is drawn by its tutorial, and the tutorial is listed in
tutorials/README.md. tests/test_notebooks.py runs them.
"""
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS_DIR = ROOT / "tutorials"
TUTORIALS = sorted(TUTORIALS_DIR.glob("[0-9][0-9]_*.py"))
ids = [path.stem for path in TUTORIALS]
LAST_CELL = "# %%\nprint_claims(claims)\nassert all(claims.values()), [claim for claim, ok in claims.items() if not ok]\n"


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


def figure_names(text: str, number: str) -> set:
    return set(re.findall(rf"tutorial{number}_\w+\.png", text))


def test_tutorials_exist():
    assert [p.name[:2] for p in TUTORIALS][:2] == ["01", "02"], TUTORIALS


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_structure(path):
    text = path.read_text(encoding="utf-8")
    assert "# %% [markdown]" in text and re.search(r"^# %%$", text, re.M), "not in jupytext percent format"
    assert len(text.splitlines()) <= 350, f"{len(text.splitlines())} lines: a tutorial has at most 350"
    tree = ast.parse(text)
    names = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert "main" not in names and "__main__" not in text, "cells run at the top level, not from a main()"
    assert re.search(r"^QUICK = quick_mode\(\)", text, re.M), "quick mode comes from SPHERENET_QUICK only"
    assert re.search(r"^claims = \{\}", text, re.M) and re.search(r"^ *claims\[", text, re.M)
    assert text.endswith(LAST_CELL), "the last cell prints every claim and asserts them"
    assert "matplotlib" not in text, "figures are drawn by spherenet.plots, not in the tutorial"


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_every_figure_is_shown_where_it_is_drawn(path):
    """Each ``figures/tutorialNN_*.png`` is drawn by a ``spherenet.plots`` function inside a ``show(...)`` call."""
    text = path.read_text(encoding="utf-8")
    number = path.name[:2]
    assert figure_names(text, number), "a tutorial draws at least one figure"
    shown = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "show":
            drawing = node.args[0]
            assert isinstance(drawing, ast.Call) and ast.unparse(drawing.func).startswith("plots."), \
                f"show() takes a figure of spherenet.plots: {ast.unparse(node)}"
            shown |= figure_names(ast.unparse(node), number)
    assert shown == figure_names(text, number)


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_figure_functions_are_documented(path):
    """Every ``plots.topic.function`` a tutorial calls exists and has a numpydoc docstring."""
    calls = set(re.findall(r"\bplots\.(\w+\.\w+)\(", path.read_text(encoding="utf-8")))
    for call in sorted(calls):
        doc = inspect.getdoc(resolve(f"spherenet.plots.{call}")) or ""
        assert "Parameters\n----------" in doc and "Returns\n-------" in doc, f"spherenet.plots.{call}"


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_references_resolve(path):
    """Every ``spherenet.x.y`` the tutorial points at (in backticks) is a real function, class or module."""
    names = set(re.findall(r"`(spherenet(?:\.\w+)+)", path.read_text(encoding="utf-8")))
    assert names, "a tutorial must point at the functions that compute its formulas"
    for name in sorted(names):
        resolve(name)


def test_linked_figures_are_drawn():
    """Every ``tutorialNN_*.png`` that README.md, docs/ or tutorials/README.md names is drawn by tutorial NN."""
    texts = [ROOT / "README.md", TUTORIALS_DIR / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    linked = {name for path in texts for name in re.findall(r"tutorial\d\d_\w+\.png", path.read_text("utf-8"))}
    assert linked
    drawn = {name for path in TUTORIALS for name in figure_names(path.read_text("utf-8"), path.name[:2])}
    assert linked <= drawn, sorted(linked - drawn)


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_listed_in_readme(path):
    assert path.name in (TUTORIALS_DIR / "README.md").read_text(encoding="utf-8")


def test_show_names_the_figure_outside_a_notebook(tmp_path, capsys):
    from spherenet.plots import show
    assert show(tmp_path / "a.png") == tmp_path / "a.png"
    assert capsys.readouterr().out == f"figure: {tmp_path / 'a.png'}\n"
