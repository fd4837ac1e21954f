"""spherenet: normalised neural networks on products of spheres, with automatic step sizes.

An implementation of Cho & Shin, "Automatic Optimisation of Normalised Neural Networks" (arXiv 2312.10672).
"""
from . import data, jets, kernels, majorant, mm, sphere, steps, taylor, train
from .estimator import NotFittedError, SphereNetRegressor, load
from .network import (Direction, ForwardCache, NormalisedMLP, direction, forward, forward_cache, loss,
                      loss_and_grad, radii_for)

__version__ = "0.1.0"

__all__ = ["Direction", "ForwardCache", "NormalisedMLP", "NotFittedError", "SphereNetRegressor", "data",
           "direction", "forward", "forward_cache", "jets", "kernels", "load", "loss", "loss_and_grad", "majorant", "mm",
           "radii_for", "sphere", "steps", "taylor", "train"]
