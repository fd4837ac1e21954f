"""The examples in the package's docstrings run and give what they show (``python -m doctest`` on every
module of ``spherenet``)."""
import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import spherenet

MODULES = sorted(m.name for m in pkgutil.walk_packages(spherenet.__path__, "spherenet.")
                 if not m.name.endswith("__main__"))


def test_the_small_pure_functions_have_examples():
    from spherenet import majorant, sphere, steps, taylor
    for fn in (sphere.curve, taylor.newton_safeguard, taylor.step, steps.backtracking, majorant.golden_section):
        assert ">>>" in (fn.__doc__ or ""), fn.__qualname__


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with np.printoptions(legacy="1.25"):             # NumPy scalars print as plain numbers
        for test in finder.find(module, name, globs={"np": np, **vars(module)}):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
