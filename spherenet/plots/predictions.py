"""Predicted against measured force on the test set, per axis, for the network and linear least squares."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure

AXES = ("x", "y", "z")


def axis_rmse(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``sqrt(mean_n (p_nk - y_nk)^2)`` for each axis k [N]."""
    return np.sqrt(np.mean((np.asarray(predicted) - np.asarray(measured)) ** 2, axis=0))


def predictions_figure(record: dict, predictions: dict, path) -> Path:
    """One row per axis (x, y, z), the network on the left and linear least squares beside it: every test
    sample as a dot at (measured, predicted) [N], the line predicted = measured, the axis's RMSE.

    ``predictions``: ``{"measured", "network", "linear"}`` as :func:`spherenet.experiments.predict_test`
    returns them."""
    measured = np.asarray(predictions["measured"])
    models = [("network", f"network: {record['method']}, {'-'.join(map(str, record['widths']))}"),
              ("linear", "linear least squares")]
    fig = Figure(figsize=(9, 11), layout="constrained")
    grid = fig.subplots(len(AXES), len(models), sharex="row", sharey="row", squeeze=False)
    for col, (key, title) in enumerate(models):
        predicted = np.asarray(predictions[key])
        errors = axis_rmse(predicted, measured)
        for row, name in enumerate(AXES):
            ax = grid[row, col]
            ax.plot(measured[:, row], predicted[:, row], ".", ms=2, alpha=0.35, color=f"C{col}", rasterized=True)
            low = min(measured[:, row].min(), predicted[:, row].min())
            high = max(measured[:, row].max(), predicted[:, row].max())
            ax.plot([low, high], [low, high], color="k", lw=0.8)
            ax.set(xlabel=f"measured f_{name} [N]", ylabel=f"predicted f_{name} [N]" if col == 0 else "",
                   title=f"{title}\n{name}: RMSE {errors[row]:.3f} N" if row == 0 else f"{name}: RMSE {errors[row]:.3f} N")
    fig.suptitle(f"Test set, {len(measured)} samples ({record['data']}, split {record.get('split', 'random')}): "
                 f"residual force, predicted against measured")
    return save_figure(fig, path)
