"""Training arrays on disk: ``.npy`` files opened memory-mapped, so training reads their rows block by block.

    folder/X.npy (N, d_0)   folder/Y.npy (N, d_L)   optional: folder/X_test.npy, folder/Y_test.npy

:func:`load_arrays` returns read-only ``np.memmap`` arrays: nothing is read until a pass touches the rows, and
``spherenet.train``, ``spherenet.baselines`` and their checks go through them a block of rows at a time
(docs/data.md §5). The arrays must already be in the training dtype (float32 or float64) and in C order (rows
contiguous); anything else would be converted by a copy of the whole array, which this route exists to avoid.
Checked here, without reading the data: the files exist and are ``.npy`` arrays of that kind, 2-D, with one
target row per sample and the same columns in the training and test parts. Non-finite values are found by the
training checks, block by block, with the file named.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAY_NAMES = ("X", "Y", "X_test", "Y_test")


def save_arrays(folder, X, Y, X_test=None, Y_test=None) -> Path:
    """Write ``X.npy``, ``Y.npy`` (and the test pair if given) into ``folder`` (made if needed), C order.

    Parameters
    ----------
    folder : str or Path
    X, Y : array_like, shape (N, d_0) and (N, d_L)
    X_test, Y_test : array_like, optional

    Returns
    -------
    Path
        The folder.
    """
    if (X_test is None) != (Y_test is None):
        raise ValueError("give both X_test and Y_test, or neither")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, A in zip(ARRAY_NAMES, (X, Y, X_test, Y_test)):
        if A is not None:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(A))
    return folder


def _open(path: Path) -> np.memmap:
    """``path`` memory-mapped, read-only, after the checks that need only its header."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        A = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not an .npy array of numbers ({err})") from None
    if not isinstance(A, np.memmap):
        raise ValueError(f"{path}: not a single .npy array (an .npz archive?)")
    if A.dtype not in (np.float32, np.float64):
        raise ValueError(f"{path} holds {A.dtype}; save it as float32 or float64 (the training dtype)")
    if A.ndim != 2:
        raise ValueError(f"{path} has shape {A.shape}; expected 2-D (samples as rows)")
    if not A.flags.c_contiguous:
        raise ValueError(f"{path} is stored in Fortran order; save it in C order (np.ascontiguousarray) so that "
                         f"rows can be read in blocks")
    return A


def load_arrays(folder) -> tuple:
    """The training arrays of ``folder``, memory-mapped (module docstring).

    Parameters
    ----------
    folder : str or Path
        Holds ``X.npy`` and ``Y.npy``; optionally ``X_test.npy`` and ``Y_test.npy`` (both or neither).

    Returns
    -------
    tuple
        ``(X, Y, X_test, Y_test)``: read-only ``np.memmap`` arrays (the test pair ``None`` when absent), ready for
        ``spherenet.train(net, X, Y, ..., X_test=X_test, Y_test=Y_test)`` without a copy when their dtype is the
        network's.

    Notes
    -----
    Bad input raises one line naming the file: ``FileNotFoundError`` (a missing folder or file), ``ValueError``
    (not an ``.npy`` array, not float32/float64, not 2-D, Fortran order, rows of ``X`` and ``Y`` that differ,
    test columns that differ from the training ones, only one of the test pair, two dtypes).

    Examples
    --------
    >>> import tempfile
    >>> folder = save_arrays(tempfile.mkdtemp(), np.ones((5, 2)), np.zeros((5, 1)))
    >>> X, Y, X_test, Y_test = load_arrays(folder)
    >>> X.shape, Y.shape, X_test is None
    ((5, 2), (5, 1), True)
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    paths = [folder / f"{name}.npy" for name in ARRAY_NAMES]
    if paths[2].exists() != paths[3].exists():
        present, missing = (paths[2], paths[3]) if paths[2].exists() else (paths[3], paths[2])
        raise FileNotFoundError(f"{present} has no partner: no such file: {missing}")
    arrays = [_open(p) for p in paths[:2]] + ([_open(p) for p in paths[2:]] if paths[2].exists() else [None, None])
    for i in (0, 2):
        (X, Y), (px, py) = arrays[i:i + 2], paths[i:i + 2]
        if X is not None and X.shape[0] != Y.shape[0]:
            raise ValueError(f"{px} has {X.shape[0]} rows but {py} has {Y.shape[0]}: one target row per sample")
    for train, test, p_train, p_test in ((arrays[0], arrays[2], paths[0], paths[2]),
                                         (arrays[1], arrays[3], paths[1], paths[3])):
        if test is not None and test.shape[1] != train.shape[1]:
            raise ValueError(f"{p_test} has {test.shape[1]} columns but {p_train} has {train.shape[1]}")
    dtypes = {A.dtype for A in arrays if A is not None}
    if len(dtypes) > 1:
        raise ValueError(f"the arrays in {folder} mix {' and '.join(sorted(d.name for d in dtypes))}; "
                         f"save them all in the training dtype")
    return tuple(arrays)
