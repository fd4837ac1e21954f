"""Every figure spherenet draws. Each function takes data and a path, writes one PNG, returns the path.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they work in
worker processes and on machines without a display. Every figure is written atomically (rendered in
memory, written to a temporary name, renamed): a kill during a save never leaves a partial PNG.

The tutorials' figures are in :mod:`.sphere` (tutorial 1), :mod:`.gradients` (2), :mod:`.jets` (3),
:mod:`.taylor` (4), :mod:`.majorant` (5), :mod:`.quadrotor` (6), :mod:`.tradeoff` (7) and :mod:`.batches` (8);
:func:`show` puts a written figure under the notebook cell that drew it.
"""
import importlib
import io
from pathlib import Path

from ..results import write_bytes


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` as PNG (110 dpi, tight), making the folder, atomically; returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def show(path) -> Path:
    """Show a written PNG under the running notebook cell; run as a script, print where it was written.

    Parameters
    ----------
    path : str or Path
        A PNG file, e.g. the path a figure function of :mod:`spherenet.plots` returned.

    Returns
    -------
    Path
        ``path``, so that ``show(plots.sphere.retraction(...))`` can be kept or listed.

    Notes
    -----
    A notebook is recognised by an IPython shell with a kernel (Jupyter, VS Code, Colab, nbclient); IPython
    in a terminal and plain Python print the path instead.
    """
    path = Path(path)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
        shell = get_ipython()
    except ImportError:
        shell = None
    if getattr(shell, "kernel", None) is not None:
        display(Image(filename=str(path)))
    else:
        print(f"figure: {path}")
    return path


TOPICS = ("batches", "experiments", "gradients", "jets", "majorant", "predictions", "quadrotor", "sphere", "taylor",
          "time_to_accuracy", "tradeoff")


def __getattr__(name):
    """``spherenet.plots.sphere`` etc. without importing every topic (and matplotlib) up front."""
    if name in TOPICS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
