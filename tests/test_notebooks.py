"""Every tutorial, converted to a notebook by jupytext and executed cell by cell by nbclient (a python3
kernel) in quick mode (``SPHERENET_QUICK=1``), runs without an error, keeps its own claims and writes
non-empty PNGs into ``figures/`` under the kernel's working folder (a temporary one), and nothing else.

This is the tutorials' run in the test suite: the structure checks are in tests/test_tutorials.py.
"""
import numbers
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from spherenet.verify import quick_mode

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEEP_RESULT = "import pickle\nwith open({path!r}, 'wb') as f:\n    pickle.dump(result, f)"


def execute_as_notebook(path: Path, workdir: Path, result_file: Path):
    """Convert ``path`` to a notebook, append a cell that pickles the tutorial's ``result`` to
    ``result_file``, run it in ``workdir``; return the executed notebook and the result."""
    notebook = jupytext.read(path)
    assert "result = main(quick=quick_mode())" in notebook.cells[-1].source, "main() is not called last"
    notebook.cells.append(nbformat.v4.new_code_cell(KEEP_RESULT.format(path=str(result_file))))
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(workdir)}}).execute()
    with open(result_file, "rb") as f:
        return notebook, pickle.load(f)


@pytest.fixture
def kernel_environment(monkeypatch):
    """What the kernel inherits: quick mode, this checkout's spherenet, one BLAS thread (as in conftest)."""
    monkeypatch.setenv("SPHERENET_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_as_a_notebook_in_quick_mode(path, tmp_path, kernel_environment):
    workdir = tmp_path / "work"
    workdir.mkdir()
    notebook, result = execute_as_notebook(path, workdir, tmp_path / "result.pickle")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 3 and all(cell.execution_count for cell in code), "a code cell did not run"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    printed = "".join(out.get("text", "") for cell in code for out in cell.outputs)
    assert "== claims ==" in printed and "[FAILED]" not in printed

    assert set(result) >= {"numbers", "claims", "figures"}
    claims = result["claims"]
    assert claims, "a tutorial must state at least one checkable claim"
    assert all(isinstance(ok, (bool, np.bool_)) for ok in claims.values())
    failed = [claim for claim, ok in claims.items() if not ok]
    assert not failed, f"claims that failed: {failed}; numbers: {result['numbers']}"

    for key, value in result["numbers"].items():
        if isinstance(value, numbers.Real):
            assert np.isfinite(value), f"numbers[{key!r}] = {value}"

    figures = [workdir / f for f in result["figures"]]       # relative to the kernel's folder: figures/...
    assert figures, "a tutorial must draw at least one figure"
    for fig in figures:
        assert fig.parent == workdir / "figures", f"{fig} was not written into figures/"
        assert fig.name.startswith(f"tutorial{path.name[:2]}_") and fig.suffix == ".png", fig.name
        data = fig.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5_000, f"{fig} is not a non-empty PNG"
    assert sorted(workdir.rglob("*")) == sorted([workdir / "figures"] + figures), \
        "the tutorial wrote files it did not return"


@pytest.mark.parametrize("value, quick", [(None, False), ("", False), ("0", False), ("1", True), (" 1 ", True)])
def test_quick_mode_from_the_environment(value, quick):
    assert quick_mode({} if value is None else {"SPHERENET_QUICK": value}) is quick


@pytest.mark.parametrize("value", ["yes", "true", "2", "quick"])
def test_quick_mode_refuses_other_values(value):
    with pytest.raises(ValueError, match=f"SPHERENET_QUICK='{value}': set it to 1"):
        quick_mode({"SPHERENET_QUICK": value})
