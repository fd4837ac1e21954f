"""spherenet's Adam and SGD against PyTorch's, step for step (needs torch; it is not a dependency).

The same initial weights (spherenet's ``init_mlp(..., "pytorch")``, copied into ``torch.nn.Linear`` layers),
the same data and the same loss ``J = 1/(2N) Σ ||f(x) - y||²`` in float64; then ``--steps`` full-batch steps
of ``torch.optim.Adam`` (defaults: betas 0.9, 0.999, eps 1e-8) and of spherenet's ``Adam`` with its
hand-written backward pass, and the same for SGD. After every step the parameters must agree to a relative
``--tolerance`` (``max_k ||p_spherenet - p_torch|| / ||p_torch||`` over the parameter arrays). The trainer
``spherenet.baselines.train_adam``/``train_sgd`` must end at the same parameters as the step loop, and its
recorded losses must equal torch's. It also compares the two initialisations' distributions: PyTorch's
``kaiming_uniform_(a=sqrt(5))`` is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the bias the same.

    python benchmarks/bench_torch_parity.py [--steps 50] [--tolerance 1e-10]

Exit status 1 if any check fails, 0 otherwise (and when torch is missing: it says so and skips).
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from spherenet import baselines as bl
from spherenet.baselines import mlp

WIDTHS = [12, 25, 30, 15, 3]
LR = {"adam": 1e-2, "sgd": 0.1}


def data(N=400, seed=0):
    """Standardised-looking inputs and targets, as the baselines see them."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, WIDTHS[0]))
    Y = np.tanh(X[:, :3] * X[:, 3:6]) + 0.1 * rng.standard_normal((N, WIDTHS[-1]))
    return X, Y


def torch_net(torch, params):
    layers = []
    for i in range(0, len(params), 2):
        W, b = params[i], params[i + 1]
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_run(torch, name, params, X, Y, steps):
    """Parameters (as NumPy) after every step and the loss before every step, torch's way."""
    net = torch_net(torch, params)
    opt = (torch.optim.Adam(net.parameters(), lr=LR[name], betas=(0.9, 0.999), eps=1e-8) if name == "adam"
           else torch.optim.SGD(net.parameters(), lr=LR[name]))
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    after, losses = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(Xt) - Yt) ** 2).sum() / (2 * len(X))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        after.append([p.detach().numpy().copy() for p in net.parameters()])
    return after, losses


def spherenet_run(name, params, X, Y, steps):
    opt = bl.Adam(LR[name]) if name == "adam" else bl.SGD(LR[name])
    after, losses = [], []
    for _ in range(steps):
        J, grads = mlp.mlp_loss_and_grad(params, X, Y)
        params = opt(params, grads).params
        losses.append(J)
        after.append(params)
    return after, losses


def relative(a, b) -> float:
    return max(np.linalg.norm(p - q) / np.linalg.norm(q) for p, q in zip(a, b))


def compare(torch, name, steps, tolerance, seed=0) -> bool:
    X, Y = data(seed=seed)
    params = mlp.init_mlp(WIDTHS, "pytorch", seed=seed)
    ours, our_losses = spherenet_run(name, params, X, Y, steps)
    theirs, their_losses = torch_run(torch, name, params, X, Y, steps)
    diffs = [relative(a, b) for a, b in zip(ours, theirs)]
    trainer = bl.train_adam if name == "adam" else bl.train_sgd
    final, h = trainer(WIDTHS, X, Y, LR[name], iterations=steps, seed=seed)
    trainer_diff = relative(final, ours[-1])
    loss_diff = max(abs(a - b) / abs(b) for a, b in zip(h.loss_train[:-1], their_losses))
    ok = max(diffs) <= tolerance and trainer_diff <= tolerance and loss_diff <= tolerance
    print(f"{name:4s} lr {LR[name]:g}, {steps} full-batch steps, float64, widths {'-'.join(map(str, WIDTHS))}, "
          f"N = {len(X)}: J {their_losses[0]:.4f} -> {their_losses[-1]:.4f}")
    for k in sorted({1, 2, 5, 10, 20, steps} & set(range(1, steps + 1))):
        print(f"  step {k:3d}: max relative parameter difference {diffs[k - 1]:.1e}")
    print(f"  worst over all steps {max(diffs):.1e}; train_{name} vs the step loop {trainer_diff:.1e}; "
          f"its recorded losses vs torch's {loss_diff:.1e} (tolerance {tolerance:g}): {'ok' if ok else 'FAILED'}")
    return ok


def compare_init(torch, fan_in=1000, seed=0) -> bool:
    """Both initialisations are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(fan_in, fan_in, dtype=torch.float64)
    W, b = mlp.init_mlp([fan_in, fan_in], "pytorch", seed=seed)
    bound = 1 / math.sqrt(fan_in)
    rows = {"torch weight": lin.weight.detach().numpy(), "spherenet weight": W,
            "torch bias": lin.bias.detach().numpy(), "spherenet bias": b}
    ok = True
    for label, A in rows.items():
        # U(-a, a): max |A| <= a, std a/sqrt(3); the std of the sample std is about a/sqrt(3)/sqrt(2 n) * 1.1.
        std_err = abs(A.std() * math.sqrt(3) / bound - 1)
        good = np.abs(A).max() <= bound and std_err < 6 * 1.2 / math.sqrt(2 * A.size) + 1e-12
        ok &= bool(good)
        print(f"  {label:16s} max |a| {np.abs(A).max() / bound:.4f} x 1/sqrt(fan_in), "
              f"std {A.std() * math.sqrt(3) / bound:.4f} x 1/sqrt(3 fan_in)  {'ok' if good else 'FAILED'}")
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--tolerance", type=float, default=1e-10)
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare (skipped)")
        return 0
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}")
    ok = all([compare(torch, "adam", args.steps, args.tolerance), compare(torch, "sgd", args.steps, args.tolerance)])
    print("initialisation (fan_in 1000, one 1000 x 1000 layer):")
    ok &= compare_init(torch)
    print("verdict: " + ("spherenet's Adam and SGD equal PyTorch's" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
