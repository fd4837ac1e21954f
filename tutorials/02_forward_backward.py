"""Tutorial 2 — the forward and backward passes by hand, checked against finite differences.

Run it as a script (``SPHERENET_QUICK=1``: the quick version) or open it as a notebook (tutorials/README.md).
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

import spherenet
from spherenet import plots, sphere
from spherenet.data import PaperScaling, default_problem
from spherenet.plots import show
from spherenet.verify import print_claims, quick_mode

QUICK = quick_mode()          # SPHERENET_QUICK=1: fewer, shorter simulated flights (the maths is the same)
FIGURES = Path("figures")
claims = {}                   # statement -> bool, checked as we go and reported by the last cell
rng = np.random.default_rng(0)
WIDTHS = [12, 25, 30, 15, 3]

train_data, _ = (default_problem(seed=0, n_samples=500, flight_duration=5.0) if QUICK
                 else default_problem(seed=0, n_samples=2000))
net = spherenet.NormalisedMLP(WIDTHS, seed=0)          # Glorot on the sphere
X, Y = PaperScaling.fit(train_data.X, train_data.Y, net.spectral_norm_product()).transform(train_data)
print(f"{net}\nN = {X.shape[0]} training samples, ||x_n|| = 1, P_op = {net.spectral_norm_product():.4f}")

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
cache = spherenet.forward_cache(net.weights, X)
for i, (H, Z) in enumerate(zip(cache.H, cache.Z), start=1):
    active = f"   active units: {np.mean(Z > 0):.0%}" if i < net.depth else "   (linear output)"
    print(f"layer {i}: H_{i - 1} {H.shape} -> Z_{i} {Z.shape}{active}")
print(f"output F = Z_L {cache.F.shape}; smallest |Z| over the hidden layers: "
      f"{min(np.abs(Z).min() for Z in cache.Z[:-1]):.2e}")

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


J, grads = spherenet.loss_and_grad(net.weights, X, Y)
mine = backward_by_hand(net.weights, cache, Y)
diff = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(mine, grads))
print(f"J = {J:.6e};  max |by hand - spherenet.loss_and_grad| / max|grad| = {diff:.1e}")
claims["the hand-written backward equals spherenet.loss_and_grad"] = diff < 1e-13

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
# sign — by comparing activation patterns, nothing more. (The figure, with the same test on the sphere, closes the
# tutorial.)

# %%
STEPS_H = np.logspace(-13, -1, 37)


def central_difference_errors(loss_at, exact):
    """Relative error of (loss_at(h) - loss_at(-h)) / 2h against exact, for every h in STEPS_H."""
    return np.array([abs((loss_at(h) - loss_at(-h)) / (2 * h) - exact) / abs(exact) for h in STEPS_H])


def last_h_without_flips(moved, X):
    """Largest h on the grid such that moved(h) and moved(-h) have the activation pattern of moved(0)."""
    def pattern(weights):
        return np.hstack([Z > 0 for Z in spherenet.forward_cache(weights, X).Z[:-1]])
    base = pattern(moved(0.0))
    ok = [h for h in STEPS_H if all(np.array_equal(pattern(moved(s * h)), base) for s in (1.0, -1.0))]
    return max(ok) if ok else 0.0


def slope(errors, h_lo, h_hi):
    """Least-squares slope of log(error) against log(h) for h in [h_lo, h_hi] (nan: too few points)."""
    keep = (STEPS_H >= h_lo * (1 - 1e-9)) & (STEPS_H <= h_hi * (1 + 1e-9)) & (errors > 0)
    return float(np.polyfit(np.log(STEPS_H[keep]), np.log(errors[keep]), 1)[0]) if keep.sum() >= 3 else np.nan


margin = np.min(np.hstack([np.abs(Z) for Z in cache.Z[:-1]]), axis=1)      # each sample's smallest |Z|
far = np.argsort(margin)[::-1][:8]
print(f"8 samples farthest from the kinks: smallest |Z| = {margin[far].min():.2e}")
batches = {"8 samples far from every kink": (X[far], Y[far]), f"all N = {X.shape[0]} samples": (X, Y)}
checks = {}
for title, (Xc, Yc) in batches.items():
    _, grads_c = spherenet.loss_and_grad(net.weights, Xc, Yc)
    U = [rng.standard_normal(W.shape) for W in net.weights]
    U = [A / np.sqrt(sum(sphere.inner(B, B) for B in U)) for A in U]          # sum_i ||U_i||^2 = 1
    exact = sum(sphere.inner(A, G) for A, G in zip(U, grads_c))

    def moved(h, Xc=Xc, U=U):
        return [W + h * A for W, A in zip(net.weights, U)]

    errors = central_difference_errors(lambda h: spherenet.loss(moved(h), Xc, Yc), exact)
    checks[title] = {"euclid": errors, "flip_euclid": last_h_without_flips(moved, Xc)}
    print(f"-- {title}\n<U, grad J> = {exact:+.12e};  best relative error {errors.min():.1e} at h = "
          f"{STEPS_H[np.argmin(errors)]:.0e};  no unit flips up to h = {checks[title]['flip_euclid']:.1e}")
small, full = checks.values()
truncation_slope = slope(small["euclid"], 1e-3, small["flip_euclid"])
rounding_slope = slope(small["euclid"], 1e-13, 1e-9)
print(f"small batch: slope of the error for h in [1e-3, {small['flip_euclid']:.0e}]: "
      f"{truncation_slope:.2f} (theory 2); for h <= 1e-9: {rounding_slope:.2f} (theory -1)")
claims["truncation error falls like h^2"] = abs(truncation_slope - 2) < 0.3
claims["rounding error grows like 1/h"] = abs(rounding_slope + 1) < 0.5
claims["best step h is near eps^(1/3)"] = 1e-7 <= STEPS_H[np.argmin(small["euclid"])] <= 1e-3
claims["on the full batch units flip at a much smaller h"] = full["flip_euclid"] < small["flip_euclid"] / 100

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
h, j, a = 1e-6, 0, 0
W1 = net.weights[0].copy()
W1[j, a] = 0.0
tied = [sphere.project(W1, net.radii[0])] + net.weights[1:]     # zero stays zero under scaling
x = np.zeros((1, WIDTHS[0]))
x[0, a] = 1.0
y = rng.standard_normal((1, WIDTHS[-1]))
assert spherenet.forward_cache(tied, x).Z[0][0, j] == 0.0
_, grads_tied = spherenet.loss_and_grad(tied, x, y)


def J_at(s):
    moved = [W.copy() for W in tied]
    moved[0][j, a] += s
    return spherenet.loss(moved, x, y)


right, left = (J_at(h) - J_at(0)) / h, (J_at(0) - J_at(-h)) / h
print(f"tied unit: backward gives dJ/dW_1[j,a] = {grads_tied[0][j, a]:+.3e}")
print(f"one-sided differences: from the inactive side {left:+.3e}, from the active side {right:+.3e}")
claims["tie rule: backward = derivative from the inactive side = 0"] = grads_tied[0][j, a] == 0.0 and left == 0.0
claims["tie rule: the active side differs"] = abs(right) > 1e-6

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
F = spherenet.forward(net.weights, X)
euler = float(np.sum((F - Y) * F)) / X.shape[0]
values = np.array([sphere.inner(W, G) for W, G in zip(net.weights, grads)])
for i, v in enumerate(values, start=1):
    print(f"<W_{i}, grad_{i} J> = {v:+.15e}")
print(f"(1/N) sum <f - y, f> = {euler:+.15e}")
print(f"relative spread across layers: {(values.max() - values.min()) / abs(euler):.1e}")
claims["<W_i, grad_i J> is the same for every layer"] = (values.max() - values.min()) / abs(euler) < 1e-12
claims["<W_i, grad_i J> = (1/N) sum <f - y, f>"] = np.max(np.abs(values - euler)) / abs(euler) < 1e-12

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
# difference of $\varphi$ along the curve — a check on the sphere that never leaves it — on the same two data sets
# as the dot-product test, and draw both tests side by side.

# %%
def riemannian_check(Xc, Yc, verbose=False):
    """-beta against central differences of phi along the update curve; the largest kink-free h."""
    _, grads_c = spherenet.loss_and_grad(net.weights, Xc, Yc)
    d = spherenet.direction(net.weights, grads_c, net.radii)
    for i, (W, G, V, mu) in enumerate(zip(net.weights, grads_c, d.V, net.radii), start=1):
        identity = sphere.rgrad_norm(W, G, mu) / d.rgrad_norms[i - 1] - 1
        if verbose:
            print(f"layer {i}: ||grad_{i}|| = {d.rgrad_norms[i - 1]:.6e}   <W, V> = {sphere.inner(W, V):+.1e}   "
                  f"||V|| - 1 = {sphere.fro(V) - 1:+.1e}   rgrad_norm identity: {identity:+.1e}")

    def on_curve(t):
        return [sphere.curve(W, V, mu, t) for W, V, mu in zip(net.weights, d.V, net.radii)]

    errors = central_difference_errors(lambda t: spherenet.loss(on_curve(t), Xc, Yc), -d.beta)
    h_flip = last_h_without_flips(on_curve, Xc)
    print(f"beta = {d.beta:.12e};  best relative error of -phi'(0) {errors.min():.1e} at h = "
          f"{STEPS_H[np.argmin(errors)]:.0e};  no unit flips up to h = {h_flip:.1e}")
    return errors, h_flip


for title, (Xc, Yc) in batches.items():
    print(f"-- {title}")
    checks[title]["riem"], checks[title]["flip_riem"] = riemannian_check(Xc, Yc, verbose=Xc is X)
for name, c in (("away from kinks", small), ("on the full batch", full)):
    claims[f"dot-product tests agree to 1e-8 {name}"] = max(c["euclid"].min(), c["riem"].min()) < 1e-8
claims["beta = -phi'(0) to 1e-8"] = full["riem"].min() < 1e-8
show(plots.gradients.gradient_check(checks, STEPS_H, FIGURES / "tutorial02_gradient_check.png"))

# %% [markdown]
# ## Every claim of this tutorial, each checked above where its numbers were computed

# %%
print_claims(claims)
assert all(claims.values()), [claim for claim, ok in claims.items() if not ok]
