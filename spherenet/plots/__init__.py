"""Every figure spherenet draws. Each function takes data and a path, writes one PNG, returns the path.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they work in
worker processes and on machines without a display. Every figure is written atomically (rendered in
memory, written to a temporary name, renamed): a kill during a save never leaves a partial PNG.
"""
import io
from pathlib import Path

from ..results import write_bytes


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` as PNG (110 dpi, tight), making the folder, atomically; returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())
