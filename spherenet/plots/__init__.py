"""Every figure spherenet draws. Each function takes data and a path, writes one PNG, returns the path.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they work in
worker processes and on machines without a display.
"""
