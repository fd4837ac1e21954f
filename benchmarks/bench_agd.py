"""Why AGD scored worse than predicting the mean, and what its authors' conventions change (one at a time).

AGD (Bernstein et al. 2023; reference code jxbz/agd) is derived under a *prescription*: inputs with
``||x|| = sqrt(d_0)``, targets with ``||y|| = sqrt(d_L)``, the square loss ``1/(2 d_L N) Σ ||f - y||²``, and a
network whose hidden ReLUs are multiplied by sqrt(2) (their ``architecture/fcn.py``). spherenet used to run
AGD on the paper's scaling (unit-norm input rows, targets ``y P_op / y_max`` ~ 0.04) with the plain network
and ``J = 1/(2N) Σ ||f - y||²``. This script trains AGD on the simulator's default problem (12-25-30-15-3,
200 full-batch iterations) from the old set-up to the authors', changing one convention per row, and prints
test/train RMSE [N] (mean ± std over seeds), the gradient summary ``G`` and step ``η`` at the first and last
iteration, and the references: predicting the training mean, least squares.

    python benchmarks/bench_agd.py [--seeds 3] [--iterations 200] [--samples 30000] [--split random|flights]
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from spherenet import NormalisedMLP, forward
from spherenet import baselines as bl
from spherenet.data import PaperScaling, default_problem

WIDTHS = [12, 25, 30, 15, 3]

# name: (inputs, targets, sqrt(2) after each ReLU, loss averaged over the d_L outputs)
VARIANTS = {
    "before (paper's scaling, plain net, J)": ("unit", "paper", False, False),
    "+ sqrt(2) ReLU gain and 1/d_L loss": ("unit", "paper", True, True),
    "+ standardised targets only": ("unit", "std", False, False),
    "+ standardised inputs only": ("std", "paper", False, False),
    "standardised inputs and targets, plain net, J": ("std", "std", False, False),
    "the authors' conventions (spherenet now)": ("std", "std", True, True),
}


def prepare(train, test, inputs, targets):
    """Arrays, the loss weights that make recorded J physical up to ``unit``, and ``unit`` [N per sqrt(2J)]."""
    std = bl.Standardiser.fit(train.X, train.Y)
    paper = PaperScaling.fit(train.X, train.Y, NormalisedMLP(WIDTHS, seed=0).spectral_norm_product())
    fx = std.transform_inputs if inputs == "std" else paper.transform_inputs
    if targets == "std":
        fy, weights, unit = std.transform_targets, std.loss_weights, 1.0
    else:
        fy, weights, unit = paper.transform_targets, None, paper.y_max / paper.p_op
    return (fx(train.X), fy(train.Y), fx(test.X), fy(test.Y)), weights, unit


def run(variant, seed, data, iterations):
    inputs, targets, gain, per_output = VARIANTS[variant]
    (X, Y, Xt, Yt), weights, unit = prepare(*data, inputs, targets)
    _, h = bl.train_agd(WIDTHS, X, Y, iterations, Xt, Yt, seed=seed, loss_weights=weights,
                        relu_gain=math.sqrt(2) if gain else 1.0, per_output=per_output)
    rmse = lambda J: unit * math.sqrt(2 * J)                            # noqa: E731
    W0 = bl.agd_plain_weights(bl.agd_init(WIDTHS, seed=seed), math.sqrt(2) if gain else 1.0)
    F0 = forward(W0, X)
    return {"f0_rms": float(np.sqrt(np.mean(np.sum(F0 ** 2, 1)))),
            "test": rmse(h.loss_test[-1]), "train": rmse(h.loss_train[-1]), "G": (h.info["G"][0], h.info["G"][-1]),
            "eta": (h.info["eta"][0], h.info["eta"][-1]), "y_rms": float(np.sqrt(np.mean(np.sum(Y ** 2, 1)))),
            "x_rms": float(np.sqrt(np.mean(np.sum(X ** 2, 1))))}


def references(train, test):
    mean = train.Y.mean(axis=0)
    line = bl.fit_linear(train.X, train.Y)
    err = lambda P, Y: math.sqrt(np.mean(np.sum((P - Y) ** 2, axis=1)))    # noqa: E731
    return {"predicting the training mean": (err(np.broadcast_to(mean, test.Y.shape), test.Y),
                                             err(np.broadcast_to(mean, train.Y.shape), train.Y)),
            "least squares with a bias": (err(line(test.X), test.Y), err(line(train.X), train.Y))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--samples", type=int, default=30000)
    p.add_argument("--split", choices=("random", "flights"), default="random",
                   help="random 80/20 (the default of spherenet train) or held-out figure-8 flights")
    args = p.parse_args(argv)
    data = default_problem(seed=0, n_samples=args.samples, split=args.split)
    print(f"AGD on the simulator's default problem, {args.split} split ({len(data[0].Y)} train / "
          f"{len(data[1].Y)} test samples), "
          f"{'-'.join(map(str, WIDTHS))}, {args.iterations} full-batch iterations, seeds 0..{args.seeds - 1}")
    print("| AGD set-up | test RMSE [N] | train RMSE [N] | rms ‖x‖ | rms ‖y‖ | rms ‖f‖ at init | G first → last "
          "| η first → last |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        rows = [run(variant, seed, data, args.iterations) for seed in range(args.seeds)]
        stat = lambda key: f"{np.mean([r[key] for r in rows]):.2f} ± {np.std([r[key] for r in rows]):.2f}"  # noqa: E731
        r0 = rows[0]
        print(f"| {variant} | {stat('test')} | {stat('train')} | {r0['x_rms']:.3g} | {r0['y_rms']:.3g} | "
              f"{r0['f0_rms']:.3g} | {r0['G'][0]:.3g} → {r0['G'][1]:.3g} | {r0['eta'][0]:.3g} → {r0['eta'][1]:.3g} |")
    for name, (test, train) in references(*data).items():
        print(f"| {name} | {test:.2f} | {train:.2f} | | | | | |")
    print("(G, η and the output f at initialisation of seed 0; rms ‖x‖, ‖y‖, ‖f‖ over the training rows as AGD "
          "sees them: the prescription is "
          f"sqrt(d_0) = {math.sqrt(WIDTHS[0]):.3g}, sqrt(d_L) = {math.sqrt(WIDTHS[-1]):.3g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
