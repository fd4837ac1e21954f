"""One Algorithm-1 iteration on the paper's workload: spherenet against straightforward implementations.

    python benchmarks/bench_iteration.py [--repeats 30] [--dtype float64|float32|both] [--stages]

Workload (issue 7): 23,200 x 12 unit-norm inputs through 12-25-30-15-3, full batch. One iteration =
gradient (backward on the cached forward), direction, order-2 jet along the update curve (spherenet: the
first-order jet plus the backward adjoints, ``jets.loss_jet2_adjoint``), the Newton step,
one acceptance evaluation J(Γ(τ)) (a forward pass, reused as the next iteration's forward), the update.

Contenders, timed interleaved in one process (best of --repeats rounds, so a busy machine slows all alike):
* spherenet — the training loop itself (``spherenet.train.train``, one BLAS thread), per-iteration time,
  on one thread and with its samples split over two (``train(..., threads=2)``, ``spherenet.rows``);
* numpy-plain — the same iteration written straightforwardly in NumPy (new arrays everywhere, one product
  per jet coefficient), the baseline the issue quotes;
* torch / jax — the same iteration in PyTorch (autograd + nested forward-mode for κ) and JAX (jit, with
  ``jax.experimental.jet`` for κ), when installed (optional; never needed by the package).

Also printed: the arithmetic (FLOPs), the bytes the products must move, and the floor — the time of the
iteration's matrix products alone, run back to back on preallocated arrays with one BLAS thread.
``--stages`` prints instead where spherenet's iteration spends its time, stage by stage.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from spherenet import NormalisedMLP
from spherenet.train import train

N, WIDTHS = 23_200, (12, 25, 30, 15, 3)


def problem(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, WIDTHS[0]))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)
    Y = (0.03 * rng.normal(size=(N, WIDTHS[-1]))).astype(dtype)
    return NormalisedMLP(WIDTHS, seed=0, dtype=dtype), X, Y


def products_per_layer() -> list[int]:
    """Matrix products per layer in spherenet's iteration: acceptance forward 1; backward 2 (gradient and
    dH, none for the input layer); order-2 jet by the adjoint identity 3 (X V^T alone on the first layer:
    H_1 W^T, H_0 V^T and dZ^T H_1 on the others)."""
    return [1 + 1 + 1] + [1 + 2 + 3] * (len(WIDTHS) - 2)


def flops() -> int:
    """Multiply-adds x 2 of the iteration's products (the rest is O(N d), below 2 % of it)."""
    pairs = zip(WIDTHS[:-1], WIDTHS[1:])
    return sum(k * 2 * N * a * b for k, (a, b) in zip(products_per_layer(), pairs))


def bytes_streamed(itemsize: int) -> int:
    """Bytes the products must move at least: each reads or writes an (N, a) and an (N, b) array once."""
    pairs = zip(WIDTHS[:-1], WIDTHS[1:])
    return sum(k * itemsize * N * (a + b) for k, (a, b) in zip(products_per_layer(), pairs))


# --- spherenet: the real training loop --------------------------------------------------------------------

def spherenet_iteration(net, X, Y, iterations=6, threads=1):
    """The fastest of a few iterations of the training loop, as the loop times them (set-up excluded)."""
    h = train(net.copy(), X, Y, "taylor", iterations, threads=threads)
    return float(np.diff([0.0] + h.seconds).min())


# --- the same iteration, written plainly ------------------------------------------------------------------

def numpy_plain_iteration(weights, radii, X, Y):
    def forward(Ws):
        Hs, Zs = [X], []
        for i, W in enumerate(Ws):
            Zs.append(Hs[-1] @ W.T)
            if i < len(Ws) - 1:
                Hs.append(np.maximum(Zs[-1], 0))
        return Hs, Zs
    Hs, Zs = forward(weights)
    E = Zs[-1] - Y
    dZ, grads = E / N, [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        grads[i] = dZ.T @ Hs[i]
        if i:
            dZ = (dZ @ weights[i]) * (Zs[i - 1] > 0)
    V, beta = [], 0.0
    for W, G, mu in zip(weights, grads, radii):
        g = G - np.vdot(W, G) / mu**2 * W
        n = np.linalg.norm(g)
        V.append(-g / n)
        beta += mu * n
    # jet of order 2: Γ_0 = W, Γ_1 = mu V, Γ_2 = -W/2; Z_k = sum_j H_j Γ_{k-j}^T; H_k = [Z_0 > 0] Z_k
    H = [X, np.zeros_like(X), np.zeros_like(X)]
    for i, (W, Vi, mu) in enumerate(zip(weights, V, radii)):
        G = [W, mu * Vi, -W / 2]
        Z = [sum(H[j] @ G[k - j].T for j in range(k + 1)) for k in range(3)]
        H = Z if i == len(weights) - 1 else [np.where(Z[0] > 0, Z[k], 0) for k in range(3)]
    E0 = H[0] - Y
    kappa = (2 * np.vdot(E0, H[2]) + np.vdot(H[1], H[1])) / N
    tau = beta / kappa if 0 < beta / kappa <= math.pi / 6 else math.pi / 6
    new = [W * math.cos(tau) + mu * Vi * math.sin(tau) for W, Vi, mu in zip(weights, V, radii)]
    Hs, Zs = forward(new)
    return new, float(np.vdot(Zs[-1] - Y, Zs[-1] - Y)) / (2 * N), kappa


# --- the floor: the iteration's matrix products alone -------------------------------------------------------

def gemm_floor(net, X):
    rng = np.random.default_rng(1)
    dt = X.dtype
    pairs = list(zip(WIDTHS[:-1], WIDTHS[1:]))
    ops = []
    for i, (a, b) in enumerate(pairs):
        A, W, out = (rng.normal(size=(N, a)).astype(dt), rng.normal(size=(b, a)).astype(dt),
                     np.empty((N, b), dt))
        G, gout, hout = rng.normal(size=(N, b)).astype(dt), np.empty((b, a), dt), np.empty((N, a), dt)
        ops += [lambda A=A, W=W, out=out: np.matmul(A, W.T, out=out)] * 2          # forward + acceptance
        ops += [lambda G=G, A=A, gout=gout: np.matmul(G.T, A, out=gout)]           # gradient
        if i:
            ops += [lambda G=G, W=W, hout=hout: np.matmul(G, W, out=hout)]         # dH
            ops += [lambda A=A, W=W, out=out: np.matmul(A, W.T, out=out)] * 2      # jet: H_1 W^T, H_0 V^T
            ops += [lambda G=G, A=A, gout=gout: np.matmul(G.T, A, out=gout)]       # jet: dZ^T H_1
        else:
            ops += [lambda A=A, W=W, out=out: np.matmul(A, W.T, out=out)]          # jet: X V1^T
    start = time.perf_counter()
    for op in ops:
        op()
    return time.perf_counter() - start


# --- optional frameworks -------------------------------------------------------------------------------------

def torch_iteration_factory(net, X, Y):
    try:
        import torch
    except ImportError:
        return None
    dt = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    Ws = [torch.from_numpy(W.copy()) for W in net.weights]
    radii = [float(m) for m in net.radii]

    def loss(Wl):
        H = Xt
        for i, W in enumerate(Wl):
            H = H @ W.T
            if i < len(Wl) - 1:
                H = torch.relu(H)
        return ((H - Yt) ** 2).sum() / (2 * N)

    def iteration():
        Wl = [W.clone().requires_grad_(True) for W in Ws]
        J = loss(Wl)
        grads = torch.autograd.grad(J, Wl)
        with torch.no_grad():
            V, beta = [], 0.0
            for W, G, mu in zip(Ws, grads, radii):
                g = G - (W * G).sum() / mu**2 * W
                n = g.norm()
                V.append(-g / n)
                beta += mu * float(n)

        def phi(t):
            return loss([W * torch.cos(t) + mu * Vi * torch.sin(t) for W, Vi, mu in zip(Ws, V, radii)])

        t0 = torch.zeros((), dtype=dt)
        one = torch.ones((), dtype=dt)
        kappa = torch.func.jvp(lambda t: torch.func.jvp(phi, (t,), (one,))[1], (t0,), (one,))[1]
        kappa = float(kappa)
        tau = beta / kappa if 0 < beta / kappa <= math.pi / 6 else math.pi / 6
        with torch.no_grad():
            new = [W * math.cos(tau) + mu * Vi * math.sin(tau) for W, Vi, mu in zip(Ws, V, radii)]
            float(loss(new))
        return kappa
    return iteration


def jax_iteration_factory(net, X, Y):
    try:
        import jax
        import jax.numpy as jnp
        from jax.experimental.jet import jet
    except ImportError:
        return None
    if X.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    radii = tuple(float(m) for m in net.radii)

    def loss(Wl):
        H = Xj
        for i, W in enumerate(Wl):
            H = H @ W.T
            if i < len(Wl) - 1:
                H = jnp.maximum(H, 0)
        return jnp.sum((H - Yj) ** 2) / (2 * N)

    @jax.jit
    def step(Wl):
        J, grads = jax.value_and_grad(loss)(Wl)
        V, norms = [], []
        for W, G, mu in zip(Wl, grads, radii):
            g = G - jnp.vdot(W, G) / mu**2 * W
            n = jnp.linalg.norm(g)
            V.append(-g / n)
            norms.append(mu * n)
        beta = sum(norms)

        def phi(t):
            return loss([W * jnp.cos(t) + mu * Vi * jnp.sin(t) for W, Vi, mu in zip(Wl, V, radii)])

        _, (d1, d2) = jet(phi, (jnp.zeros((), X.dtype),), ((jnp.ones((), X.dtype), jnp.zeros((), X.dtype)),))
        kappa = d2
        t_cr = beta / kappa
        tau = jnp.where((t_cr > 0) & (t_cr <= jnp.pi / 6), t_cr, jnp.pi / 6)
        new = [W * jnp.cos(tau) + mu * Vi * jnp.sin(tau) for W, Vi, mu in zip(Wl, V, radii)]
        return new, loss(new), kappa

    Ws = [jnp.asarray(W) for W in net.weights]

    def iteration():
        new, J, kappa = step(Ws)
        return float(J.block_until_ready()) and float(kappa)
    return iteration


# --- the table ------------------------------------------------------------------------------------------------

def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(dtype, repeats):
    net, X, Y = problem(dtype)

    def one_thread(fn):
        def wrapped():
            with threadpool_limits(1):
                return fn()
        return wrapped

    contenders = {
        "spherenet (train loop, 1 BLAS thread)": (lambda: spherenet_iteration(net, X, Y), False),
        "spherenet, rows on 2 threads": (lambda: spherenet_iteration(net, X, Y, threads=2), False),
        "numpy-plain (1 BLAS thread)": (one_thread(lambda: numpy_plain_iteration(net.weights, net.radii, X, Y)),
                                        True),
        "floor: the products alone (1 thread)": (one_thread(lambda: gemm_floor(net, X)), False),
    }
    for name, factory in (("torch", torch_iteration_factory), ("jax jit+jet", jax_iteration_factory)):
        fn = factory(net, X, Y)
        if fn is not None:
            contenders[f"{name} (its default threads)"] = (fn, True)
    best = dict.fromkeys(contenders, math.inf)
    for fn, _ in contenders.values():
        fn()                                              # warm-up: JIT compilation, first touches
    for _ in range(repeats):                              # interleaved: a busy machine slows all alike
        for name, (fn, wall) in contenders.items():
            best[name] = min(best[name], _timed(fn) if wall else fn())
    sn = best["spherenet (train loop, 1 BLAS thread)"]
    rows = list(best.items())
    f, b = flops(), bytes_streamed(np.dtype(dtype).itemsize)
    print(f"\n{np.dtype(dtype).name}: one Algorithm-1 iteration, N = {N}, widths {'-'.join(map(str, WIDTHS))}, "
          f"{f / 1e9:.3f} GFLOP, at least {b / 1e6:.1f} MB moved by the products")
    print(f"{'implementation':42s} {'ms':>8s} {'vs spherenet':>13s} {'GFLOP/s':>8s} {'GB/s':>6s}")
    for name, t in rows:
        print(f"{name:42s} {1e3 * t:8.2f} {t / sn:12.2f}x {f / t / 1e9:8.1f} {b / t / 1e9:6.1f}")


def stage_table(dtype, repeats) -> None:
    """Where one iteration's time goes: the loop's stages called one by one, as ``train`` calls them."""
    from spherenet.jets import loss_jet2_adjoint
    from spherenet.network import Workspace, _backward, _direction, _forward_cache, _loss_from_output
    from spherenet.steps import Iterate, weights_along
    from spherenet.taylor import safeguarded_step

    net, X, Y = problem(dtype)
    W, radii, ws = net.weights, net.radii, Workspace()
    cache, trial = _forward_cache(W, X, ws.cache("current", W, X)), ws.cache("trial", W, X)
    state = {}

    def backward():
        state["J"], state["grads"] = _backward(W, cache, Y, ws)

    def direction():
        state["d"] = _direction(W, state["grads"], radii)

    def jet():
        d = state["d"]
        state["c"] = loss_jet2_adjoint(cache, W, d.V, radii, X, d.alpha_moving, ws)

    def step():
        c = state["c"].copy()
        c[1] = -state["d"].beta
        state["tau"] = safeguarded_step(c, 2)[0]

    def update():
        it = Iterate(W, radii, X, Y, cache, state["J"], state["grads"], state["d"], state["J"])
        state["W_new"] = weights_along(it, state["tau"])

    def acceptance():
        _loss_from_output(_forward_cache(state["W_new"], X, trial).F, Y)

    stages = {"backward pass (gradients, adjoints)": backward, "direction (float64)": direction,
              "order-2 jet by the adjoint identity": jet, "Newton step": step,
              "new weights on the curve": update, "acceptance forward pass + loss": acceptance}
    best = dict.fromkeys(stages, math.inf)
    with threadpool_limits(1):
        for _ in range(repeats + 1):
            for name, fn in stages.items():
                best[name] = min(best[name], _timed(fn))
    total = sum(best.values())
    print(f"\n{np.dtype(dtype).name}: one iteration by stage (best of {repeats}, 1 BLAS thread)")
    print(f"{'stage':42s} {'ms':>8s} {'share':>7s}")
    for name, t in best.items():
        print(f"{name:42s} {1e3 * t:8.2f} {t / total:7.1%}")
    print(f"{'sum':42s} {1e3 * total:8.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    p.add_argument("--stages", action="store_true", help="only the table of time by stage")
    args = p.parse_args()
    blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, BLAS {blas}, "
          f"numpy {np.__version__}")
    for dtype in ((np.float64, np.float32) if args.dtype == "both" else (np.dtype(args.dtype).type,)):
        if args.stages:
            stage_table(dtype, args.repeats)
        else:
            run(dtype, args.repeats)


if __name__ == "__main__":
    main()
