"""Tutorial 1 — the sphere: tangent space, exponential map vs retraction, and why norms never drift.

Run as a script (``python tutorials/01_sphere.py``) or open as a notebook with jupytext.
``main(quick=False, outdir="figures")`` regenerates ``tutorial01_*.png``; ``quick=True`` is the fast
version the test suite runs.
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
from matplotlib.figure import Figure

from spherenet import sphere
from spherenet.plots import save_figure
from spherenet.verify import print_claims, quick_mode

MU = 2.0
SHAPE = (15, 30)          # the shape of the paper network's third weight matrix


def random_point(rng, shape=SHAPE, mu=MU):
    """A random point of S(mu): a Gaussian matrix projected onto the sphere."""
    return sphere.project(rng.standard_normal(shape), mu)


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
def tangent_space(rng):
    W = random_point(rng)
    Z = rng.standard_normal(SHAPE)
    xi = sphere.project_tangent(W, Z, MU)
    cosine = sphere.inner(W, xi) / (MU * sphere.fro(xi))
    idempotence = sphere.fro(sphere.project_tangent(W, xi, MU) - xi) / sphere.fro(xi)
    print(f"||W||_F = {sphere.fro(W):.17g}   (mu = {MU})")
    print(f"<W, Proj_W(Z)> / (mu ||Proj_W(Z)||) = {cosine:.2e}")
    print(f"||Proj_W(Proj_W(Z)) - Proj_W(Z)|| / ||Proj_W(Z)|| = {idempotence:.2e}")
    return {"tangent_cosine": abs(cosine), "idempotence": idempotence}


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
def unit_tangent(rng, W, mu=MU):
    """A random unit tangent at W: project a Gaussian matrix, then normalise."""
    xi = sphere.project_tangent(W, rng.standard_normal(W.shape), mu)
    return xi / sphere.fro(xi)


def update_curve(rng):
    W = random_point(rng)
    V = unit_tangent(rng, W)
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
    return {"curve_norm_error": norm_err, "curve_vs_exp": exp_err, "dist_error": dist_err}


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
def retraction_gap(rng, quick):
    W = random_point(rng)
    V = unit_tangent(rng, W)
    t = np.logspace(-3, np.log10(0.5), 12 if quick else 30)
    gap = np.array([sphere.fro(sphere.curve(W, V, MU, s) - sphere.retract(W, s * MU * V, MU)) for s in t])
    closed_form = 2 * MU * np.sin((t - np.arctan(t)) / 2)
    small = t <= 0.05                      # fit where the t^3 term dominates the O(t^5) one
    slope = float(np.polyfit(np.log(t[small]), np.log(gap[small]), 1)[0])
    closed_form_err = float(np.max(np.abs(gap - closed_form) / closed_form))
    print(f"log-log slope of ||Gamma(t) - R_W(t mu V)|| for t <= 0.05: {slope:.4f}   (theory: 3)")
    print(f"max relative gap from 2 mu sin((t - arctan t)/2): {closed_form_err:.2e}")
    print(f"at t = {t[0]:.0e}: gap / (mu t^3 / 3) = {gap[0] / (MU * t[0] ** 3 / 3):.6f}")
    return t, gap, {"slope": slope, "closed_form_error": closed_form_err}


def retraction_figure(t, gap, slope, path):
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.subplots()
    ax.loglog(t, gap, "o", color="C0", label=r"measured $\|\Gamma(t) - R_W(t\mu V)\|_F$")
    ax.loglog(t, 2 * MU * np.sin((t - np.arctan(t)) / 2), "-", color="C1", lw=1.2,
              label=r"$2\mu\sin\frac{t-\arctan t}{2}$ (exact)")
    ax.loglog(t, MU * t**3 / 3, "--", color="k", lw=1, zorder=3, label=r"$\mu t^3/3$ (slope 3)")
    ax.set_xlabel(r"step angle $t$ [rad]")
    ax.set_ylabel("distance between the two updates")
    ax.set_title(f"Exponential map vs projective retraction (fitted slope {slope:.3f})")
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.12)
    ax.legend(loc="upper left")
    return _save(fig, path)


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
def norm_drift(rng, steps, t_range=(0.005, 0.015)):
    W0 = random_point(rng)
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
    return drift, predicted, {"drift_curve": float(drift["curve"].max()),
                              "drift_retraction": float(drift["retraction"].max()),
                              "drift_euclidean": float(drift["euclidean"][-1]),
                              "euclidean_prediction_error": euclid_err}


def drift_figure(drift, predicted, t_range, path):
    eps, floor = np.finfo(float).eps, 1e-17
    k = np.arange(1, len(drift["curve"]) + 1)
    fig = Figure(figsize=(6.8, 4.6))
    ax = fig.subplots()
    styles = {"euclidean": ("C3", r"Euclidean $W - \eta G$"), "retraction": ("C2", r"retraction $R_W(t\mu V)$"),
              "curve": ("C0", r"update curve $\Gamma(t)$, never re-projected")}
    for name, (colour, label) in styles.items():
        # Running maximum: the worst drift so far (a log axis cannot show the exact zeros).
        ax.loglog(k, np.maximum(np.maximum.accumulate(drift[name]), floor), color=colour, lw=1.6, label=label)
    ax.loglog(k, predicted, ":", color="k", lw=1.2, label=r"$\sqrt{1 + \sum_{j \leq k} t_j^2} - 1$")
    ax.loglog(k, eps * k, "-.", color="0.5", lw=1, label=r"$\varepsilon k$ (rounding, worst case)")
    ax.loglog(k, eps * np.sqrt(k), "--", color="0.5", lw=1, label=r"$\varepsilon\sqrt{k}$ (rounding, random walk)")
    ax.set_ylim(floor / 2, 1)
    ax.set_xlabel("step $k$")
    ax.set_ylabel(r"largest $|\,\|W\|_F - \mu\,| / \mu$ so far")
    ax.set_title(f"Norm drift over {len(k):,} random steps, angles $t_k \\in$ [{t_range[0]}, {t_range[1]}]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center right", fontsize=8.5)
    return _save(fig, path)


# %% [markdown]
# ## A picture on $S^2$
#
# A $1\times 3$ matrix with $\mu = 1$ is a point of the ordinary unit sphere $S^2$. On the left, the tangent
# plane at $W$, the geodesic $\Gamma(t)$ and the retraction path $R_W(t\mu V)$ for the same parameter values
# $t = 0.25, 0.5, \dots$ On the right, the plane spanned by $W$ and $V$, which contains all three paths:
# the Euclidean point $W + t\mu V$ runs along the tangent line, the retraction pulls it back along the ray
# to the origin — landing at angle $\arctan t$ — while the geodesic has turned by the full angle $t$.

# %%
def sphere_picture(path, T=1.25):
    W = sphere.project(np.array([[-0.35, -0.3, 0.9]]), 1.0)
    V = sphere.project_tangent(W, np.array([[1.0, 0.2, -0.3]]), 1.0)
    V /= sphere.fro(V)
    ts = np.arange(0.25, T + 1e-9, 0.25)
    arc = np.array([sphere.curve(W, V, 1.0, s)[0] for s in np.linspace(0, T, 100)])
    geo = np.array([sphere.curve(W, V, 1.0, s)[0] for s in ts])
    ret = np.array([sphere.retract(W, s * V, 1.0)[0] for s in ts])

    fig = Figure(figsize=(12, 5.4))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax3.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.75", lw=0.4)
    N = np.cross(W[0], V[0])                # second tangent direction at W
    a, b = np.meshgrid(np.linspace(-0.3, T + 0.1, 2), np.linspace(-0.45, 0.45, 2))
    plane = W[0][:, None, None] + a * V[0][:, None, None] + b * N[:, None, None]
    ax3.plot_surface(*plane, color="C1", alpha=0.18, shade=False)
    line = W[0] + np.outer([0, T], V[0])
    ax3.plot(*line.T, color="C1", lw=1.5, label=r"tangent line $W + t\mu V$")
    for p_ret, s in zip(ret, ts):
        ray = np.array([p_ret, W[0] + s * V[0]])
        ax3.plot(*ray.T, color="C2", lw=0.7, ls="--")
    ax3.plot(*arc.T, color="C0", lw=2.5, label=r"geodesic $\Gamma(t)$, angle $t$")
    ax3.scatter(*geo.T, color="C0", s=28, depthshade=False)
    ax3.scatter(*ret.T, color="C2", marker="s", s=28, depthshade=False,
                label=r"retraction $R_W(t\mu V)$, angle $\arctan t$")
    ax3.scatter(*(W[0] + np.outer(ts, V[0])).T, color="C1", s=14, depthshade=False)
    ax3.scatter(*W[0], color="k", s=40, depthshade=False)
    ax3.text(*(W[0] + np.array([0, 0, 0.1])), "$W$", fontsize=12)
    ax3.set_box_aspect((1, 1, 1))
    ax3.set_xlim(-0.9, 0.9), ax3.set_ylim(-0.9, 0.9), ax3.set_zlim(-0.9, 0.9)
    ax3.view_init(elev=15, azim=-70)
    ax3.set_axis_off()
    ax3.set_title(r"$S^2$ ($1\times 3$ matrices, $\mu = 1$) and the tangent plane at $W$")
    ax3.legend(loc="lower left", fontsize=8.5)

    ax = fig.add_subplot(1, 2, 2)              # coordinates: x along mu V, y along W
    phi = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(phi), np.sin(phi), color="0.6", lw=1)
    ax.axhline(1.0, color="C1", lw=1.5, label=r"tangent line $W + t\mu V$")
    for i, s in enumerate(ts):
        ax.plot([0, s], [0, 1], color="C2", lw=0.6, ls="--")
        ax.plot(s, 1, "o", color="C1", ms=4)
        ax.plot(np.sin(np.arctan(s)), np.cos(np.arctan(s)), "s", color="C2", ms=5,
                label="retraction, angle $\\arctan t$" if i == 0 else None)
        ax.plot(np.sin(s), np.cos(s), "o", color="C0", ms=5, label="geodesic, angle $t$" if i == 0 else None)
        ax.annotate(f"{s:g}", (s, 1), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.plot(np.sin(np.linspace(0, T, 100)), np.cos(np.linspace(0, T, 100)), color="C0", lw=2)
    ax.plot(0, 1, "ko")
    ax.annotate("$W$", (0, 1), textcoords="offset points", xytext=(-14, 4))
    ax.plot([0, 0], [0, 1], color="k", lw=0.8)
    ax.plot(0, 0, "k+")
    ax.set_aspect("equal")
    ax.set_xlim(-0.25, T + 0.15)
    ax.set_ylim(-0.1, 1.25)
    ax.set_xlabel(r"component along $\mu V$")
    ax.set_ylabel(r"component along $W$")
    ax.set_title(r"The plane of $W$ and $V$: same circle, different speed")
    ax.legend(loc="lower left", fontsize=8.5)
    return _save(fig, path)


# %%
_save = save_figure                 # spherenet.plots.save_figure: PNG, 110 dpi, folder made


def main(quick=False, outdir="figures"):
    """Run the tutorial; return its key numbers, the claims it checks, and the figures it wrote."""
    rng = np.random.default_rng(0)
    outdir = Path(outdir)
    print("== tangent space ==")
    numbers = tangent_space(rng)
    print("\n== the update curve ==")
    numbers |= update_curve(rng)
    print("\n== exponential map vs retraction ==")
    t, gap, found = retraction_gap(rng, quick)
    numbers |= found
    print("\n== norm drift ==")
    steps = 1_000 if quick else 10_000
    t_range = (0.005, 0.015)
    drift, predicted, found = norm_drift(rng, steps, t_range)
    numbers |= found
    figures = [retraction_figure(t, gap, numbers["slope"], outdir / "tutorial01_retraction.png"),
               drift_figure(drift, predicted, t_range, outdir / "tutorial01_norm_drift.png"),
               sphere_picture(outdir / "tutorial01_sphere.png")]
    claims = {
        "Proj_W(Z) is orthogonal to W": numbers["tangent_cosine"] < 1e-14,
        "Proj_W is idempotent": numbers["idempotence"] < 1e-14,
        "||Gamma(t)||_F = mu": numbers["curve_norm_error"] < 1e-14,
        "Gamma(t) = Exp_W(t mu V)": numbers["curve_vs_exp"] < 1e-14,
        "dist(W, Gamma(t)) = mu t": numbers["dist_error"] < 1e-10,
        "||Gamma(t) - R_W(t mu V)|| has log-log slope 3": abs(numbers["slope"] - 3) < 0.02,
        "||Gamma(t) - R_W(t mu V)|| = 2 mu sin((t - arctan t)/2)": numbers["closed_form_error"] < 1e-6,
        "the curve's norm drift stays at rounding level":
            numbers["drift_curve"] < 10 * np.finfo(float).eps * np.sqrt(steps),
        "the retraction's norm drift stays at rounding level": numbers["drift_retraction"] < 1e-14,
        "the Euclidean norm grows as mu sqrt(1 + sum t_k^2)": numbers["euclidean_prediction_error"] < 1e-9,
    }
    print_claims(claims, figures)                 # spherenet.verify.print_claims
    return {"numbers": numbers, "claims": claims, "figures": figures}


if __name__ == "__main__":
    result = main(quick=quick_mode())          # SPHERENET_QUICK=1: the quick version
