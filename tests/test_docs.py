"""Every ``spherenet.*`` name the documentation points at exists, and the three formulas docs/method.md
promises in one function each are there, formula in the docstring, at most two jumps from the page."""
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
NAME = re.compile(r"`(spherenet(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def resolve(dotted: str):
    """The object ``dotted`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_function_exists(page):
    missing = []
    for name in sorted(set(NAME.findall(page.read_text()))):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"{page.name} names what the package does not have: {missing}"


@pytest.mark.parametrize("name, formula", [
    ("spherenet.taylor.step", "t_cr = beta / kappa"),
    ("spherenet.majorant.plain_spectral", "m(t) = α(cos t - 1) - β sin t + Q/2 (P_1(t) - P_2)²"),
    ("spherenet.jets.plain_layer_jet", "Z_k = sum_{j<=k} H_{k-j} (c_j W + s_j mu V)^T"),
])
def test_the_three_formulas_are_one_jump_from_the_method_page(name, formula):
    page = (ROOT / "docs" / "method.md").read_text()
    assert f"`{name}" in page
    assert formula in resolve(name).__doc__
