"""Where does `geo-batch` lose to unconstrained Adam on long mini-batch runs? Test RMSE after the same steps.

    python benchmarks/bench_batch_gap.py [--steps 5000] [--seed 1] [--samples 30000] [--budget 47409]

One problem (the simulator's default data at ``--samples``, random split, the standard scaling at the budget
``K = --budget``), batch 1024, float64, one thread; every variant is printed with its test RMSE [N] at ten
points of the run. Variants (docs/beyond.md §7, "What the gap is not"):

* ``geo-batch``, and with its averaged Newton step multiplied by 0.3, 0.5 and 3;
* Adam's direction on the spheres at a fixed rate (``t = rate * speed``: every weight moves ``rate`` times
  Adam's step), rates 1e-3, 3e-3, 1e-2;
* ``geo-batch`` at the budgets K/3, 2K and 3K, and with the ``fan`` and ``agd`` radii;
* ``geo-batch`` with spectrally normalised layers (``norm="spectral"``, docs/beyond.md §8) at K/32, K/16, K/8;
* with PyTorch installed: Adam on the same spheres as weight normalisation ``W_i = mu_i V_i/||V_i||`` (lr
  1e-3, 1e-2), with an extra learnable output gain in (0, 1), Adam on spectrally normalised layers
  ``W_i = c V_i/||V_i||_2`` (exact norms, lr 1e-2) at K/16 and K/8, and unconstrained Adam on the bias-free MLP
  with a constant input feature (standardised data, lr 1e-2), also with its Frobenius product projected onto
  K, 2K, 4K and 8K after every step.

Every row ends with the certificate of the network it ends at, ``prod_i ||W_i||_2`` in physical units
(newtons per unit of the raw features' norm; for unconstrained Adam also the Frobenius product ``prod_i
||W_i||_F``, the bound the paper's spheres certify), so rows compare at equal certificates.
"""
from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from spherenet.beyond.directions import AdamDirection
from spherenet.beyond.geodesic import Geodesic
from spherenet.beyond.stochastic import BatchGeodesicStep
from spherenet.experiments import fit_scaling, load_problem, network_widths, scaled_arrays, settings_for
from spherenet.network import NormalisedMLP
from spherenet.steps import Step
from spherenet.train import train, trained_network

BATCH = 1024


class ScaledStep(BatchGeodesicStep):
    """``geo-batch`` with its averaged Newton step multiplied by ``factor`` (still at most ``eps``)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def model_step(self) -> float:
        return min(self.factor * super().model_step(), self.eps)


class FixedRate:
    """Adam's direction on the spheres with a fixed rate: ``t = rate * speed``, no check."""
    name, uses_adjoints = "adam-sphere-fixed", False

    def __init__(self, rate: float):
        self.rate, self.direction = rate, AdamDirection()

    def reset(self):
        self.direction.reset()

    def __call__(self, it):
        D, _ = self.direction(it.weights, it.grads, it.radii)
        curve = Geodesic(it.weights, D, it.radii)
        t = min(self.rate * curve.speed, np.pi / 6)
        J, weights, cache = it.loss_at(curve.point(t))
        return Step(t, weights, cache, J)


def problem(samples: int, seed: int, K: float, radius="unit"):
    s = settings_for(data="sim", n_samples=samples, method="geo-batch", seed=seed, lipschitz=K, batch_size=BATCH,
                     dtype="float64")
    tr, te = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    net = NormalisedMLP(network_widths(s), radius=radius, seed=seed)
    scaling = fit_scaling(s, tr, net)
    arrays, _ = scaled_arrays(tr, te, net, np.float64, scaling)
    return net, scaling, arrays, (tr, te)


def sphere_run(rule, args, K=None, radius="unit", norm="frobenius") -> tuple[list, float]:
    """Test RMSE [N] at every tenth of the run, and the certificate ``K prod_i ||W_i||_2 / prod_i mu_i`` of the
    network it ends at (of the normalised weights with ``norm="spectral"``: ``K`` itself)."""
    K = K or args.budget
    net, scaling, (X, Y, Xt, Yt), _ = problem(args.samples, args.seed, K, radius)
    h = train(net, X, Y, rule, args.steps, Xt, Yt, batch_size=BATCH, seed=args.seed, eval_every=args.steps // 10,
              norm=norm)
    budget = float(np.prod(net.radii))
    net = trained_network(net, h, norm)
    return [float(scaling.rmse_newtons(loss)) for loss in h.loss_test[1:]], K * net.spectral_norm_product() / budget


def torch_runs(args) -> dict:
    import torch
    torch.set_num_threads(1)
    net, scaling, arrays, (tr, te) = problem(args.samples, args.seed, args.budget)
    out = {}
    for lr in (1e-3, 1e-2):
        out[f"weight-normalised Adam, lr {lr:g}"] = _torch_spheres(torch, net, scaling, arrays, lr, False, args)
    out["the same, lr 0.01, with an output gain"] = _torch_spheres(torch, net, scaling, arrays, 1e-2, True, args)
    for m in (1 / 16, 1 / 8):
        net_m, scaling_m, arrays_m, _ = problem(args.samples, args.seed, args.budget * m)
        out[f"spectrally normalised Adam, lr 0.01, budget {args.budget * m:.4g}"] = _torch_spheres(
            torch, net_m, scaling_m, arrays_m, 1e-2, False, args, spectral=True)
    out["unconstrained Adam, lr 0.01"] = _torch_free(torch, tr, te, args)
    for c in (1, 2, 4, 8):
        out[f"the same, Frobenius product projected onto {c:g} K"] = _torch_free(torch, tr, te, args, c * args.budget)
    return out


def _torch_loop(torch, model, params, X, Y, lr, args, rmse, after_step=None) -> list:
    """Adam on ``params`` with PyTorch's defaults and ``lr``: test RMSE [N] at every tenth of the run
    (``after_step()`` after every step, if given)."""
    opt = torch.optim.Adam(params, lr=lr)
    generator, k, curve = torch.Generator().manual_seed(args.seed), 0, []
    while k < args.steps:
        order = torch.randperm(len(X), generator=generator)
        for b in range(0, len(X) - BATCH + 1, BATCH):
            idx = order[b:b + BATCH]
            loss = ((model(X[idx]) - Y[idx]) ** 2).sum() / (2 * BATCH)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            k += 1
            if k % (args.steps // 10) == 0:
                with torch.no_grad():
                    curve.append(rmse())
            if k == args.steps:
                break
    return curve


def _torch_spheres(torch, net, scaling, arrays, lr, gain, args, spectral=False) -> tuple[list, float]:
    """``W_i = mu_i V_i/||V_i||_F`` (weight normalisation onto the spheres; times a gain in (0, 1) if ``gain``),
    or ``mu_i V_i/||V_i||_2`` (``spectral``), trained by Adam on ``V``; the curve and the final certificate."""
    X, Y, Xt, Yt = (torch.tensor(a) for a in arrays)
    V = [torch.tensor(W.copy(), requires_grad=True) for W in net.weights]
    gamma = torch.tensor(4.0, requires_grad=True)                     # sigmoid(4) = 0.98

    def layers():
        return [float(mu) * Vi / (torch.linalg.matrix_norm(Vi, 2) if spectral else Vi.norm())
                for Vi, mu in zip(V, net.radii)]

    def model(x):
        for i, W in enumerate(layers()):
            x = x @ W.T
            x = torch.relu(x) if i < len(V) - 1 else x
        return x * torch.sigmoid(gamma) if gain else x

    def rmse():
        return float(scaling.rmse_newtons(float(((model(Xt) - Yt) ** 2).sum()) / (2 * len(Yt))))
    curve = _torch_loop(torch, model, V + ([gamma] if gain else []), X, Y, lr, args, rmse)
    with torch.no_grad():
        product = np.prod([float(torch.linalg.matrix_norm(W, 2)) for W in layers()])
        product *= float(torch.sigmoid(gamma)) if gain else 1.0
    return curve, scaling.lipschitz * product / float(np.prod(net.radii))


def _torch_free(torch, tr, te, args, cap=None) -> tuple[list, str]:
    """Adam on the bias-free MLP with a constant input feature, on standardised data; the curve, and the
    products of the final layers' spectral and Frobenius norms in physical units (the constant feature's
    column left out: it does not act on the inputs). ``cap``: after every step all layers are scaled by one
    factor so that the Frobenius product (the constant's column included) is at most ``cap`` [N per unit]."""
    mx, sx, my, sy = tr.X.mean(0), tr.X.std(0), tr.Y.mean(0), tr.Y.std(0)

    def inputs(A):
        return torch.tensor(np.hstack([(A - mx) / sx, np.ones((len(A), 1))]), dtype=torch.float32)
    X, Xt, Y = inputs(tr.X), inputs(te.X), torch.tensor((tr.Y - my) / sy, dtype=torch.float32)
    torch.manual_seed(args.seed)
    widths = (X.shape[1], 25, 30, 15, 3)
    layers = [m for a, b in zip(widths[:-1], widths[1:]) for m in (torch.nn.Linear(a, b, bias=False),
                                                                   torch.nn.ReLU())][:-1]
    model = torch.nn.Sequential(*layers)

    def rmse():
        F = model(Xt).numpy().astype(np.float64) * sy + my
        return float(np.sqrt(np.sum((F - te.Y) ** 2) / len(te.Y)))
    linear = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    units = sy.max() / sx.min()

    def project():
        with torch.no_grad():
            product = units * float(np.prod([float(W.norm()) for W in linear]))
            if product > cap:
                for W in linear:
                    W.mul_((cap / product) ** (1 / len(linear)))
    curve = _torch_loop(torch, model, list(model.parameters()), X, Y, 1e-2, args, rmse,
                        after_step=project if cap is not None else None)
    weights = [m.weight.detach().numpy().astype(np.float64) for m in model if isinstance(m, torch.nn.Linear)]
    weights[0] = weights[0][:, :-1]
    spectral = units * np.prod([np.linalg.norm(W, 2) for W in weights])
    return curve, f"{spectral:.0f} (Frobenius product {units * np.prod([np.linalg.norm(W) for W in weights]):.0f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--samples", type=int, default=30000)
    p.add_argument("--budget", type=float, default=47409.0, help="the Lipschitz budget K")
    args = p.parse_args()
    K = args.budget
    variants = {f"geo-batch, step x {f:g}": (lambda f=f: sphere_run(ScaledStep(f), args)) for f in (1, 0.3, 0.5, 3)}
    variants |= {f"Adam's direction on the spheres, rate {r:g}": (lambda r=r: sphere_run(FixedRate(r), args))
                 for r in (1e-3, 3e-3, 1e-2)}
    variants |= {f"geo-batch, budget {K * m:.4g}": (lambda m=m: sphere_run("geo-batch", args, K * m))
                 for m in (1 / 3, 2, 3)}
    variants |= {f"geo-batch, radii {r}": (lambda r=r: sphere_run("geo-batch", args, radius=r)) for r in ("fan", "agd")}
    variants |= {f"geo-batch, spectral layers, budget {K * m:.4g}":
                 (lambda m=m: sphere_run("geo-batch", args, K * m, norm="spectral")) for m in (1 / 32, 1 / 16, 1 / 8)}
    print(f"test RMSE [N] after every tenth of {args.steps} steps, then the final certificate [N per unit]; seed "
          f"{args.seed}, budget {K:g}, batch {BATCH}")
    with threadpool_limits(1):
        for name, run in variants.items():
            _print(name, *run())
        try:
            import torch  # noqa: F401
        except ImportError:
            print("(PyTorch is not installed: its rows are left out)")
            return
        for name, (curve, certified) in torch_runs(args).items():
            _print(name, curve, certified)


def _print(name: str, curve: list, certified) -> None:
    certified = f"{certified:.0f}" if isinstance(certified, float) else certified
    print(f"{name:56s} " + " ".join(f"{e:.3f}" for e in curve) + f"  | {certified}", flush=True)


if __name__ == "__main__":
    main()
