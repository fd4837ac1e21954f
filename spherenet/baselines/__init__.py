"""Baselines for the comparison with spherenet's automatic step sizes, hand-written in NumPy.

* SGD and Adam on an ordinary ReLU MLP *with biases* (:mod:`.mlp`), each tuned by a learning-rate grid on a
  validation part of the training data (:func:`tune_lr`, grids in ``GRIDS``);
* retracted Riemannian SGD on spherenet's own normalised network, with a fixed learning rate;
* AGD (Bernstein et al. 2023; METHOD.md §7), bias-free, no learning rate;
* least squares with a bias (:func:`fit_linear`).

Modules: ``mlp`` (the biased network), ``optimisers`` (the update rules), ``trainers`` (the loop; the same
``History`` as ``spherenet.train``), ``tuning`` (grid search, :func:`run_baseline`).
"""
from .mlp import init_mlp, mlp_forward, mlp_loss, mlp_loss_and_grad
from .optimisers import AGD, SGD, Adam, RetractedSGD, agd_init
from .trainers import diverged, train_adam, train_agd, train_rsgd, train_sgd
from .tuning import (BASELINES, GRIDS, RSGD_DEFAULT_LR, Predictor, fit_linear, format_tuning, log_grid,
                     run_baseline, tune_lr, validation_split)

__all__ = ["AGD", "Adam", "BASELINES", "GRIDS", "Predictor", "RSGD_DEFAULT_LR", "RetractedSGD", "SGD",
           "agd_init", "diverged", "fit_linear", "format_tuning", "init_mlp", "log_grid", "mlp_forward",
           "mlp_loss", "mlp_loss_and_grad", "run_baseline", "train_adam", "train_agd", "train_rsgd",
           "train_sgd", "tune_lr", "validation_split"]
