"""Every figure spherenet draws. Each function takes data and a path, writes one PNG, returns the path.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they work in
worker processes and on machines without a display.
"""

from pathlib import Path


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` as PNG (110 dpi, tight), making the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
