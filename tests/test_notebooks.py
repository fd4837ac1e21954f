"""Every tutorial runs in quick mode (``SPHERENET_QUICK=1``) the two ways a reader runs it.

* As a notebook: converted by jupytext and executed cell by cell by nbclient (a python3 kernel) in a temporary
  folder. Every cell runs without an error; what a cell prints and the figure it shows sit under that cell;
  every claim holds (read back from the kernel); the figures are non-empty PNGs in ``figures/``, named as the
  tutorial names them, and nothing else is written.
* As a script: ``SPHERENET_QUICK=1 python tutorials/01_sphere.py`` in a subprocess (one tutorial: the path a
  script takes differs from the notebook's only in how a figure is shown).

The structure checks are in tests/test_tutorials.py.
"""
import os
import pickle
import re
import subprocess
import sys
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
KEEP_CLAIMS = "import pickle\nwith open({path!r}, 'wb') as f:\n    pickle.dump(dict(claims), f)"


def environment() -> dict:
    """What the kernel or script inherits: quick mode, this checkout's spherenet, one BLAS thread (as conftest)."""
    env = dict(os.environ, SPHERENET_QUICK="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env | {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def execute_as_notebook(path: Path, workdir: Path, claims_file: Path):
    """Convert ``path`` to a notebook, append a cell that pickles its ``claims`` to ``claims_file``, run it in
    ``workdir``; return the executed notebook and the claims."""
    notebook = jupytext.read(path)
    notebook.cells.append(nbformat.v4.new_code_cell(KEEP_CLAIMS.format(path=str(claims_file))))
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(workdir)}}).execute()
    with open(claims_file, "rb") as f:
        return notebook, pickle.load(f)


def check_figures(path: Path, workdir: Path) -> set:
    """The figures written under ``workdir`` are non-empty PNGs in ``figures/``, exactly those the tutorial names."""
    named = set(re.findall(rf"tutorial{path.name[:2]}_\w+\.png", path.read_text(encoding="utf-8")))
    written = {f.relative_to(workdir).as_posix() for f in workdir.rglob("*") if f.is_file()}
    assert written == {f"figures/{name}" for name in named}, "the tutorial wrote other files than its figures"
    for name in written:
        data = (workdir / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5_000, f"{name} is not a non-empty PNG"
    return named


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_as_a_notebook_in_quick_mode(path, tmp_path, monkeypatch):
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    workdir = tmp_path / "work"
    workdir.mkdir()
    notebook, claims = execute_as_notebook(path, workdir, tmp_path / "claims.pickle")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 4 and all(cell.execution_count for cell in code), "a code cell did not run"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    for cell in code:                       # each cell shows its own result, under it
        text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
        images = [out for out in cell.outputs if "image/png" in out.get("data", {})]
        if re.search(r"^(?:    )?print\(", cell.source, re.M):
            assert text, f"a cell that prints shows nothing under it:\n{cell.source[:300]}"
        assert len(images) == len(re.findall(r"^show\(", cell.source, re.M)), \
            f"a figure is not shown under the cell that draws it:\n{cell.source[:300]}"
    report = "".join(out.get("text", "") for out in code[-2].outputs)
    assert "== claims ==" in report and "[FAILED]" not in report

    assert claims, "a tutorial must state at least one checkable claim"
    assert all(isinstance(ok, (bool, np.bool_)) for ok in claims.values())
    assert report.count("[ok]") == len(claims)
    check_figures(path, workdir)


def test_a_tutorial_runs_as_a_script_in_quick_mode(tmp_path):
    path = TUTORIALS[0]
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=environment(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "== claims ==" in done.stdout and "[FAILED]" not in done.stdout
    for name in check_figures(path, tmp_path):
        assert f"figure: figures/{name}\n" in done.stdout


@pytest.mark.parametrize("value, quick", [(None, False), ("", False), ("0", False), ("1", True), (" 1 ", True)])
def test_quick_mode_from_the_environment(value, quick):
    assert quick_mode({} if value is None else {"SPHERENET_QUICK": value}) is quick


@pytest.mark.parametrize("value", ["yes", "true", "2", "quick"])
def test_quick_mode_refuses_other_values(value):
    with pytest.raises(ValueError, match=f"SPHERENET_QUICK='{value}': set it to 1"):
        quick_mode({"SPHERENET_QUICK": value})
