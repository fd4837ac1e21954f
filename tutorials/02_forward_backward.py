"""Tutorial 2 — the forward and backward passes by hand, checked against finite differences.

Run as a script (``python tutorials/02_forward_backward.py``) or open as a notebook with jupytext.
``main(quick=False, outdir="figures")`` regenerates ``tutorial02_gradient_check.png``; ``quick=True`` is the
fast version the test suite runs (a smaller data set).
"""
# %% [markdown]
# # 2. Forward and backward by hand
#
# The network of the paper is a bias-free ReLU multilayer perceptron with a linear output layer,
#
# $$ f(x; W) = W_L\,\sigma\big(W_{L-1}\,\sigma(\cdots \sigma(W_1 x))\big), \qquad \sigma(z) = \max(0, z), $$
#
# with widths $12 \to 25 \to 30 \to 15 \to 3$ (quadrotor state in, aerodynamic force out) and every
# $W_i \in \mathbb{R}^{d_i \times d_{i-1}}$ on its sphere $\|W_i\|_F = \mu_i = 1$
# (`spherenet.NormalisedMLP`). The objective is the full-batch mean squared error
#
# $$ J(W) = \frac{1}{2N} \sum_{n=1}^N \|f(x_n) - y_n\|^2 \qquad \text{(`spherenet.loss`)}. $$
#
# We fit it on simulated quadrotor flights (`spherenet.data.default_problem`) scaled the paper's way
# (`spherenet.data.PaperScaling`): every input row to unit norm, targets by $P_{op}/\max\|y\|$, where
# $P_{op} = \prod_i \|W_i\|_2$ (`spherenet.NormalisedMLP.spectral_norm_product`).

# %%
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import spherenet
from spherenet import sphere
from spherenet.data import PaperScaling, default_problem
from spherenet.plots import save_figure
from spherenet.verify import print_claims, quick_mode

WIDTHS = [12, 25, 30, 15, 3]


def paper_problem(quick):
    """The paper's network at its Glorot-on-the-sphere initialisation and scaled training data."""
    # Quick mode: fewer, shorter simulated flights (the maths is the same).
    train, _ = (default_problem(seed=0, n_samples=500, flight_duration=5.0) if quick
                else default_problem(seed=0, n_samples=2000))
    net = spherenet.NormalisedMLP(WIDTHS, seed=0)
    X, Y = PaperScaling.fit(train.X, train.Y, net.spectral_norm_product()).transform(train)
    print(f"{net}\nN = {X.shape[0]} training samples, ||x_n|| = 1, P_op = {net.spectral_norm_product():.4f}")
    return net, X, Y


# %% [markdown]
# ## The forward pass and its cache
#
# Samples are rows: $X$ is $N \times d_0$. Layer $i$ computes
#
# $$ Z_i = H_{i-1} W_i^\top, \qquad H_i = \sigma(Z_i), \qquad H_0 = X, \qquad F = Z_L = f(X). $$
#
# The backward pass needs every $H_{i-1}$ (the layer's input) and every $Z_i$ (to know which units
# are active), so the forward pass keeps them: `spherenet.forward_cache` returns a `ForwardCache` with
# lists `H` and `Z` (`H[0] = X`, `Z[i]` is the pre-activation of layer $i+1$ in 0-based Python).

# %%
def show_cache(net, X):
    cache = spherenet.forward_cache(net.weights, X)
    for i, (H, Z) in enumerate(zip(cache.H, cache.Z), start=1):
        active = f"   active units: {np.mean(Z > 0):.0%}" if i < net.depth else "   (linear output)"
        print(f"layer {i}: H_{i - 1} {H.shape} -> Z_{i} {Z.shape}{active}")
    print(f"output F = Z_L {cache.F.shape}; smallest |Z| over the hidden layers: "
          f"{min(np.abs(Z).min() for Z in cache.Z[:-1]):.2e}")
    return cache


# %% [markdown]
# ## The backward pass, derived
#
# Write $E = F - Y$. Then $J = \frac{1}{2N}\|E\|_F^2$ and a small change $\delta F$ changes $J$ by
# $\frac1N\langle E, \delta F\rangle$, so the gradient with respect to the output is
#
# $$ dZ_L := \frac{\partial J}{\partial Z_L} = \frac{F - Y}{N}. $$
#
# Going down one layer: $Z_i = H_{i-1} W_i^\top$ is linear in both factors, so a change $\delta W_i$, $\delta H_{i-1}$
# changes $J$ by
#
# $$ \langle dZ_i, \delta Z_i\rangle
#    = \langle dZ_i, H_{i-1}\,\delta W_i^\top\rangle + \langle dZ_i, \delta H_{i-1} W_i^\top\rangle
#    = \langle dZ_i^\top H_{i-1}, \delta W_i\rangle + \langle dZ_i W_i, \delta H_{i-1}\rangle $$
#
# (move factors around the trace: $\operatorname{tr}(A^\top B C^\top) = \operatorname{tr}(C^\top A^\top B)$).
# Read off the two gradients, and pass the second one through $H_{i-1} = \sigma(Z_{i-1})$ elementwise,
# where $\sigma'$ is the mask $[Z_{i-1} > 0]$:
#
# $$ \nabla_i J = dZ_i^\top H_{i-1}, \qquad dZ_{i-1} = (dZ_i\, W_i) \odot [Z_{i-1} > 0]. $$
#
# That is all: one matrix product for the weight gradient, one for the signal going down, one mask.
# `spherenet.network._backward` is exactly these three lines (with the mask in the Numba kernel
# `spherenet.kernels.relu_mask`); `spherenet.loss_and_grad` validates the input and calls it.
# Here they are written out once more, and compared with the package.

# %%
def backward_by_hand(weights, cache, Y):
    """Return [∇_1 J, ..., ∇_L J] from the three formulas above."""
    dZ = (cache.F - Y) / Y.shape[0]
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = dZ.T @ cache.H[i]                         # ∇_i J = dZ_i^T H_{i-1}
        if i > 0:
            dZ = (dZ @ weights[i]) * (cache.Z[i - 1] > 0)    # dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]
    return grads


def compare_with_package(net, X, Y, cache):
    J, grads = spherenet.loss_and_grad(net.weights, X, Y)
    mine = backward_by_hand(net.weights, cache, Y)
    diff = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(mine, grads))
    print(f"J = {J:.6e};  max |by hand - spherenet.loss_and_grad| / max|grad| = {diff:.1e}")
    return J, grads, diff


# %% [markdown]
# ## Checking the gradient against finite differences
#
# Agreeing with the package proves nothing: both could share a mistake. An **independent** check uses only
# the loss. For a random direction $U = (U_1, \dots, U_L)$ with $\sum_i\|U_i\|_F^2 = 1$, the directional
# derivative must equal the inner product with the gradient (the *dot-product test*):
#
# $$ \frac{J(W + hU) - J(W - hU)}{2h} \;\approx\; \sum_i \langle U_i, \nabla_i J\rangle . $$
#
# Taylor expansion gives a **truncation** error $\frac{h^2}{6}\,J'''$, so it shrinks like $h^2$. But each
# value of $J$ carries a **rounding** error of about $\varepsilon |J|$ ($\varepsilon = 2.2\times10^{-16}$), and
# dividing by $2h$ amplifies it to about $\varepsilon |J| / h$. The total error is V-shaped in $\log h$, with
# its minimum near $h \approx \varepsilon^{1/3} \approx 10^{-5}$ where it is about $\varepsilon^{2/3} \approx 10^{-10}$.
#
# **The ReLU kinks.** $J$ is only piecewise smooth: once $h$ is large enough to switch a unit on or off, the
# difference quotient straddles a kink and its error is no longer $O(h^2)$. With $N$ samples and 70 hidden
# units there are $70N$ pre-activations, and the smallest $|Z|$ printed above says how little room that leaves.
# So we run the test twice: on the 8 samples farthest from any kink (largest $\min|Z|$), where the whole V is
# visible, and on the full batch. For each we also find the largest $h$ on our grid at which no unit changes
# sign — by comparing activation patterns, nothing more.

# %%
STEPS_H = np.logspace(-13, -1, 37)


def random_direction(rng, weights):
    U = [rng.standard_normal(W.shape) for W in weights]
    scale = np.sqrt(sum(sphere.inner(A, A) for A in U))
    return [A / scale for A in U]


def farthest_from_kinks(net, X, Y, n=8):
    """The n samples whose smallest hidden |Z| is largest."""
    cache = spherenet.forward_cache(net.weights, X)
    margin = np.min(np.hstack([np.abs(Z) for Z in cache.Z[:-1]]), axis=1)
    keep = np.argsort(margin)[::-1][:n]
    print(f"{n} samples farthest from the kinks: smallest |Z| = {margin[keep].min():.2e}")
    return X[keep], Y[keep]


def last_h_without_flips(moved, X):
    """Largest h on the grid such that W(h) and W(-h) = moved(±h) have the activation pattern of W(0)."""
    def pattern(weights):
        return np.hstack([Z > 0 for Z in spherenet.forward_cache(weights, X).Z[:-1]])
    base = pattern(moved(0.0))
    ok = [h for h in STEPS_H if all(np.array_equal(pattern(moved(s * h)), base) for s in (1.0, -1.0))]
    return max(ok) if ok else 0.0


def central_difference_errors(loss_at, exact):
    """Relative error of (loss_at(h) - loss_at(-h)) / 2h against exact, for every h in STEPS_H."""
    return np.array([abs((loss_at(h) - loss_at(-h)) / (2 * h) - exact) / abs(exact) for h in STEPS_H])


def euclidean_check(net, X, Y, rng):
    _, grads = spherenet.loss_and_grad(net.weights, X, Y)
    U = random_direction(rng, net.weights)
    exact = sum(sphere.inner(A, G) for A, G in zip(U, grads))

    def moved(h):
        return [W + h * A for W, A in zip(net.weights, U)]

    errors = central_difference_errors(lambda h: spherenet.loss(moved(h), X, Y), exact)
    h_flip = last_h_without_flips(moved, X)
    best = int(np.argmin(errors))
    print(f"<U, grad J> = {exact:+.12e};  best relative error {errors[best]:.1e} at h = {STEPS_H[best]:.0e};  "
          f"no unit flips up to h = {h_flip:.1e}")
    return errors, h_flip


# %% [markdown]
# ## The tie rule $\sigma'(0) = 0$
#
# At $z = 0$ the ReLU has no derivative: from the left the slope is 0, from the right 1. Ties do happen (an input
# with zeros, a weight that is exactly zero), so the code needs a rule. spherenet's rule is that a unit with
# $Z = 0$ is **inactive**: the mask is $[Z > 0]$, not $[Z \ge 0]$ (`spherenet.kernels.relu_mask`; the Taylor jets
# of later tutorials use the same mask). The backward pass then returns the one-sided derivative from the side
# where the tied unit stays off.
#
# To see it, make a tie on purpose: take the input $x = e_a$ (a unit vector) and set the entry $(W_1)_{ja} = 0$,
# so unit $j$ of layer 1 has $Z = 0$ exactly. Perturb that one entry, $U = E_{ja}$: for $h < 0$ the unit stays
# off and $J$ does not change at all; for $h > 0$ it switches on.

# %%
def tie_rule(net, rng, h=1e-6, j=0, a=0):
    W1 = net.weights[0].copy()
    W1[j, a] = 0.0
    weights = [sphere.project(W1, net.radii[0])] + net.weights[1:]     # zero stays zero under scaling
    x = np.zeros((1, WIDTHS[0]))
    x[0, a] = 1.0
    y = rng.standard_normal((1, WIDTHS[-1]))
    assert spherenet.forward_cache(weights, x).Z[0][0, j] == 0.0
    _, grads = spherenet.loss_and_grad(weights, x, y)

    def J_at(s):
        moved = [W.copy() for W in weights]
        moved[0][j, a] += s
        return spherenet.loss(moved, x, y)

    right, left = (J_at(h) - J_at(0)) / h, (J_at(0) - J_at(-h)) / h
    print(f"tied unit: backward gives dJ/dW_1[j,a] = {grads[0][j, a]:+.3e}")
    print(f"one-sided differences: from the inactive side {left:+.3e}, from the active side {right:+.3e}")
    return {"tie_backward": float(grads[0][j, a]), "tie_left": float(left), "tie_right": float(right)}


# %% [markdown]
# ## 1-homogeneity: one number shared by all layers
#
# Without biases, scaling one layer scales the output: $f(x; \dots, cW_i, \dots) = c\, f(x; W)$ for $c > 0$
# (ReLU is positively homogeneous). Differentiate $J$ along $c \mapsto cW_i$ at $c = 1$ (Euler's theorem):
#
# $$ \langle W_i, \nabla_i J\rangle = \frac{1}{N}\sum_n \langle f(x_n) - y_n,\, f(x_n)\rangle
#    \quad\text{for every } i. $$
#
# The right-hand side does not depend on $i$. A backward pass with a wrong layer index or a missing mask
# breaks this at once — a cheap and sharp test. The sum over layers is the $\alpha$ of Algorithm 2
# (`spherenet.direction` returns the per-layer values as `inner_wg` and their sum as `alpha`).

# %%
def homogeneity(net, X, Y, grads):
    F = spherenet.forward(net.weights, X)
    euler = float(np.sum((F - Y) * F)) / X.shape[0]
    values = np.array([sphere.inner(W, G) for W, G in zip(net.weights, grads)])
    for i, v in enumerate(values, start=1):
        print(f"<W_{i}, grad_{i} J> = {v:+.15e}")
    print(f"(1/N) sum <f - y, f> = {euler:+.15e}")
    spread = float((values.max() - values.min()) / abs(euler))
    print(f"relative spread across layers: {spread:.1e}")
    return {"homogeneity_spread": spread, "euler_error": float(np.max(np.abs(values - euler)) / abs(euler))}


# %% [markdown]
# ## The Riemannian gradient and $\beta = -\varphi'(0)$
#
# On the sphere only the tangent part of the gradient matters. Per layer (`spherenet.sphere.rgrad`, which is
# `spherenet.sphere.project_tangent`):
#
# $$ \operatorname{grad}_i = \nabla_i J - \frac{\langle W_i, \nabla_i J\rangle}{\mu_i^2}\, W_i,
#    \qquad \mu_i\|\operatorname{grad}_i\|_F = \sqrt{\mu_i^2\|\nabla_i J\|_F^2 - \langle W_i, \nabla_i J\rangle^2}
#    \quad \text{(`spherenet.sphere.rgrad_norm`)}. $$
#
# The search direction normalises it per layer, $V_i = -\operatorname{grad}_i/\|\operatorname{grad}_i\|_F$,
# and all layers move together along $\Gamma_i(t) = W_i\cos t + \mu_i V_i \sin t$ (tutorial 1). Along this curve,
# $\varphi(t) = J(\Gamma(t))$ has slope
#
# $$ \varphi'(0) = \sum_i \langle \nabla_i J, \mu_i V_i\rangle = -\sum_i \mu_i \|\operatorname{grad}_i\|_F =: -\beta, $$
#
# because $\langle \nabla_i J, V_i\rangle = \langle \operatorname{grad}_i, V_i\rangle$ for a tangent $V_i$.
# `spherenet.direction` computes $V_i$, $\|\operatorname{grad}_i\|$ and $\beta$. We check $\beta$ with a central
# difference of $\varphi$ along the curve — a check on the sphere that never leaves it.

# %%
def riemannian_check(net, X, Y, verbose=True):
    _, grads = spherenet.loss_and_grad(net.weights, X, Y)
    d = spherenet.direction(net.weights, grads, net.radii)
    if verbose:
        for i, (W, G, V, mu) in enumerate(zip(net.weights, grads, d.V, net.radii), start=1):
            identity = sphere.rgrad_norm(W, G, mu) / d.rgrad_norms[i - 1] - 1
            print(f"layer {i}: ||grad_{i}|| = {d.rgrad_norms[i - 1]:.6e}   <W, V> = {sphere.inner(W, V):+.1e}   "
                  f"||V|| - 1 = {sphere.fro(V) - 1:+.1e}   rgrad_norm identity: {identity:+.1e}")

    def on_curve(t):
        return [sphere.curve(W, V, mu, t) for W, V, mu in zip(net.weights, d.V, net.radii)]

    errors = central_difference_errors(lambda t: spherenet.loss(on_curve(t), X, Y), -d.beta)
    h_flip = last_h_without_flips(on_curve, X)
    best = int(np.argmin(errors))
    print(f"beta = {d.beta:.12e};  best relative error of -phi'(0) {errors[best]:.1e} at h = {STEPS_H[best]:.0e};  "
          f"no unit flips up to h = {h_flip:.1e}")
    return errors, h_flip, d


# %%
def gradient_check_figure(checks, path):
    h = STEPS_H
    fig = Figure(figsize=(12, 4.8))
    axes = fig.subplots(1, 2, sharey=True)
    floor = min(min(c["euclid"].min(), c["riem"].min()) for c in checks.values()) / 10
    for ax, (title, c) in zip(axes, checks.items()):
        ax.loglog(h, c["euclid"], "o-", ms=4, color="C0",
                  label=r"Euclidean: $\frac{J(W+hU)-J(W-hU)}{2h}$ vs $\langle U, \nabla J\rangle$")
        ax.loglog(h, c["riem"], "s-", ms=4, color="C3",
                  label=r"on the sphere: $\frac{\varphi(h)-\varphi(-h)}{2h}$ vs $-\beta$")
        ax.loglog(h, c["euclid"][0] * h[0] / h, ":", color="0.2", lw=1.2, label=r"$\propto \varepsilon / h$ (rounding)")
        if c["flip_euclid"] >= 1e-3:      # a kink-free truncation range exists: anchor h^2 on it
            i = int(np.searchsorted(h, c["flip_euclid"]))
            ax.loglog(h, c["euclid"][i] * (h / h[i]) ** 2, "--", color="0.45", lw=1,
                      label=r"$\propto h^2$ (truncation)")
        for key, colour in (("flip_euclid", "C0"), ("flip_riem", "C3")):
            ax.axvline(c[key], color=colour, lw=0.9, ls="-.",
                       label="last $h$ before a unit flips" if key == "flip_euclid" else None)
        ax.set_ylim(floor, 10)
        ax.set_xlabel("finite-difference step $h$")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.4)
    axes[0].set_ylabel("relative error of the derivative")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=3, fontsize=9)
    fig.suptitle("Gradient check: the V of rounding vs truncation, and what the ReLU kinks do to it")
    return _save(fig, path)


_save = save_figure                 # spherenet.plots.save_figure: PNG, 110 dpi, folder made


def _slope(errors, h_lo, h_hi):
    """Least-squares slope of log(error) against log(h) for h in [h_lo, h_hi]."""
    keep = (STEPS_H >= h_lo * (1 - 1e-9)) & (STEPS_H <= h_hi * (1 + 1e-9)) & (errors > 0)
    if keep.sum() < 3:
        return float("nan")          # too few points to fit: the claim that uses it fails
    return float(np.polyfit(np.log(STEPS_H[keep]), np.log(errors[keep]), 1)[0])


def main(quick=False, outdir="figures"):
    """Run the tutorial; return its key numbers, the claims it checks, and the figures it wrote."""
    rng = np.random.default_rng(0)
    print("== the problem ==")
    net, X, Y = paper_problem(quick)
    print("\n== forward cache ==")
    cache = show_cache(net, X)
    print("\n== backward by hand ==")
    J, grads, diff = compare_with_package(net, X, Y, cache)
    numbers = {"loss": J, "hand_vs_package": float(diff)}
    print("\n== dot-product test ==")
    Xk, Yk = farthest_from_kinks(net, X, Y)
    checks = {}
    for title, (Xc, Yc) in {"8 samples far from every kink": (Xk, Yk),
                            f"all N = {X.shape[0]} samples": (X, Y)}.items():
        print(f"-- {title}")
        errors_euclid, flip_euclid = euclidean_check(net, Xc, Yc, rng)
        errors_riem, flip_riem, _ = riemannian_check(net, Xc, Yc, verbose=False)
        checks[title] = {"euclid": errors_euclid, "riem": errors_riem, "flip_euclid": flip_euclid,
                         "flip_riem": flip_riem}
    (small, full) = checks.values()
    # Both tests (Euclidean and on the sphere) must pass: the worse of their best errors.
    numbers |= {"fd_error_small": float(max(small["euclid"].min(), small["riem"].min())),
                "fd_error_full": float(max(full["euclid"].min(), full["riem"].min())),
                "best_h_small": float(STEPS_H[np.argmin(small["euclid"])]),
                "truncation_slope": _slope(small["euclid"], 1e-3, small["flip_euclid"]),
                "rounding_slope": _slope(small["euclid"], 1e-13, 1e-9),
                "h_flip_small": float(small["flip_euclid"]), "h_flip_full": float(full["flip_euclid"])}
    print(f"small batch: slope of the error for h in [1e-3, {small['flip_euclid']:.0e}]: "
          f"{numbers['truncation_slope']:.2f} (theory 2); for h <= 1e-9: {numbers['rounding_slope']:.2f} (theory -1)")
    print("\n== tie rule ==")
    numbers |= tie_rule(net, rng)
    print("\n== 1-homogeneity ==")
    numbers |= homogeneity(net, X, Y, grads)
    print("\n== Riemannian gradient and beta ==")
    errors_riem, _, d = riemannian_check(net, X, Y)
    numbers |= {"beta": d.beta, "beta_error": float(errors_riem.min())}
    figures = [gradient_check_figure(checks, Path(outdir) / "tutorial02_gradient_check.png")]
    claims = {
        "the hand-written backward equals spherenet.loss_and_grad": diff < 1e-13,
        "dot-product tests agree to 1e-8 away from kinks": numbers["fd_error_small"] < 1e-8,
        "dot-product tests agree to 1e-8 on the full batch": numbers["fd_error_full"] < 1e-8,
        "truncation error falls like h^2": abs(numbers["truncation_slope"] - 2) < 0.3,
        "rounding error grows like 1/h": abs(numbers["rounding_slope"] + 1) < 0.5,
        "best step h is near eps^(1/3)": 1e-7 <= numbers["best_h_small"] <= 1e-3,
        "on the full batch units flip at a much smaller h": numbers["h_flip_full"] < numbers["h_flip_small"] / 100,
        "tie rule: backward = derivative from the inactive side = 0":
            numbers["tie_backward"] == 0.0 and numbers["tie_left"] == 0.0,
        "tie rule: the active side differs": abs(numbers["tie_right"]) > 1e-6,
        "<W_i, grad_i J> is the same for every layer": numbers["homogeneity_spread"] < 1e-12,
        "<W_i, grad_i J> = (1/N) sum <f - y, f>": numbers["euler_error"] < 1e-12,
        "beta = -phi'(0) to 1e-8": numbers["beta_error"] < 1e-8,
    }
    print_claims(claims, figures)                 # spherenet.verify.print_claims
    return {"numbers": numbers, "claims": claims, "figures": figures}


if __name__ == "__main__":
    result = main(quick=quick_mode())          # SPHERENET_QUICK=1: the quick version
