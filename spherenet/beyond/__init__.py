"""Beyond the paper: automatic step rules on the product of spheres that keep ``prod mu_i`` as the
Lipschitz bound (docs/beyond.md). Modules: ``geodesic`` (per-layer-rate curve and its loss jet),
``directions`` (paper, Riemannian gradient, conjugate gradient, Adam's direction), ``step``
(:class:`GeodesicStep`, the jet-Newton step with backtracking for any direction)."""
from .directions import DIRECTIONS, AdamDirection, ConjugateGradient, GradientDirection, PaperDirection
from .geodesic import Geodesic
from .step import GeodesicStep

__all__ = ["DIRECTIONS", "AdamDirection", "ConjugateGradient", "Geodesic", "GeodesicStep",
           "GradientDirection", "PaperDirection"]
