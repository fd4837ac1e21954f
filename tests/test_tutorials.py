"""Every tutorial in tutorials/ runs in quick mode, keeps its own claims and writes non-empty PNGs.

Tutorials are found by globbing ``tutorials/[0-9][0-9]_*.py``, so a new one is tested as soon as it exists.
The contract each must meet: percent format (``# %%`` cells), nothing runs on import,
``main(quick=False, outdir="figures")`` returning ``{"numbers": {...}, "claims": {statement: bool},
"figures": [paths]}``, figures named ``tutorialNN_*.png`` written into ``outdir`` only, every
``spherenet.*`` name the text points at exists, and the tutorial is listed in tutorials/README.md.
"""
import importlib
import importlib.util
import inspect
import numbers
import re
from pathlib import Path

import numpy as np
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
    assert 'if __name__ == "__main__":' in text
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


@pytest.mark.parametrize("path", TUTORIALS, ids=ids)
def test_runs_in_quick_mode(path, tmp_path):
    result = load(path).main(quick=True, outdir=tmp_path)
    assert set(result) >= {"numbers", "claims", "figures"}

    claims = result["claims"]
    assert claims, "a tutorial must state at least one checkable claim"
    assert all(isinstance(ok, (bool, np.bool_)) for ok in claims.values())
    failed = [claim for claim, ok in claims.items() if not ok]
    assert not failed, f"claims that failed: {failed}; numbers: {result['numbers']}"

    for key, value in result["numbers"].items():
        if isinstance(value, numbers.Real):
            assert np.isfinite(value), f"numbers[{key!r}] = {value}"

    figures = [Path(f) for f in result["figures"]]
    assert figures, "a tutorial must draw at least one figure"
    for fig in figures:
        assert fig.parent == tmp_path, f"{fig} was not written into outdir"
        assert fig.name.startswith(f"tutorial{path.name[:2]}_") and fig.suffix == ".png", fig.name
        data = fig.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5_000, f"{fig} is not a non-empty PNG"
    assert sorted(tmp_path.iterdir()) == sorted(figures), "the tutorial wrote files it did not return"
