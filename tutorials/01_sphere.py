"""Tutorial 1 — the sphere: tangent space, exponential map vs retraction, and why norms never drift.

Run it as a script (``SPHERENET_QUICK=1``: the quick version) or open it as a notebook (tutorials/README.md).
"""
# %% [markdown]
# # 1. The sphere $S(\mu)$
#
# spherenet keeps every weight matrix $W_i$ of a network on a **Frobenius sphere**
#
# $$ S(\mu) = \{\, W \in \mathbb{R}^{m\times n} : \|W\|_F = \mu \,\}, \qquad
#    \langle A, B\rangle = \operatorname{tr}(A^\top B) = \textstyle\sum_{jk} A_{jk} B_{jk}. $$
#
# The inner product is `spherenet.sphere.inner`, the norm `spherenet.sphere.fro`, and the nearest point
# of the sphere, $W \mapsto \mu W/\|W\|_F$, is `spherenet.sphere.project`.
# A network lives on a *product* of spheres, one per layer; every operation below is applied layer by
# layer, so one matrix is enough to understand all of them.
#
# We use $\mu = 2$ (the paper uses $\mu = 1$) so that every $\mu$ in a formula has to be right.

# %%
from pathlib import Path

import numpy as np

from spherenet import plots, sphere
from spherenet.plots import show
from spherenet.verify import print_claims, quick_mode

QUICK = quick_mode()          # SPHERENET_QUICK=1: the quick version
FIGURES = Path("figures")
claims = {}                   # statement -> bool, checked as we go and reported by the last cell
rng = np.random.default_rng(0)
MU = 2.0
SHAPE = (15, 30)              # the shape of the paper network's third weight matrix


def random_point(shape=SHAPE, mu=MU):
    """A random point of S(mu): a Gaussian matrix projected onto the sphere."""
    return sphere.project(rng.standard_normal(shape), mu)


def unit_tangent(W, mu=MU):
    """A random unit tangent at W: project a Gaussian matrix, then normalise."""
    xi = sphere.project_tangent(W, rng.standard_normal(W.shape), mu)
    return xi / sphere.fro(xi)

# %% [markdown]
# ## The tangent space and the projection onto it
#
# Differentiate $\langle W(t), W(t)\rangle = \mu^2$ along any curve on the sphere: $2\langle W, \dot W\rangle = 0$.
# So the velocities at $W$ form the **tangent space**
#
# $$ T_W S(\mu) = \{\, \xi : \langle W, \xi\rangle = 0 \,\}. $$
#
# Any matrix $Z$ splits into a part along $W$ and a tangent part; the tangent part is the orthogonal projection
#
# $$ \operatorname{Proj}_W(Z) = Z - \frac{\langle W, Z\rangle}{\mu^2}\, W, $$
#
# computed by `spherenet.sphere.project_tangent`. Two properties to check: the result is orthogonal
# to $W$, and projecting twice changes nothing (a projection is idempotent).

# %%
W = random_point()
Z = rng.standard_normal(SHAPE)
xi = sphere.project_tangent(W, Z, MU)
cosine = sphere.inner(W, xi) / (MU * sphere.fro(xi))
idempotence = sphere.fro(sphere.project_tangent(W, xi, MU) - xi) / sphere.fro(xi)
print(f"||W||_F = {sphere.fro(W):.17g}   (mu = {MU})")
print(f"<W, Proj_W(Z)> / (mu ||Proj_W(Z)||) = {cosine:.2e}")
print(f"||Proj_W(Proj_W(Z)) - Proj_W(Z)|| / ||Proj_W(Z)|| = {idempotence:.2e}")
claims["Proj_W(Z) is orthogonal to W"] = abs(cosine) < 1e-14
claims["Proj_W is idempotent"] = idempotence < 1e-14

# %% [markdown]
# ## The update curve is the exponential map
#
# Take a **unit** tangent $V$ ($\|V\|_F = 1$, $\langle W, V\rangle = 0$). The curve spherenet moves along is
#
# $$ \Gamma(t) = W\cos t + \mu V \sin t \qquad \text{(`spherenet.sphere.curve`)}. $$
#
# Because $W \perp V$ and $\|W\| = \mu\|V\|$, Pythagoras gives
# $\|\Gamma(t)\|_F^2 = \mu^2\cos^2 t + \mu^2 \sin^2 t = \mu^2$ for **every** $t$: the curve never leaves the
# sphere. It is the great circle through $W$ with initial velocity $\mu V$, i.e. the exponential map
# $\operatorname{Exp}_W(t\mu V)$ with
#
# $$ \operatorname{Exp}_W(\xi) = \cos\!\big(\tfrac{\|\xi\|}{\mu}\big) W
#    + \mu \sin\!\big(\tfrac{\|\xi\|}{\mu}\big) \frac{\xi}{\|\xi\|} \qquad \text{(`spherenet.sphere.exp_map`)}, $$
#
# and $t$ is the **rotation angle**: the geodesic distance
# $d(W, W') = \mu \arccos\big(\langle W, W'\rangle/\mu^2\big)$ (`spherenet.sphere.dist`) from $W$ to $\Gamma(t)$
# is exactly $\mu t$ for $0 \le t \le \pi$. One angle $t$ therefore means the same thing on every layer's
# sphere — that is why Algorithms 1 and 2 look for a single step angle $\tau$.

# %%
W = random_point()
V = unit_tangent(W)
norm_err = exp_err = dist_err = 0.0
print("   t    ||Gamma(t)|| - mu    dist(W, Gamma(t)) - mu t    ||Gamma(t) - Exp_W(t mu V)||")
for t in (0.1, 0.5, 1.0, 2.0, 3.0):
    G = sphere.curve(W, V, MU, t)
    e_norm = sphere.fro(G) - MU
    e_dist = sphere.dist(W, G, MU) - MU * t
    e_exp = sphere.fro(G - sphere.exp_map(W, t * MU * V, MU))
    print(f"{t:5.1f}   {e_norm:+.2e}            {e_dist:+.2e}                   {e_exp:.2e}")
    norm_err, exp_err = max(norm_err, abs(e_norm) / MU), max(exp_err, e_exp / MU)
    dist_err = max(dist_err, abs(e_dist) / (MU * t))
claims["||Gamma(t)||_F = mu"] = norm_err < 1e-14
claims["Gamma(t) = Exp_W(t mu V)"] = exp_err < 1e-14
claims["dist(W, Gamma(t)) = mu t"] = dist_err < 1e-10

# %% [markdown]
# ## A cheaper alternative: the projective retraction
#
# Many Riemannian optimisers do not follow the geodesic. They step in the ambient space and project back:
#
# $$ R_W(\xi) = \mu\,\frac{W + \xi}{\|W + \xi\|_F} \qquad \text{(`spherenet.sphere.retract`)}. $$
#
# How far is $R_W(t\mu V)$ from $\Gamma(t)$? Since $\|W + t\mu V\| = \mu\sqrt{1+t^2}$,
#
# $$ R_W(t\mu V) = \frac{W + t\mu V}{\sqrt{1+t^2}} = W\cos s + \mu V \sin s, \qquad s = \arctan t. $$
#
# The retraction moves along the **same great circle**, but only to the angle $\arctan t < t$. The chord
# between the two points is therefore
#
# $$ \|\Gamma(t) - R_W(t\mu V)\|_F = 2\mu \sin\frac{t - \arctan t}{2} = \frac{\mu t^3}{3} + O(t^5), $$
#
# a third-order difference: both are *retractions* (they agree to first order), and the projective one even
# agrees to second order — but its step angle is not $t$. We measure the slope on a log-log plot.

# %%
W = random_point()
V = unit_tangent(W)
t = np.logspace(-3, np.log10(0.5), 12 if QUICK else 30)
gap = np.array([sphere.fro(sphere.curve(W, V, MU, s) - sphere.retract(W, s * MU * V, MU)) for s in t])
closed_form = 2 * MU * np.sin((t - np.arctan(t)) / 2)
small = t <= 0.05                      # fit where the t^3 term dominates the O(t^5) one
slope = float(np.polyfit(np.log(t[small]), np.log(gap[small]), 1)[0])
closed_form_err = float(np.max(np.abs(gap - closed_form) / closed_form))
print(f"log-log slope of ||Gamma(t) - R_W(t mu V)|| for t <= 0.05: {slope:.4f}   (theory: 3)")
print(f"max relative gap from 2 mu sin((t - arctan t)/2): {closed_form_err:.2e}")
print(f"at t = {t[0]:.0e}: gap / (mu t^3 / 3) = {gap[0] / (MU * t[0] ** 3 / 3):.6f}")
claims["||Gamma(t) - R_W(t mu V)|| has log-log slope 3"] = abs(slope - 3) < 0.02
claims["||Gamma(t) - R_W(t mu V)|| = 2 mu sin((t - arctan t)/2)"] = closed_form_err < 1e-6
show(plots.sphere.retraction(t, gap, slope, MU, FIGURES / "tutorial01_retraction.png"))

# %% [markdown]
# ## Why norms never drift
#
# In training we take thousands of steps. Three ways to take a step of angle $t$ in a tangent direction $V$:
#
# * **update curve** $W \leftarrow W\cos t + \mu V\sin t$ (`spherenet.sphere.curve`) — never re-projected;
# * **retraction** $W \leftarrow R_W(t\mu V)$ (`spherenet.sphere.retract`) — re-normalised every step;
# * **naive Euclidean step** $W \leftarrow W - \eta G$ with $G = -\mu V$, $\eta = t$ — what plain gradient
#   descent does.
#
# The Euclidean step is the hypotenuse of a right triangle: $G \perp W$, so
# $\|W - \eta G\|^2 = \|W\|^2 + \eta^2\mu^2$, and after steps $t_1, \dots, t_k$
#
# $$ \|W_k\|_F = \mu\sqrt{1 + \textstyle\sum_{j\le k} t_j^2} $$
#
# grows without bound (a *random* $G$ with a component along $W$ would add a random walk on top).
# The curve is exact in exact arithmetic. In floating point each step commits a relative rounding error of
# order $\varepsilon = 2.2\times 10^{-16}$: at worst they add up to $\varepsilon k$, and when the step angles vary
# (as they do in training) their signs are random and the drift is a random walk of size $\approx\varepsilon\sqrt k$.
# (With one *fixed* angle the error of $\cos^2 t + \sin^2 t$ in floating point is the same every step, and
# the drift grows linearly — try it.) Either way it stays around $10^{-14}$ after $10^4$ steps: no
# re-projection is needed. We take random directions and random angles $t_k \in [0.005, 0.015]$.

# %%
steps, t_range = (1_000 if QUICK else 10_000), (0.005, 0.015)
W0 = random_point()
paths = {"curve": W0, "retraction": W0, "euclidean": W0}     # every step makes a new array
drift = {name: np.empty(steps) for name in paths}
angles = rng.uniform(*t_range, size=steps)
for k, t in enumerate(angles):
    Z = rng.standard_normal(SHAPE)              # one random direction, shared by the three paths
    for name, W in paths.items():
        radius = MU if name != "euclidean" else sphere.fro(W)   # tangent to W's own sphere
        V = sphere.project_tangent(W, Z, radius)
        V /= sphere.fro(V)
        if name == "curve":
            W = sphere.curve(W, V, MU, t)
        elif name == "retraction":
            W = sphere.retract(W, t * MU * V, MU)
        else:
            W = W - t * (-MU * V)
        paths[name] = W
        drift[name][k] = abs(sphere.fro(W) - MU) / MU
predicted = np.sqrt(1 + np.cumsum(angles**2)) - 1
euclid_err = float(np.max(np.abs(drift["euclidean"] - predicted) / predicted))
for name in drift:
    print(f"{name:>10}: | ||W|| - mu | / mu after {steps} steps = {drift[name][-1]:.3e}"
          f"   (largest on the way: {drift[name].max():.3e})")
print(f"Euclidean drift predicted by sqrt(1 + sum t_k^2) - 1: {predicted[-1]:.6e} "
      f"(largest relative error on the way {euclid_err:.1e})")
print(f"rounding scales: eps sqrt(k) = {np.finfo(float).eps * np.sqrt(steps):.1e},  eps k = "
      f"{np.finfo(float).eps * steps:.1e}")
claims["the curve's norm drift stays at rounding level"] = \
    drift["curve"].max() < 10 * np.finfo(float).eps * np.sqrt(steps)
claims["the retraction's norm drift stays at rounding level"] = drift["retraction"].max() < 1e-14
claims["the Euclidean norm grows as mu sqrt(1 + sum t_k^2)"] = euclid_err < 1e-9
show(plots.sphere.norm_drift(drift, predicted, t_range, FIGURES / "tutorial01_norm_drift.png"))

# %% [markdown]
# ## A picture on $S^2$
#
# A $1\times 3$ matrix with $\mu = 1$ is a point of the ordinary unit sphere $S^2$. On the left, the tangent
# plane at $W$, the geodesic $\Gamma(t)$ and the retraction path $R_W(t\mu V)$ for the same parameter values
# $t = 0.25, 0.5, \dots$ On the right, the plane spanned by $W$ and $V$, which contains all three paths:
# the Euclidean point $W + t\mu V$ runs along the tangent line, the retraction pulls it back along the ray
# to the origin — landing at angle $\arctan t$ — while the geodesic has turned by the full angle $t$.

# %%
show(plots.sphere.great_circle(FIGURES / "tutorial01_sphere.png"))      # spherenet.plots.sphere.great_circle

# %% [markdown]
# ## Every claim of this tutorial, each checked above where its numbers were computed

# %%
print_claims(claims)
assert all(claims.values()), [claim for claim, ok in claims.items() if not ok]
