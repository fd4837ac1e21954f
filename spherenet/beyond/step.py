"""A step rule for any direction: the jet-based Newton step along the per-layer geodesic, then backtracking.

Per call, with ``D`` from a direction object (``spherenet.beyond.directions``) and the curve
``Γ = Geodesic(W, D, mu)`` (``a_i = ||D_i||/(mu_i s)``, the fastest layer turning by ``t``):

    c_0..c_r = jet of φ(t) = J(Γ(t))  with the slope c_1 = <∇J, D>/s exact (from the backward pass)
    t_model  = newton_safeguard(-c_1, 2 c_2, eps)   (r = 2: Algorithm 1's rule on this curve)
             = model_step(c, eps)                   (r > 2: smallest positive local minimiser of the model)
    tau      = t_model halved until J(Γ(tau)) <= J_prev   (Algorithm 1, step 5)

With the ``paper`` direction (``a_i = 1``, ``U_i = V_i``) every number is Algorithm 1's. Every iterate lies on
the spheres, so ``prod_i mu_i`` bounds the Lipschitz constant as in the paper. A failed backtracking
(cap reached) restarts the direction's memory (CG, Adam moments).
"""
from __future__ import annotations

from .._checks import finite_float, positive_int
from ..steps import Iterate, Step
from ..taylor import EPS, jet_newton_step
from .directions import DIRECTIONS, inner
from .geodesic import Geodesic


class GeodesicStep:
    """Step rule ``rule(it) -> Step``: the jet-Newton step along the geodesic of any direction (module docstring; §7).

    Parameters
    ----------
    direction : str or object, optional
        A name of ``DIRECTIONS`` (default ``"cg"``) or an object with ``reset()`` and
        ``__call__(weights, grads, radii) -> (D, info)``.
    order : int, optional
        Jet order ``r >= 2`` (default 2).
    eps, max_halvings : optional
        As ``taylor.TaylorStep``.

    Attributes
    ----------
    name : str
        ``"geo-<direction>"``, with the order appended when it is not 2.

    Notes
    -----
    ``Step.info``: ``kappa``, ``t_model``, ``speed``, ``min_rate`` and the direction's ``info``. ``beta = 0``
    (flag ``"stationary"``) and a step of ``tau = 0`` reset the direction's memory.
    """

    def __init__(self, direction="cg", order: int = 2, eps: float = EPS, max_halvings: int = 30):
        if isinstance(direction, str):
            if direction not in DIRECTIONS:
                raise ValueError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
            direction = DIRECTIONS[direction]()
        self.direction = direction
        self.order = positive_int("order", order, minimum=2)
        self.eps = finite_float("eps", eps, positive=True)
        self.max_halvings = positive_int("max_halvings", max_halvings, minimum=0)
        self.name = f"geo-{direction.name}" + ("" if self.order == 2 else str(self.order))

    uses_adjoints = False                        # its jet is the geodesic's (jets.CurveJet), from the forward pass

    def state(self) -> dict:
        """The direction's memory across iterations, as named arrays (for checkpoints).

        Returns
        -------
        dict
        """
        return self.direction.state()

    def restore(self, state: dict) -> None:
        """Continue from a memory that :meth:`state` returned.

        Parameters
        ----------
        state : dict
        """
        self.direction.restore(state)

    def __call__(self, it: Iterate) -> Step:
        if it.direction.beta == 0:
            self.direction.reset()
            return Step(0.0, it.weights, it.cache, it.loss, predicted=0.0, flags=("stationary",))
        D, info = self.direction(it.weights, it.grads, it.radii)
        curve = Geodesic(it.weights, D, it.radii)
        c = curve.loss_jet(it.cache, it.X, it.Y, self.order)
        c[1] = inner(it.grads, D) / curve.speed               # exact slope: <∇J, Γ'(0)>
        taken = jet_newton_step(it, c, self.order, self.eps, self.max_halvings,
                                loss_at=lambda t: it.loss_at(curve.point(t)))
        if taken.tau == 0:
            self.direction.reset()
        taken.info.update(speed=curve.speed, min_rate=float(curve.rates.min()), **info)
        return taken

