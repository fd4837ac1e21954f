"""Baselines for the comparison with spherenet's automatic step sizes, hand-written in NumPy.

* SGD and Adam as PyTorch users run them: an ordinary ReLU MLP *with biases* (:mod:`.mlp`, PyTorch's default
  initialisation), inputs and targets standardised with training statistics (:mod:`.standardise`), the
  learning rate (and optionally the batch size) tuned on a validation part of the training data
  (:func:`tune_lr`, grids in ``GRIDS``, extended past an edge that wins);
* retracted Riemannian SGD on spherenet's own normalised network, with a fixed learning rate;
* AGD (Bernstein et al. 2023; docs/method.md §8) as its authors run it: their network (bias-free, sqrt(2) after
  every ReLU), initialisation, loss and data scaling; no learning rate;
* least squares with a bias (:func:`fit_linear`).

Modules: ``mlp`` (the biased network), ``optimisers`` (the update rules), ``standardise`` (the data
preparation), ``trainers`` (the loop; the same ``History`` as ``spherenet.train``), ``tuning`` (grid search,
:func:`run_baseline`).
"""
from .mlp import init_mlp, mlp_forward, mlp_loss, mlp_loss_and_grad
from .optimisers import AGD, SGD, Adam, RetractedSGD, agd_init
from .standardise import Standardiser
from .trainers import agd_plain_weights, diverged, train_adam, train_agd, train_rsgd, train_sgd, weighted_loss
from .tuning import (AUTO_BATCH_SIZES, BASELINES, GRIDS, MAX_EXTENSIONS, RSGD_DEFAULT_LR, Predictor, fit_linear,
                     format_tuning, log_grid, run_baseline, tune_lr, validation_split)

__all__ = ["AGD", "AUTO_BATCH_SIZES", "Adam", "BASELINES", "GRIDS", "MAX_EXTENSIONS", "Predictor",
           "RSGD_DEFAULT_LR", "RetractedSGD", "SGD", "Standardiser", "agd_init", "agd_plain_weights", "diverged",
           "fit_linear", "format_tuning", "init_mlp", "log_grid", "mlp_forward", "mlp_loss", "mlp_loss_and_grad",
           "run_baseline", "train_adam", "train_agd", "train_rsgd", "train_sgd", "tune_lr", "validation_split",
           "weighted_loss"]
