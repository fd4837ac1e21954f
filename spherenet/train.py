"""The training loop shared by every step rule, and the per-iteration history it records.

One iteration (full batch by default):

    ∇_i J (backward on the cached forward) -> V_i, beta -> rule picks tau -> W_i <- Γ_i(tau)

The forward pass at the new weights is reused as the next iteration's forward pass. The loop never
re-projects the weights: they stay on their spheres because the update curve does.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from threadpoolctl import threadpool_limits

from . import rows
from ._checks import check_data, finite_float, positive_int
from .averaging import MEMORY, IterateAverage, averaged_weights, check_memory

from .network import (NormalisedMLP, StreamedCache, Workspace, _backward, _direction, _forward_cache, _loss_from_output,
                      _output, adjoints_to_keep, hidden_activation_bound, streams_forward)
from .spectral import network_weights, normalisation_for
from .steps import Iterate, weights_along


def _taylor(order=2, **options):
    from .taylor import TaylorStep
    return TaylorStep(order=order, **options)


def _mm(variant):
    def make(**options):
        from .mm import MajorantStep
        return MajorantStep(variant=variant, **options)
    return make


def _mm_closed(**options):
    from .mm import ClosedFormStep
    return ClosedFormStep(**options)


def _geodesic(direction):
    def make(**options):
        from .beyond import GeodesicStep
        return GeodesicStep(direction=direction, **options)
    return make


def _batch_geodesic(**options):
    from .beyond.stochastic import BatchGeodesicStep
    return BatchGeodesicStep(**options)


RULES = {
    "taylor": _taylor,                  # Algorithm 1 (order 2) and its order-r extension
    "mm": _mm("spectral"),              # Algorithm 2, the paper's majorant
    "mm-frobenius": _mm("frobenius"),
    "mm-telescoping": _mm("telescoping"),
    "mm-closed": _mm_closed,
    "geo-cg": _geodesic("cg"),          # docs/beyond.md: jet-Newton step along a conjugate-gradient geodesic
    "geo-cg-layer": _geodesic("cg-layer"),
    "geo-adam": _geodesic("adam"),      # Adam's direction, no learning rate: the length comes from the jet
    "geo-rgrad": _geodesic("rgrad"),
    "geo-batch": _batch_geodesic,       # docs/beyond.md §7: the mini-batch rule (default with --batch-size)
}


# Rules whose step depends only on the iterate and the previous accepted loss (which the history holds):
# after a full-batch step of tau = 0 their next iteration would be this one again. The others keep a memory
# across iterations (``rule.state()``), which a checkpoint must hold.
MEMORYLESS = ("taylor", "mm", "mm-frobenius", "mm-telescoping", "mm-closed")


def make_rule(name: str, **options):
    """The step rule called ``name``, built with ``options``.

    Parameters
    ----------
    name : str
        One of ``RULES``: ``"taylor"`` (Algorithm 1, docs/method.md §4), ``"mm"``, ``"mm-frobenius"``,
        ``"mm-telescoping"``, ``"mm-closed"`` (§5), the ``"geo-*"`` rules (§7).
    **options
        The rule's keyword arguments (e.g. ``order=4``).

    Returns
    -------
    step rule
        A callable ``rule(it) -> steps.Step`` with a ``name``.

    Examples
    --------
    >>> make_rule("taylor", order=4)
    TaylorStep(order=4, eps=0.5235987755982988, max_halvings=30)
    """
    if name not in RULES:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(RULES)}")
    return RULES[name](**options)


@dataclass
class History:
    """What the loop records: losses with ``iterations + 1`` entries (entry 0: at initialisation), and per-step
    arrays with one entry per iteration taken.

    Attributes
    ----------
    method : str
        The rule's name.
    loss_train, loss_test : list of float
        ``loss_test`` at ``eval_iterations``; ``loss_train`` at every iteration (full batch) or there too
        (mini-batch runs).
    tau, beta, predicted, actual : list of float
        The angle taken; ``beta = -φ'(0)``; the rule's model of ``J_new - J``; the true ``J_new - J`` (on the
        step's batch).
    halvings : list of int
        Backtracking halvings.
    drift : list of float
        ``max_i | ||W_i||_F - mu_i | / mu_i`` after the step.
    seconds : list of float
        Cumulative training time (test-loss evaluation excluded).
    flags : list of list of str
        Degenerate cases met (see ``spherenet.steps.FLAGS``).
    info : dict
        The rule's extra scalars per step (e.g. ``kappa``), one list per key.
    stop_reason : str
        Why the loop ended early, or ``""``.
    batch_state : dict
        Where the mini-batch draw stands, for resuming (with spectral layers also the warm starts of their top
        singular vectors, ``spectral<i>``: ``SpectralNormalisation.state``; on mini-batches the average of the
        iterates, ``average`` and ``average_weight``: ``averaging.IterateAverage.state``).
    eval_iterations : list of int
        The iterations at which ``loss_test`` was recorded (every ``eval_every`` and the last; empty in records
        older than this field: then every iteration).
    seconds_eval : float
        The time those evaluations took (not in ``seconds``).
    """
    method: str
    loss_train: list = field(default_factory=list)
    loss_test: list = field(default_factory=list)
    tau: list = field(default_factory=list)
    beta: list = field(default_factory=list)
    predicted: list = field(default_factory=list)
    actual: list = field(default_factory=list)
    halvings: list = field(default_factory=list)
    drift: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    stop_reason: str = ""
    batch_state: dict = field(default_factory=dict)
    eval_iterations: list = field(default_factory=list)
    seconds_eval: float = 0.0

    @property
    def iterations(self) -> int:
        """The number of iterations taken (``len(tau)``)."""
        return len(self.tau)

    def test_iterations(self) -> list:
        """The iteration of every ``loss_test`` entry.

        Returns
        -------
        list of int
            ``eval_iterations``, or every iteration in older records.
        """
        return list(self.eval_iterations) or list(range(len(self.loss_test)))

    def record_info(self, info: dict) -> None:
        """Append a step's scalar ``info`` values (as floats) to their lists; arrays are not recorded.

        Parameters
        ----------
        info : dict
        """
        for key, value in info.items():
            if np.ndim(value) == 0:
                self.info.setdefault(key, []).append(float(value))

    def as_dict(self) -> dict:
        """Plain lists and numbers, ready for ``json.dump``.

        Returns
        -------
        dict
            Non-finite floats become ``None``.
        """
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The inverse of :meth:`as_dict`.

        Parameters
        ----------
        d : dict
            A record (unknown keys or no ``method``: ``ValueError``).

        Returns
        -------
        History
            ``None`` read back as NaN in the float lists and in ``info``.
        """
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown or "method" not in d:
            raise ValueError(f"not a History record: unexpected keys {sorted(unknown)}" if unknown
                             else "not a History record: no 'method'")
        floats = ("loss_train", "loss_test", "tau", "beta", "predicted", "actual", "drift", "seconds")
        out = cls(**{k: v for k, v in d.items() if k not in floats and k != "info"})
        for k in floats:
            setattr(out, k, [math.nan if v is None else float(v) for v in d.get(k, [])])
        out.info = {k: [math.nan if v is None else v for v in vs] for k, vs in d.get("info", {}).items()}
        return out


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _drift(weights, radii) -> float:
    return max(abs(math.sqrt(float(np.vdot(W, W.astype(np.float64)))) - mu) / mu for W, mu in zip(weights, radii))


class _Batches:
    """Full batch (``batch_size=None``), or mini-batches drawn without replacement, epoch by epoch.

    ``state()``/``restore()`` capture where the draw stands (generator state, epoch order, position), so a
    resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, X, Y, batch_size, rng):
        self.X, self.Y, self.size, self.rng = X, Y, batch_size, rng
        self.order, self.pos = np.empty(0, dtype=np.intp), 0
        self.drawn = rng.bit_generator.state         # the generator's state: it moves only when an epoch draws

    @property
    def full(self) -> bool:
        return self.size is None or self.size >= len(self.X)

    def next(self):
        if self.full:
            return self.X, self.Y
        if self.pos + self.size > len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.X)), 0
            self.drawn = self.rng.bit_generator.state
        idx = np.sort(self.order[self.pos:self.pos + self.size])
        self.pos += self.size
        return self.X.take(idx, axis=0), self.Y.take(idx, axis=0)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": self.order.tolist(), "pos": self.pos}

    def snapshot(self) -> dict:
        """:meth:`state` without copying the epoch's order (each epoch draws a new array, never changed in place)
        or reading the generator again, cheap enough to take at every iteration."""
        return {"rng": self.drawn, "order": self.order, "pos": self.pos}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.drawn = self.rng.bit_generator.state
        self.order, self.pos = np.asarray(state["order"], dtype=np.intp), int(state["pos"])


def train(net: NormalisedMLP, X, Y, rule="taylor", iterations: int = 200, X_test=None, Y_test=None,
          batch_size: int | None = None, seed=0, callback=None, resume: History | None = None,
          blas_threads: int | None = 1, threads: int = 1, eval_every: int = 1, max_seconds: float | None = None,
          norm: str = "frobenius", average="auto", **rule_options) -> History:
    """Train ``net`` in place by ``iterations`` steps of ``rule`` and return the :class:`History`.

    Parameters
    ----------
    net : NormalisedMLP
        The network; its weights are replaced by the last good ones.
    X, Y, X_test, Y_test : ndarray
        Training inputs ``(N, d_0)`` and targets ``(N, d_L)``; an optional test set, evaluated every
        ``eval_every`` iterations and at the last (evaluation is not counted as training time).
    rule : str or step rule
        A name from ``RULES`` (built with ``rule_options``, e.g. ``order=4``) or ``rule(it) -> steps.Step``.
    iterations : int
        Steps to take (fewer if the run stops early).
    batch_size, seed : int, optional
        ``None`` for full batch (the paper); otherwise mini-batches drawn with ``seed``, and each step's
        backtracking compares against the loss on its own batch.
    callback : callable, optional
        ``callback(k, history)`` after every iteration (progress bars).
    resume : History, optional
        The history of an earlier run of the same net, rule and data: the loop continues it and gives the
        numbers an uninterrupted run would give.
    blas_threads, threads : int
        BLAS threads during the loop (default 1: these thin products lose 10x when the cores are shared,
        ``benchmarks/README.md``; ``None`` leaves BLAS as it is), and threads the samples of every pass are
        split over (``spherenet.rows``; the same count gives the same bits).
    eval_every, max_seconds : optional
        Evaluate every this many iterations; stop once this much training time is used.
    norm : {"frobenius", "spectral"}, optional
        What the network computes with: the weights themselves (the paper), or their spectral normalisation
        ``E_i = mu_i W_i/||W_i||_2`` (:mod:`spherenet.spectral`; rules that read only losses and gradients,
        ``geo-batch``). Either way ``net.weights`` are the optimiser's, on their Frobenius spheres (what a resumed
        run continues from); the trained function is :func:`trained_network`.
    average : float, "auto" or None, optional
        The model the run reports (its evaluations, :func:`trained_network`): the exponential average of the
        iterates with this memory, back on the spheres (:mod:`spherenet.averaging`), or the last iterate (0 or
        ``None``). ``"auto"`` (default): ``averaging.MEMORY`` (0.95) on mini-batches, the last iterate on full
        batch (where every step descends and an average would only lag behind). The optimiser steps from its
        iterates either way.

    Returns
    -------
    History
        Losses, steps and flags per iteration; ``stop_reason`` says why the run ended early, if it did.

    Notes
    -----
    One iteration: backward pass on the cached forward pass, the direction ``V_i`` and ``beta``, the rule's
    angle ``tau``, the weights move to ``Γ_i(tau)`` (docs/method.md §3–5). The run stops early, keeping the
    last good weights, when the full-batch Riemannian gradient vanishes, the loss becomes non-finite, or a
    memoryless rule (``MEMORYLESS``) takes a full-batch step of ``tau = 0`` (every later iteration would
    repeat it); and before the first step if a hidden activation could overflow (:func:`_overflow_risk`).
    """
    loop = _Loop(net, X, Y, X_test, Y_test, _rule(rule, rule_options), batch_size, seed, callback,
                 eval_every, max_seconds, norm, average)
    iterations = positive_int("iterations", iterations, minimum=0)
    threads = positive_int("threads", threads)
    # Overflow is detected by the loop's explicit finiteness checks, which stop the run with a message.
    with threadpool_limits(blas_threads), rows.threads(threads), np.errstate(over="ignore", invalid="ignore"):
        history = loop.begin(resume)
        for k in range(history.iterations, history.iterations + (0 if history.stop_reason else iterations)):
            if not loop.iteration(k):
                break
        if history.eval_iterations[-1] != history.iterations:          # always evaluated at the last
            loop.evaluate(history.iterations)
    history.batch_state = loop.resume_state(loop.batches.state())
    net.weights = loop.weights
    return history


def trained_network(net: NormalisedMLP, history: History, norm: str = "frobenius") -> NormalisedMLP:
    """The network that computes what a run trained: the model it reports (the average of its iterates, if it
    kept one, :mod:`spherenet.averaging`; else ``net``), under its normalisation (``norm`` as in :func:`train`:
    with ``"spectral"`` the weights ``E_i = mu_i W_i/||W_i||_2``, :mod:`spherenet.spectral`).

    Parameters
    ----------
    net : NormalisedMLP
        As :func:`train` left it (the optimiser's last iterate).
    history : History
        What :func:`train` returned for it.
    norm : {"frobenius", "spectral"}, optional

    Returns
    -------
    NormalisedMLP
        A new network (``net`` is not changed); its ``lipschitz_bound()`` is the certificate's Frobenius bound.
    """
    reported = net.copy()
    reported.weights = averaged_weights(history, net.weights, net.radii)
    normalisation = normalisation_for(norm, net.radii)
    return reported if normalisation is None else normalisation.network(reported)


def _iterate_average(average, full: bool, radii) -> IterateAverage | None:
    """The loop's :class:`IterateAverage` for ``train(average=...)``, or ``None`` (report the last iterate)."""
    if isinstance(average, str):
        if average != "auto":
            raise ValueError(f"average must be a memory in [0, 1), 'auto' or None, got {average!r}")
        average = None if full else MEMORY
    memory = 0.0 if average is None else check_memory(average)
    return IterateAverage(memory, radii) if memory > 0 else None


def _rule(rule, rule_options: dict):
    """The step-rule object ``train`` was given, or the one its name and options build."""
    if isinstance(rule, str):
        return make_rule(rule, **rule_options)
    if not callable(rule):
        raise TypeError(f"rule must be a method name ({', '.join(RULES)}) or a step-rule object, got {rule!r}")
    if rule_options:
        raise TypeError(f"options {sorted(rule_options)} only apply when the rule is given by name")
    return rule


class _Loop:
    """The training loop's state from iteration to iteration, and its buffers (private to it).

    Full batch: one forward cache. The rule's trial evaluations overwrite the current point's pass, which
    nothing reads once the direction and the jet are known; a step that stays (``tau = 0``) recomputes it.
    Mini-batches: two caches, the current point's and the trial's, which swap when a trial is taken; the
    training loss on all of ``X`` is recorded block by block (``network._output``), so memory beyond the data
    does not grow with the number of samples. A full batch whose cache would exceed ``network.FORWARD_BUDGET``
    is a ``network.StreamedCache`` instead (only the output kept; docs/data.md §5).
    """

    def __init__(self, net, X, Y, X_test, Y_test, rule, batch_size, seed, callback, eval_every, max_seconds,
                 norm="frobenius", average="auto"):
        if not isinstance(net, NormalisedMLP):
            raise TypeError(f"net must be a spherenet.NormalisedMLP, got {type(net).__name__}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        self.X, self.Y = check_data(X, Y, net.widths[0], net.widths[-1], net.dtype)
        self.has_test = X_test is not None or Y_test is not None
        if self.has_test:
            if X_test is None or Y_test is None:
                raise ValueError("give both X_test and Y_test, or neither")
            X_test, Y_test = check_data(X_test, Y_test, net.widths[0], net.widths[-1], net.dtype,
                                        names=("X_test", "Y_test"))
        self.X_test, self.Y_test = X_test, Y_test
        if batch_size is not None:
            batch_size = positive_int("batch_size", batch_size)
        self.eval_every, self.max_seconds = _check_budget(eval_every, max_seconds)
        self.rule, self.callback, self.dtype = rule, callback, net.dtype
        self.batches = _Batches(self.X, self.Y, batch_size, np.random.default_rng(seed))
        # Large data (docs/data.md §5): above network.FORWARD_BUDGET a full-batch pass keeps only its output and
        # recomputes its hidden layers block by block; above network.ADJOINT_BUDGET (or streamed) the backward
        # pass keeps only the output layer's adjoints, and Algorithm 1's jet recomputes the others per block.
        rows_per_pass = len(self.X) if self.batches.full else min(self.batches.size, len(self.X))
        self.streamed = self.batches.full and streams_forward(net.widths, rows_per_pass, net.dtype)
        self.keep_adjoints = getattr(rule, "uses_adjoints", True)      # (unknown rules may read cache.dZ)
        if self.keep_adjoints:
            self.keep_adjoints = "output" if self.streamed else adjoints_to_keep(net.widths, rows_per_pass, net.dtype)
        self.weights, self.radii = [W.copy() for W in net.weights], net.radii
        self.normalisation = normalisation_for(norm, net.radii)
        if self.normalisation is not None and not getattr(rule, "supports_spectral", False):
            raise ValueError(f"norm 'spectral' needs a rule that reads only losses and gradients (geo-batch), not "
                             f"{getattr(rule, 'name', type(rule).__name__)!r}: its jets are of the plain network")
        self.workspace, self.names = Workspace(), ["current", "trial"]
        self.cache = None
        self.average = _iterate_average(average, self.batches.full, self.radii)
        # the average's spectral pairs, apart from the optimiser's (whose warm starts are part of the run's state)
        self.reported_normalisation = normalisation_for(norm, self.radii)

    def begin(self, resume: History | None) -> History:
        """The history to append to (a new one with the losses at the start, or ``resume``)."""
        if resume is not None and self.normalisation is not None and isinstance(resume, History):
            self.normalisation.restore(resume.batch_state)
        if resume is not None and self.average is not None and isinstance(resume, History):
            self.average.restore(resume.batch_state, sum(W.size for W in self.weights))
        if self.streamed:
            self.cache = StreamedCache(self.network(self.weights), self.X, self.workspace)
        elif self.batches.full:
            self.cache = _forward_cache(self.network(self.weights), self.X,
                                        self.workspace.cache("current", self.weights, self.X))
        if resume is None:
            self.history = History(getattr(self.rule, "name", type(self.rule).__name__))
            F = self.cache.F if self.batches.full else _output(self.network(self.weights), self.X, self.workspace)
            self.history.loss_train.append(_loss_from_output(F, self.Y))
            self.evaluate(0, with_train=False)
        else:
            self.history = _check_resumable(resume, self.has_test, self.batches, self.eval_every)
        self.J_prev = self.history.loss_train[-1]
        self.elapsed = self.history.seconds[-1] if self.history.seconds else 0.0
        self.history.stop_reason = _overflow_risk(self.radii, self.dtype, self.X, self.X_test)
        return self.history

    def evaluate(self, k: int, with_train: bool | None = None) -> None:
        """The record-only losses at iteration ``k`` (not training time) of the model the run reports, block by
        block."""
        begin = time.perf_counter()
        network = self.reported_network()
        if with_train if with_train is not None else not self.batches.full:
            self.history.loss_train.append(_loss_from_output(_output(network, self.X, self.workspace), self.Y))
        if self.has_test:
            self.history.loss_test.append(_loss_from_output(_output(network, self.X_test, self.workspace),
                                                            self.Y_test))
        self.history.eval_iterations.append(k)
        self.history.seconds_eval += time.perf_counter() - begin

    def iteration(self, k: int) -> bool:
        """Iteration ``k + 1``: one step of the rule, recorded. ``False`` when the run stops here."""
        start = time.perf_counter()
        it = self.iterate()
        if it is None:
            self.history.stop_reason = (f"iteration {k + 1}: the loss or its gradient is non-finite (J = "
                                        f"{self.J}; overflow in {self.dtype}?); stopped and kept the last good weights")
            return False
        step = self.rule(it)
        J_new = self.move(it, step)
        if not math.isfinite(J_new):
            self.history.stop_reason = (f"iteration {k + 1}: the loss became non-finite ({J_new}) at tau = "
                                        f"{step.tau!r}; stopped and kept the last good weights")
            return False
        if self.average is not None:
            self.average.fold(self.weights)
        self.elapsed += time.perf_counter() - start
        self.J_prev = J_new
        _record(self.history, step, it, J_new - it.loss, J_new if self.batches.full else None, self.weights,
                self.radii, self.elapsed)
        if (k + 1) % self.eval_every == 0:
            self.evaluate(k + 1)
        if self.callback is not None:
            # where the draw stands (and the spectral layers' warm starts), for a checkpoint taken now
            draw = self.history.batch_state if self.batches.full else self.batches.snapshot()
            self.history.batch_state = self.resume_state(draw)
            self.callback(k + 1, self.history)
        self.history.stop_reason = self.stop_reason(k, step, it)
        return not self.history.stop_reason

    def iterate(self) -> Iterate | None:
        """The next batch's :class:`Iterate` (forward pass, backward pass, direction), or ``None`` if the loss or
        a gradient is non-finite."""
        Xb, Yb = self.batches.next()
        ws, network = self.workspace, self.network(self.weights)
        if not self.batches.full:
            self.cache = _forward_cache(network, Xb, ws.cache(self.names[0], self.weights, Xb))
        self.J, grads = _backward(network, self.cache, Yb, ws, self.keep_adjoints)
        if self.normalisation is not None:
            grads = self.normalisation.pullback(self.weights, grads)
            self.normalisation.anchor(self.weights)            # trial points' singular pairs start here
        if not (math.isfinite(self.J) and all(np.isfinite(g).all() for g in grads)):
            return None
        trial = self.cache if self.batches.full else ws.cache(self.names[1], self.weights, Xb)
        return Iterate(self.weights, self.radii, Xb, Yb, self.cache, self.J, grads,
                       _direction(self.weights, grads, self.radii), self.J_prev if self.batches.full else self.J,
                       trial_buffers=trial, workspace=ws, normalisation=self.normalisation)

    def resume_state(self, draw: dict) -> dict:
        """``History.batch_state``: where the mini-batch draw stands (``draw``), with spectral layers their warm
        starts (``SpectralNormalisation.state``), and the iterates' average (``IterateAverage.state``)."""
        state = draw if self.normalisation is None else {**draw, **self.normalisation.state()}
        return state if self.average is None else {**state, **self.average.state()}

    def network(self, weights) -> list:
        """The matrices the network computes with at ``weights`` (:func:`spectral.network_weights`)."""
        return network_weights(weights, self.normalisation)

    def reported_network(self) -> list:
        """The matrices of the model the run reports: the average of the iterates once there is one, else the
        current iterate (:func:`trained_network`)."""
        model = self.average.model(self.weights) if self.average is not None else None
        return self.network(self.weights) if model is None else network_weights(model, self.reported_normalisation)

    def move(self, it: Iterate, step) -> float:
        """Take the step: the weights at ``tau`` and their forward pass become the current ones. Returns the
        new loss on the step's batch."""
        new_weights = step.weights_new if step.weights_new is not None else (
            weights_along(it, step.tau) if step.tau else it.weights)
        new_cache = step.cache_new
        if new_cache is None or (step.tau == 0 and it.trial_buffers is it.cache):   # staying: trials overwrote it
            new_cache = _forward_cache(self.network(new_weights), it.X, it.trial_buffers)
        J_new = step.loss_new if step.loss_new is not None else _loss_from_output(new_cache.F, it.Y)
        if math.isfinite(J_new):
            if new_cache is it.trial_buffers and it.trial_buffers is not it.cache:
                self.names.reverse()
            self.weights, self.cache = new_weights, new_cache
        return J_new

    def stop_reason(self, k: int, step, it: Iterate) -> str:
        """Why the run ends after iteration ``k + 1``, or ``""``."""
        if "stationary" in step.flags and self.batches.full:
            return f"iteration {k + 1}: stationary point (beta = 0); nothing left to descend"
        if _stuck(step, it, self.rule, self.batches):
            return (f"iteration {k + 1}: the step is tau = 0 ({', '.join(step.flags) or 'no flag'}) and "
                    f"{self.rule.name!r} has no memory, so every further iteration would repeat it; stopped")
        if self.max_seconds is not None and self.elapsed >= self.max_seconds:
            return f"time budget of {self.max_seconds:g} s reached after {k + 1} iterations"
        return ""


def _overflow_risk(radii, dtype, X, X_test=None) -> str:
    """Why a hidden activation could become non-finite, or ``""`` if it cannot.

    The checks on ``J`` and the gradients see every non-finite number that reaches the output, but a hidden
    pre-activation that overflows to ``-Inf`` leaves the ReLU as a finite 0 and is never seen again. That
    needs ``|Z| > max(dtype)``, which the a-priori bound ``network.hidden_activation_bound`` (times 2, for
    rounding and norm drift) rules out: one check per run, nothing per step.
    """
    limit = float(np.finfo(dtype).max) / 2
    for name, data in (("X", X), ("X_test", X_test)):
        bound = 0.0 if data is None else hidden_activation_bound(radii, data)
        if not bound < limit:
            return (f"a hidden activation could overflow {np.dtype(dtype).name}: max_n ||x_n|| · max_i Π_(j<=i) "
                    f"mu_j = {bound:.3g} on {name} is not below max/2 = {limit:.3g} (an overflow to -Inf would "
                    f"leave the ReLU as a finite 0); scale the inputs or the radii down. No step taken")
    return ""


def _stuck(step, it: Iterate, rule, batches: _Batches) -> bool:
    """A full-batch step of ``tau = 0`` by a memoryless rule, from a point whose loss is the one it compared
    against: the next iteration would see exactly this iterate again (e.g. Algorithm 2 near a stationary
    point, where the majorant's minimiser lies below the golden section's resolution)."""
    name = getattr(rule, "name", "")
    memoryless = name in MEMORYLESS or name.startswith("taylor")         # "taylor4": the order-4 model step
    return batches.full and step.tau == 0 and memoryless and it.loss_prev == it.loss


def _check_budget(eval_every, max_seconds):
    eval_every = positive_int("eval_every", eval_every)
    if max_seconds is not None:
        max_seconds = finite_float("max_seconds", max_seconds, positive=True)
    return eval_every, max_seconds


def _check_resumable(history: History, has_test: bool, batches: _Batches, eval_every: int) -> History:
    if not isinstance(history, History):
        raise TypeError(f"resume must be a History, got {type(history).__name__}")
    if history.stop_reason:
        raise ValueError(f"cannot resume a run that stopped: {history.stop_reason}")
    if bool(history.loss_test) != has_test:
        raise ValueError("resume with the same test set as the original run (or none if it had none)")
    if not batches.full:
        if not history.batch_state:
            raise ValueError("the history has no mini-batch state to resume from")
        batches.restore(history.batch_state)
    if not history.eval_iterations:           # a record from before eval_every: evaluated at every iteration
        history.eval_iterations = list(range(history.iterations + 1))
    _drop_closing_evaluation(history, eval_every, batches.full)
    return history


def _drop_closing_evaluation(history: History, eval_every: int, full: bool) -> None:
    """Forget the evaluation a finished run made at its last iteration only because it was the last (not a
    multiple of ``eval_every``): the run goes on, and an uninterrupted one made no evaluation there."""
    k = history.iterations
    if k % eval_every == 0 or history.eval_iterations[-1] != k:
        return
    history.eval_iterations.pop()
    if history.loss_test:
        history.loss_test.pop()
    if not full:                              # mini-batch evaluations record the training loss too
        history.loss_train.pop()


def _record(history: History, step, it: Iterate, actual, J_train, weights, radii, elapsed) -> None:
    flags = list(step.flags)
    if it.direction.zero_layers and "zero-layer" not in flags:
        flags.append("zero-layer")
    if J_train is not None:                       # full batch: the training loss comes with the step
        history.loss_train.append(J_train)
    history.tau.append(float(step.tau))
    history.beta.append(it.direction.beta)
    history.predicted.append(float(step.predicted))
    history.actual.append(float(actual))
    history.halvings.append(int(step.halvings))
    history.drift.append(_drift(weights, radii))
    history.seconds.append(elapsed)
    history.flags.append(flags)
    history.record_info(step.info)
