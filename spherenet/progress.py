"""Progress bars (tqdm) for the phases that take more than a few seconds: tuning, training, sweeps.

A bar is drawn on stderr only when it is a terminal and ``quiet`` is false; otherwise it counts silently
(``tqdm``'s ``disable``), so logs and pipes stay clean.
"""
from __future__ import annotations

import sys

from tqdm import tqdm


def enabled(quiet: bool = False) -> bool:
    """Whether bars are drawn: not ``quiet`` and stderr is a terminal."""
    return not quiet and bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar(total, desc: str, quiet: bool = False, unit: str = "it"):
    """A ``tqdm`` bar on stderr (``total=None``: unknown length), disabled as :func:`enabled` says."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled(quiet), leave=False,
                dynamic_ncols=True)


def iteration_callback(pbar):
    """``callback(k, history)`` for the training loops: advance ``pbar`` by one per iteration and show the
    latest training loss."""
    def callback(k, history):
        pbar.update(1)
        if history.loss_train and k % 10 == 0:
            pbar.set_postfix_str(f"J {history.loss_train[-1]:.4g}", refresh=False)
    return callback
