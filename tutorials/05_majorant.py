"""Tutorial 5 — Algorithm 2's majorant: where it comes from, how loose it is, and when it fails to bound.

Run as a script (``python tutorials/05_majorant.py``) or open as a notebook with jupytext.
``main(quick=False, outdir="figures")`` regenerates ``tutorial05_*.png``; ``quick=True`` is the fast version
the test suite runs (a smaller simulated data set, fewer training steps, a smaller survey).
"""
# %% [markdown]
# # 5. The majorant of Algorithm 2
#
# Both algorithms of the paper move every layer along the same great circle,
# $\Gamma_i(t) = W_i\cos t + \mu_i V_i \sin t$ (tutorial 1), and differ only in how they choose the angle.
# Algorithm 2 (majorisation–minimisation, "MM") builds a function $m(t)$ that is meant to lie **above** the
# loss change $\varphi(t) - \varphi(0)$, $\varphi(t) = J(\Gamma(t))$, and takes
#
# $$ \tau = \arg\min_{t \in [0, \pi]} m(t) \qquad \text{(`spherenet.majorant.minimise`, golden section)}. $$
#
# If $m(t) \ge \varphi(t) - \varphi(0)$ for all $t$ and $m(0) = 0$, then
# $\varphi(\tau) - \varphi(0) \le m(\tau) \le m(0) = 0$: every step decreases the loss by at least the
# promised $-m(\tau)$, with no line search and no learning rate. The paper's majorant is
#
# $$ m(t) = \alpha(\cos t - 1) - \beta \sin t + \frac{Q}{2}\big(P_1(t) - P_2\big)^2
#    \qquad \text{(`spherenet.majorant.spectral`)}, $$
#
# with $\alpha = \sum_i \langle W_i, \nabla_i J\rangle$, $\beta = \sum_i \mu_i \|\operatorname{grad}_i\|_F$
# (`spherenet.direction`), $Q = \frac1N\sum_n \|x_n\|^2$ (`spherenet.majorant.input_energy`),
# $P_1(t) = \prod_i (\|W_i\|_2 + \|\Delta W_i(t)\|_2)$ (`spherenet.majorant.SpectralMajorant.P1`) and
# $P_2 = \prod_i \|W_i\|_2$. This tutorial derives $m$ in four steps, measuring at each step on a real iterate
# how much is exact and how much is given away; then it draws $m$ against the true loss, measures how
# loose it is, and builds a case where it is **not** an upper bound — the derivation has one step that is an
# assumption, not a theorem.

# %%
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.optimize import minimize_scalar

import spherenet
from spherenet import majorant as mj
from spherenet.data import default_problem
from spherenet.experiments import scaled_arrays
from spherenet.jets import loss_jet
from spherenet.plots.majorant import curve_comparison
from spherenet.taylor import flip_fraction
from spherenet.train import train
from spherenet.plots import save_figure
from spherenet.verify import print_claims, quick_mode

WIDTHS = [12, 25, 30, 15, 3]
NARROW = [4, 6, 1]
T_GRID = np.geomspace(1e-6, math.pi, 200)     # the angles validity() checks by default


def quadrotor_problem(quick):
    """The paper's network at initialisation and its scaled training data (simulated flights)."""
    train_data, test_data = (default_problem(seed=0, n_samples=800, flight_duration=4.0) if quick
                             else default_problem(seed=0))
    net = spherenet.NormalisedMLP(WIDTHS, seed=0)
    (X, Y, _, _), scaling = scaled_arrays(train_data, test_data, net)
    print(f"{net}\nN = {len(X)} training samples, Q = {mj.input_energy(X):.15f}, P_op = {scaling.p_op:.4f}")
    return net, X, Y


def at(weights, radii, X, Y, variant="spectral"):
    """Loss, gradients and the majorant ``variant`` at ``weights``."""
    J, grads = spherenet.loss_and_grad(weights, X, Y)
    return J, grads, mj.VARIANTS[variant](weights, spherenet.direction(weights, grads, radii), radii,
                                          mj.input_energy(X))


def output_change(m, X, t):
    """``Δf(x_n) = f(x_n; Γ(t)) - f(x_n; W)`` for every sample, shape ``(N, d_L)``."""
    return spherenet.forward(m.curve(t), X) - spherenet.forward(m.weights, X)


# %% [markdown]
# ## Step 1: an exact expansion in function space
#
# For the square loss nothing is approximate yet. Write $f = f(x_n; W)$, $\Delta f = f(x_n; W + \Delta W) - f$.
# Since $\|a + b\|^2 = \|a\|^2 + 2\langle a, b\rangle + \|b\|^2$ with $a = f - y_n$, $b = \Delta f$:
#
# $$ J(W + \Delta W) = J(W) + \underbrace{\frac1N \sum_n \langle f(x_n) - y_n, \Delta f(x_n)\rangle}_{
#    \langle \nabla_f J,\ \Delta f\rangle:\ \text{functional first-order term}}
#    + \underbrace{\frac{1}{2N}\sum_n \|\Delta f(x_n)\|^2}_{\text{second-order term}} . $$
#
# This holds for **any** $\Delta W$, however large, and whatever the network does in between. We check it on the
# update curve, $\Delta W_i(t) = \Gamma_i(t) - W_i$ (`spherenet.majorant.Majorant.curve` gives $\Gamma(t)$),
# with the loss computed independently by `spherenet.loss`.

# %%
def exact_expansion(m, X, Y, J, ts):
    F0 = spherenet.forward(m.weights, X)
    worst = 0.0
    print("      t      J(Γ(t)) - J(W)      <∇_f J, Δf> + ||Δf||²/2N     relative difference")
    for t in ts:
        dF = output_change(m, X, t)
        first = float(np.sum((F0 - Y) * dF)) / len(X)
        second = 0.5 * float(np.sum(dF * dF)) / len(X)
        true = spherenet.loss(m.curve(t), X, Y) - J
        rel = abs(true - (first + second)) / abs(true)
        worst = max(worst, rel)
        print(f"{t:9.1e}   {true:+.10e}    {first + second:+.10e}          {rel:.1e}")
    return worst


# %% [markdown]
# ## Step 2: Assumption 1 — the functional first-order term is replaced by the parameter one
#
# The majorant does not know $\Delta f$; it knows the gradients $g_i = \nabla_i J$. The **parameter** first-order
# term along the curve is exact and cheap: since $\Delta W_i(t) = W_i(\cos t - 1) + \mu_i V_i \sin t$ and
# $\langle g_i, \mu_i V_i\rangle = -\mu_i\|\operatorname{grad}_i\|_F$ (tutorial 2),
#
# $$ \sum_i \langle g_i, \Delta W_i(t)\rangle = \alpha(\cos t - 1) - \beta\sin t
#    \qquad \text{(`spherenet.majorant.Majorant.linear`)}. $$
#
# **Assumption 1** (AGD-style, Bernstein et al. 2023) replaces the functional term by this parameter term. For $m$ to
# stay an upper bound what is really needed is $\langle \nabla_f J, \Delta f\rangle \le \sum_i\langle g_i, \Delta W_i\rangle$.
# The two agree to first order in $t$
# (the chain rule), but $\Delta f$ also contains products of the changes of different layers (order $t^2$) and,
# with ReLUs, units that switch on or off along the curve. We measure the **gap**
#
# $$ A(t) = \langle \nabla_f J, \Delta f(t)\rangle - \big(\alpha(\cos t - 1) - \beta \sin t\big), $$
#
# which is exactly what the majorant gets wrong. $A(t) > 0$ is the dangerous sign. (The right panel of the
# failure figure below draws $A(t)$ for this iterate.)

# %%
def parameter_term_check(m, grads, ts):
    """``Σ_i <g_i, Γ_i(t) - W_i>`` summed directly vs ``α(cos t - 1) - β sin t``; worst relative error."""
    worst = 0.0
    for t in ts:
        direct = sum(spherenet.sphere.inner(G, Wt - W) for G, Wt, W in zip(grads, m.curve(t), m.weights))
        worst = max(worst, abs(direct - m.linear(t)) / abs(m.linear(t)))
    print(f"Σ_i <g_i, ΔW_i(t)> vs α(cos t - 1) - β sin t: worst relative difference {worst:.1e}")
    return worst


def decomposition(m, X, Y, ts):
    """Along the curve: the Assumption-1 gap A(t), the second-order term, the penalty, the true change."""
    F0 = spherenet.forward(m.weights, X)
    out = {key: np.empty(len(ts)) for key in ("functional", "second", "true", "flips")}
    cache0 = spherenet.forward_cache(m.weights, X)
    for j, t in enumerate(ts):
        cache = spherenet.forward_cache(m.curve(t), X)
        dF = cache.F - F0
        out["functional"][j] = float(np.sum((F0 - Y) * dF)) / len(X)
        out["second"][j] = 0.5 * float(np.sum(dF * dF)) / len(X)
        out["true"][j] = spherenet.loss(m.curve(t), X, Y) - spherenet.loss(m.weights, X, Y)
        out["flips"][j] = flip_fraction(cache0, cache)
    out["t"], out["linear"], out["penalty"] = ts, m.linear(ts), m.penalty(ts)
    out["gap"] = out["functional"] - out["linear"]              # A(t)
    out["slack"] = out["penalty"] - out["second"]               # S(t): what the penalty gives away
    out["m"] = m(ts)
    flipped = np.flatnonzero(out["flips"] > 0)
    out["t_flip"] = float(ts[flipped[0]]) if flipped.size else math.inf
    return out


def report_gap(d, ts_show):
    print("      t      A(t)           A(t)/|α(cos t-1) - β sin t|   units switched")
    for t in ts_show:
        j = int(np.argmin(np.abs(d["t"] - t)))
        print(f"{d['t'][j]:9.1e}   {d['gap'][j]:+.3e}     {d['gap'][j] / abs(d['linear'][j]):+.2e}"
              f"                  {d['flips'][j]:.2e}")
    print(f"first angle on the grid at which a hidden unit switches: {d['t_flip']:.2e}")


# %% [markdown]
# ## Step 3: the second-order term, bounded layer by layer
#
# The second-order term needs $\|\Delta f(x)\|$. Write the layers as $a_0 = x$, $h_i = W_i a_{i-1}$, $a_i = \sigma(h_i)$,
# primes for the changed weights $W_i + \Delta W_i$, and $s_i = \|W_i\|_2$, $d_i = \|\Delta W_i\|_2$ (spectral norms).
# Because $\sigma$ is 1-Lipschitz with $\sigma(0) = 0$, $\|a_i' - a_i\| \le \|h_i' - h_i\|$ and $\|a_i'\| \le \|h_i'\|$, so
#
# $$ \|h_i' - h_i\| = \|\Delta W_i\, a_{i-1}' + W_i (a_{i-1}' - a_{i-1})\|
#    \le d_i \|a_{i-1}'\| + s_i\|h_{i-1}' - h_{i-1}\|, \qquad \|a_{i-1}'\| \le \textstyle\prod_{j<i}(s_j + d_j)\,\|x\| $$
#
# (for $i = 1$ the last term is 0: the input does not change).
# Unrolling the recursion gives a telescoping sum that collapses to a difference of products:
#
# $$ \|\Delta f(x)\| \le \|x\| \sum_i \Big[\prod_{j>i} s_j\Big] d_i \Big[\prod_{j<i} (s_j + d_j)\Big]
#    = \|x\|\big(P_1(t) - P_2\big) \qquad \text{(`spherenet.majorant.SpectralMajorant.gap`)}. $$
#
# This step is a theorem: it must hold for every sample at every angle. Squaring and averaging,
# $\frac{1}{2N}\sum_n\|\Delta f(x_n)\|^2 \le \frac{Q}{2}(P_1 - P_2)^2$ (`spherenet.majorant.SpectralMajorant.penalty`).
# The spectral norms of $a W_i + b\, \mu_i V_i$ for many angles come from one small eigenvalue problem each
# (`spherenet.majorant.SpectralPencils`). Below: the ratio $\|\Delta f(x_n)\| / (\|x_n\|(P_1 - P_2))$ for every
# sample, and how much of the penalty the second-order term actually uses.

# %%
def layerwise_ratios(m, X, t):
    """Per sample ``||Δf(x_n)|| / (||x_n|| (P_1(t) - P_2))`` and the same with the telescoping bound."""
    dF = output_change(m, X, t)
    size = np.linalg.norm(dF, axis=1) / np.linalg.norm(X, axis=1)
    telescoping = mj.TelescopingMajorant(m.weights, m.direction, m.radii, m.Q)
    return size / m.gap(t)[0], size / telescoping.bound(t)[0]


def report_layerwise(m, X, ts):
    worst_spec = worst_tele = 0.0
    print("      t      ratio: median     max    (telescoping max)   second-order term / penalty")
    for t in ts:
        spec, tele = layerwise_ratios(m, X, t)
        dF = output_change(m, X, t)
        used = 0.5 * float(np.sum(dF * dF)) / len(X) / float(m.penalty(np.array([t]))[0])
        worst_spec, worst_tele = max(worst_spec, spec.max()), max(worst_tele, tele.max())
        print(f"{t:9.1e}         {np.median(spec):.3f}    {spec.max():.3f}       ({tele.max():.3f})"
              f"                  {used:.3f}")
    return worst_spec, worst_tele


# %% [markdown]
# ## Step 4: three penalties, and a closed form
#
# Putting steps 1–3 together: $\varphi(t) - \varphi(0) \le m(t)$ **if Assumption 1 holds**, and the penalty can be
# any upper bound of $\frac{1}{2N}\sum\|\Delta f\|^2$. spherenet has three, ordered
# telescoping $\le$ spectral $\le$ Frobenius for every $t$:
#
# * **telescoping** (`spherenet.majorant.telescoping`): the recursion the other way round, with the exact
#   $\|\Gamma_j(t)\|_2 \le s_j + d_j$ in place of $s_j + d_j$:
#   $\frac Q2\big(\sum_i [\prod_{j>i}\|\Gamma_j(t)\|_2]\, d_i\, [\prod_{j<i} s_j]\big)^2$;
# * **spectral** (`spherenet.majorant.spectral`): the paper's $\frac Q2 (P_1(t) - P_2)^2$;
# * **Frobenius** (`spherenet.majorant.frobenius`): no spectral norm at all, since $s_i \le \|W_i\|_F = \mu_i$ and
#   $d_i \le \|\Delta W_i\|_F = 2\mu_i\sin(t/2)$: $\frac Q2\big(P((1 + 2\sin(t/2))^L - 1)\big)^2$, $P = \prod_i \mu_i$.
#
# Loosening once more, $(1 + 2\sin\frac t2)^L \le e^{Lt}$ and $\alpha(\cos t - 1) - \beta\sin t \approx -\beta t$, gives a model
# $h(t) = -\beta t + \frac Q2 (P(e^{Lt} - 1))^2$ (`spherenet.majorant.closed_form_model`) whose minimiser is explicit
# (set $x = e^{Lt}$: $h'(t) = 0 \iff x^2 - x = \beta/(P^2QL)$):
#
# $$ \tau = \frac1L \log\frac{1 + \sqrt{1 + 4\beta/(P^2 Q L)}}{2} \qquad \text{(`spherenet.majorant.closed_form_step`)}, $$
#
# the step of AGD (Bernstein et al. 2023) transplanted to the sphere.
#
# Whatever the penalty, it is of order $t^2$ at $t = 0$, so $m(0) = 0$ and $m'(0) = -\beta = \varphi'(0)$: the
# majorant touches the loss at the current point with the right slope. Its curvature there is
#
# $$ c = m''(0) = -\alpha + Q\Big(\sum_i \Big[\prod_{j\ne i}\|W_j\|_2\Big]\|\mu_i V_i\|_2\Big)^2 $$
#
# (spectral and telescoping), to be compared with the true curvature $\kappa = \varphi''(0) = 2J_2$ from the
# jet (`spherenet.jets.loss_jet`) that Algorithm 1 uses.

# %%
def penalty_order(weights, grads, radii, X):
    built = {name: getattr(mj, name)(weights, grads, radii, X) for name in ("telescoping", "spectral", "frobenius")}
    p = {name: m.penalty(T_GRID) for name, m in built.items()}
    ordered = bool(np.all(p["telescoping"] <= p["spectral"] * (1 + 1e-12))
                   and np.all(p["spectral"] <= p["frobenius"] * (1 + 1e-12)))
    for name, m in built.items():
        tau = mj.minimise(m)[0]
        print(f"{name:>12}: penalty at t = 0.01: {m.penalty(np.array([0.01]))[0]:.3e}   τ = argmin m = {tau:.3e}")
    print(f"telescoping <= spectral <= Frobenius at all {len(T_GRID)} grid angles: {ordered}")
    return built, ordered


def closed_form_check(m, grads, radii, X):
    """The closed-form τ against h'(τ) = 0 by hand and against SciPy's bounded scalar minimiser of h."""
    P, L, Q, beta = float(np.prod(radii)), m.L, m.Q, m.beta
    tau = mj.closed_form_step(m.weights, grads, radii, X)
    x = math.exp(L * tau)
    slope = -beta + Q * P**2 * L * x * (x - 1)          # h'(τ), differentiated by hand
    found = minimize_scalar(lambda t: float(mj.closed_form_model(t, beta, P, Q, L)), bounds=(0.0, 10 * tau),
                            method="bounded", options={"xatol": 1e-10 * tau})
    error = abs(found.x - tau) / tau
    print(f"closed form τ = {tau:.8e};  h'(τ)/β = {slope / beta:+.1e};  SciPy's minimiser of h: {found.x:.8e} "
          f"(relative difference {error:.1e})")
    return tau, max(error, abs(slope / beta))


def touching(m, weights, radii, X, Y):
    """m(0), the one-sided slope m'(0) and curvature m''(0) numerically, the formula for c, and κ."""
    h = 1e-9
    slope = (m(h) - m(0.0)) / h
    U_norms = m.layer_norms(0.0, 1.0)[0]                          # ||mu_i V_i||_2
    others = np.prod(m.norms_W) / m.norms_W                       # prod_{j != i} ||W_j||_2
    c = -m.alpha + m.Q * float(np.sum(others * U_norms)) ** 2
    hc = 1e-4 * m.beta / c
    c_numeric = 2 * (m(hc) + m.beta * math.sin(hc)) / hc**2
    kappa = 2 * loss_jet(weights, m.direction.V, radii, X, Y, 2)[2]
    print(f"m(0) = {m(0.0)!r};  (m(h) - m(0))/h at h = {h:g}: {slope:.10e};  -β = {-m.beta:.10e}")
    print(f"curvature c = m''(0) = {c:.6e} (numerically {c_numeric:.6e});  true κ = φ''(0) = {kappa:.6e};  "
          f"c/κ = {c / kappa:.1f}")
    return {"m0": abs(m(0.0)), "slope_error": abs(slope + m.beta) / m.beta, "c": c,
            "c_error": abs(c_numeric - c) / c, "kappa": kappa}


# %% [markdown]
# ## The picture: majorants against the true loss change
#
# `spherenet.plots.majorant.curve_comparison` evaluates, along the real update curve, the true change
# $\varphi(t) - \varphi(0)$, the order-2 Taylor model $-\beta t + \kappa t^2/2$ of Algorithm 1, the three majorants
# and the step $\tau$ each method takes (Algorithm 1 with its backtracking, `spherenet.taylor.TaylorStep`). We look
# at the first iterate and at a late one (after some hundred MM steps, `spherenet.train.train`). The top row
# shows the scale of the decrease that is available along the curve; the bottom row zooms in on the majorants'
# own minimum.

# %%
def majorant_picture(snapshots, radii, X, Y, path):
    t = np.geomspace(1e-6, math.pi / 6, 150)
    styles = {"spectral": ("C1", "m spectral (paper)"), "telescoping": ("C3", "m telescoping"),
              "frobenius": ("C4", "m Frobenius")}
    markers = {"spectral": "o", "telescoping": "s", "frobenius": "^", "closed form": "D", "Alg. 1": "v"}
    colours = {"spectral": "C1", "telescoping": "C3", "frobenius": "C4", "closed form": "C2", "Alg. 1": "k"}
    fig = Figure(figsize=(12, 8.6), layout="constrained")
    axes = fig.subplots(2, len(snapshots), squeeze=False)
    comparisons = {}
    for col, (title, weights) in enumerate(snapshots.items()):
        c = comparisons[title] = curve_comparison(weights, radii, X, Y, t)
        for row, ax in enumerate(axes[:, col]):
            ax.plot(t, c["true"], color="k", lw=2.2, label=r"true $\varphi(t) - \varphi(0)$")
            ax.plot(t, c["taylor2"], color="C0", ls="--", lw=1.4, label=r"order-2 Taylor $-\beta t + \kappa t^2/2$")
            for variant, (colour, label) in styles.items():
                ax.plot(t, c["m"][variant], color=colour, lw=1.4, label=label)
            for name, tau in c["tau"].items():
                ax.plot([tau], [c["true_at_tau"][name]], ls="none", marker=markers.get(name, "P"), ms=8,
                        mfc="none", mew=1.6, color=colours.get(name, "C5"), label=f"τ {name} (true change there)")
            tau = c["tau"]["spectral"]
            m_tau = float(np.interp(np.log(tau), np.log(t), c["m"]["spectral"]))
            ax.plot([tau, tau], [m_tau, c["true_at_tau"]["spectral"]], color="C1", lw=1, ls=":")
            ax.plot([tau], [m_tau], "o", color="C1", ms=5, label=r"$m(\tau)$: the decrease MM promises")
            ax.axhline(0, color="0.5", lw=0.6)
            ax.set_xscale("log")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
            ax.grid(True, which="major", alpha=0.3)
            ax.set_ylabel("change of the loss $J$")
            if row == 0:
                low = float(np.min(c["true"]))
                ax.set_ylim(1.3 * low, -0.6 * low)
                ax.set_title(f"{title}: all of the curve up to π/6")
            else:
                ax.set_ylim(5.0 * m_tau, -3.0 * m_tau)
                ax.set_xlim(1e-5, 20 * tau)
                ax.set_title(f"{title}: zoom on the majorants' minimum")
                ax.set_xlabel("angle $t$ [rad] (log scale)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8.5)
    return _save(fig, path), comparisons


# %% [markdown]
# ## How loose is it?
#
# `spherenet.majorant.validity` compares $m$ with the true change on 200 angles and reports the **looseness**
# $m(\tau)/(\varphi(\tau) - \varphi(0))$: the decrease promised over the decrease delivered at the majorant's own
# step ($\le 1$ when $m$ bounds). There is a simple prediction. Near $t = 0$,
# $m(t) \approx -\beta t + c t^2/2$ and $\varphi(t) - \varphi(0) \approx -\beta t + \kappa t^2/2$. The majorant's minimiser is
# $\tau \approx \beta/c$ and promises $-\beta^2/(2c)$, while the loss delivers $-\beta^2/c\,(1 - \kappa/2c)$:
#
# $$ \text{looseness} \approx \frac{1}{2 - \kappa/c}, \qquad \frac{\tau_{MM}}{\tau_{\text{Alg. 1}}} \approx \frac{\kappa}{c}. $$
#
# A curvature $c$ far above $\kappa$ means looseness $\approx 1/2$ and steps far shorter than Newton's: the true loss
# is still practically a straight line where the majorant already turns up.

# %%
def looseness(weights, radii, X, Y, comparison, label, parts=None):
    """validity() at ``weights``, and its looseness against 1/(2 - κ/c); ``parts``: touching() if done."""
    _, _, m = at(weights, radii, X, Y)
    report = mj.validity(m, X, Y)
    parts = parts or touching(m, weights, radii, X, Y)
    predicted = 1 / (2 - parts["kappa"] / parts["c"])
    tau1 = comparison["tau"]["Alg. 1"]
    best = float(np.min(comparison["true"]))           # the lowest loss on the plotted part of the curve
    print(f"[{label}] bound holds at {report['bound_fraction']:.0%} of the grid angles; worst violation "
          f"{report['worst_violation']:+.2e}")
    print(f"[{label}] looseness m(τ)/(φ(τ) - φ(0)) = {report['looseness']:.4f};  predicted 1/(2 - κ/c) = "
          f"{predicted:.4f}")
    print(f"[{label}] τ_MM = {report['tau']:.3e}, τ_Alg1 = {tau1:.3e}, ratio {report['tau'] / tau1:.3f} "
          f"(κ/c = {parts['kappa'] / parts['c']:.3f}); decrease at τ_MM is {report['true_tau'] / best:.1%} of the "
          f"best on [0, π/6]")
    return {"bound_fraction": report["bound_fraction"], "worst_violation": report["worst_violation"],
            "looseness": report["looseness"], "looseness_predicted": predicted, "tau_mm": report["tau"],
            "tau_alg1": tau1, "kappa_over_c": parts["kappa"] / parts["c"],
            "share_of_best": report["true_tau"] / best, **{k: parts[k] for k in ("slope_error", "c_error", "m0")}}


# %% [markdown]
# ## When it fails to bound
#
# Steps 1 and 3 are exact; only Assumption 1 can break, and $m$ bounds the loss exactly where
#
# $$ m(t) - \big(\varphi(t) - \varphi(0)\big) = \underbrace{\tfrac Q2(P_1 - P_2)^2 - \tfrac{1}{2N}\textstyle\sum\|\Delta f\|^2}_{S(t)\ \ge\ 0:\ \text{slack of step 3}}
#    - \underbrace{A(t)}_{\text{gap of step 2}} \ \ge 0. $$
#
# Without unit switches both $A$ and $S$ are of order $t^2$. A ReLU unit whose pre-activation is almost 0 switches
# at a tiny angle $t_0$; from then on its contribution to $\Delta f$ is missing from (or added to) the chain rule,
# and $A(t)$ grows **linearly**, like $t - t_0$, while $S(t)$ is still quadratic. Right after $t_0$ the gap can
# win. That needs a unit close to its kink whose switch matters — likely in a *narrow* network with few samples.
#
# We construct such a case: a $4 \to 6 \to 1$ network, 64 unit-norm inputs, the smooth target
# $y = \tfrac12\sin(3x_1) + 0.3x_2^2$. We train it with Algorithm 2 (`spherenet.mm.MajorantStep`) and watch the history
# (`spherenet.train.History`): `predicted` is $m(\tau)$ and `actual` the true $\varphi(\tau) - \varphi(0)$, so
# `actual > predicted` is a step at which the majorant failed at its own minimiser, and `actual > 0` one where
# the MM step went **uphill**. We stop at the first uphill step and rebuild the majorant there.

# %%
def narrow_problem(seed, n=64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, NARROW[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.5 * np.sin(3 * X[:, :1]) + 0.3 * X[:, 1:2] ** 2
    return spherenet.NormalisedMLP(NARROW, seed=seed), X, Y


def train_narrow(seed, steps, check_every=50):
    """MM on the narrow problem; ``validity`` on the whole grid every ``check_every`` iterates."""
    net, X, Y = narrow_problem(seed)
    actual, predicted, fractions = [], [], []
    for start in range(0, steps, check_every):
        fractions.append(mj.validity(at(net.weights, net.radii, X, Y)[2], X, Y)["bound_fraction"])
        h = train(net, X, Y, "mm", min(check_every, steps - start))      # MM keeps no state between calls
        actual += h.actual
        predicted += h.predicted
    return np.array(actual), np.array(predicted), np.array(fractions)


def failure_case(seed, actual, predicted):
    """Rebuild the majorant just before the first uphill MM step of the narrow run ``seed``."""
    uphill = np.flatnonzero(actual > 0)
    if not uphill.size:
        print(f"seed {seed}: no uphill MM step")
        return None
    step = int(uphill[0]) + 1
    net, X, Y = narrow_problem(seed)
    train(net, X, Y, "mm", step - 1)
    J, _, m = at(net.weights, net.radii, X, Y)
    report = mj.validity(m, X, Y)
    d = decomposition(m, X, Y, T_GRID)
    fails = report["fails_at"]
    closest = min(float(np.abs(Z).min()) for Z in spherenet.forward_cache(net.weights, X).Z[:-1])
    print(f"seed {seed}: MM step {step} raised the loss by {actual[step - 1]:+.3e} (J = {J:.6e}); "
          f"the majorant promised {predicted[step - 1]:+.3e}")
    print(f"the bound fails at {fails.size} of {len(T_GRID)} grid angles, t in [{fails.min():.2e}, {fails.max():.2e}]; "
          f"τ = {report['tau']:.2e}; worst violation {report['worst_violation']:.2e}")
    print(f"smallest |pre-activation| of a hidden unit: {closest:.1e}; first unit switch on the grid at "
          f"t = {d['t_flip']:.2e}")
    scale = float(np.max(np.abs(d["true"])))
    identity = float(np.max(np.abs((d["m"] - d["true"]) - (d["slack"] - d["gap"])))) / scale
    same = bool(np.array_equal(d["gap"] > d["slack"], d["m"] < d["true"]))
    print(f"m - true = S - A on the grid, to {identity:.1e} relative;  A > S exactly where the bound fails: {same}")
    return {"seed": seed, "step": step, "report": report, "decomposition": d, "identity": identity,
            "first_fail": float(fails.min()), "closest": closest}


def failure_figure(case, quad, path):
    d, r = case["decomposition"], case["report"]
    fig = Figure(figsize=(12.5, 4.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    window = d["t"] <= 4 * r["tau"]
    t = d["t"][window]
    ax.plot(t, d["true"][window], color="k", lw=2.2, label=r"true $\varphi(t) - \varphi(0)$")
    ax.plot(t, d["m"][window], color="C1", lw=1.6, label="m spectral (paper)")
    for j in np.flatnonzero((d["m"] < d["true"]) & window):         # shade every grid cell where m < true
        lo, hi = d["t"][max(j - 1, 0)], d["t"][min(j + 1, len(d["t"]) - 1)]
        ax.axvspan(math.sqrt(lo * d["t"][j]), math.sqrt(hi * d["t"][j]), color="C3", alpha=0.12, lw=0)
    ax.axvline(d["t_flip"], color="C2", ls="-.", lw=1.2, label=f"first unit switches, t = {d['t_flip']:.1e}")
    ax.plot([r["tau"], r["tau"]], [r["m_tau"], r["true_tau"]], color="C1", lw=1, ls=":")
    ax.plot([r["tau"]], [r["m_tau"]], "o", ms=6, color="C1", label=f"m(τ) = {r['m_tau']:+.1e}: promised")
    ax.plot([r["tau"]], [r["true_tau"]], "o", ms=9, mfc="none", mew=1.8, color="C1",
            label=f"φ(τ) - φ(0) = {r['true_tau']:+.1e}: delivered")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xscale("log")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    low = float(min(np.min(d["m"][window]), np.min(d["true"][window])))
    ax.set_ylim(1.3 * low, max(-0.8 * low, 1.3 * float(np.max(d["true"][window]))))
    ax.set(xlabel="angle $t$ [rad] (log scale)", ylabel="change of the loss $J$",
           title=f"{'-'.join(map(str, NARROW))} net before MM step {case['step']}: m < true in the red band")
    ax.legend(loc="lower left", fontsize=8)
    for data, style, name in ((d, "-", "4-6-1 net"), (quad, ":", "quadrotor net")):
        keep = d["t"] <= 0.1
        tt = data["t"][keep]
        bx.loglog(tt, np.where(data["gap"][keep] > 0, data["gap"][keep], np.nan), color="C3", ls=style, lw=1.6,
                  label=f"gap A(t) of Assumption 1, {name}")
        bx.loglog(tt, np.where(data["slack"][keep] > 0, data["slack"][keep], np.nan), color="C0", ls=style,
                  lw=1.6, label=f"slack S(t) of the penalty, {name}")
    bx.axvline(d["t_flip"], color="C2", ls="-.", lw=1.2, label="first unit switch, 4-6-1 net")
    bx.set(xlabel="angle $t$ [rad]", ylabel="size (positive part)",
           title="m bounds the loss exactly where S(t) > A(t)")
    bx.grid(True, which="major", alpha=0.3)
    bx.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


# %% [markdown]
# ## A small survey
#
# How common is this? The training history answers it for every step at no extra cost: the share of MM steps that
# kept the majorant's promise (`actual <= predicted`) and the share that went uphill (`actual > 0`). We run the
# narrow problem for several seeds (checking the whole grid of angles with `spherenet.majorant.validity` at every
# 50th iterate), and count the same for the paper's network on the quadrotor data.

# %%
def survey(seeds, steps, quad_history, runs):
    """``runs``: narrow runs already made, ``{seed: train_narrow(seed, steps)}``; the missing seeds are run."""
    fractions = []
    for seed in seeds:
        if seed not in runs:
            runs[seed] = train_narrow(seed, steps)
        actual, predicted, grid = runs[seed]
        fractions.append(grid)
        print(f"4-6-1, seed {seed}: {steps} MM steps, promise kept {np.mean(actual <= predicted):6.1%}, "
              f"uphill {np.mean(actual > 0):5.1%}")
    quad_actual, quad_predicted = np.array(quad_history.actual), np.array(quad_history.predicted)
    numbers = {"narrow_kept": float(np.mean([np.mean(a <= p) for a, p, _ in runs.values()])),
               "narrow_uphill": float(np.mean([np.mean(a > 0) for a, _, _ in runs.values()])),
               "quad_kept": float(np.mean(quad_actual <= quad_predicted)),
               "quad_uphill": float(np.mean(quad_actual > 0))}
    print(f"12-25-30-15-3 on the quadrotor data: {quad_history.iterations} MM steps, promise kept "
          f"{numbers['quad_kept']:.1%}, uphill {numbers['quad_uphill']:.1%}")
    fractions = np.concatenate(fractions)
    numbers |= {"narrow_whole_grid": float(np.mean(fractions == 1)), "narrow_bound_fraction": float(fractions.mean())}
    print(f"narrow nets, every 50th iterate: m bounds on the whole grid at {numbers['narrow_whole_grid']:.0%} of "
          f"{fractions.size} iterates; mean share of grid angles bounded {numbers['narrow_bound_fraction']:.1%}")
    return numbers


# %% [markdown]
# ## Summary
#
# * Steps 1 (functional expansion) and 3 (layerwise Lipschitz bound) are exact. Step 3 is loose: per sample,
#   $\|\Delta f\|$ is about a tenth of $\|x\|(P_1 - P_2)$, and the second-order term uses 1-2 % of the penalty.
# * Step 2, Assumption 1, is where $m$ can fail. On the paper's network and the simulated quadrotor data the bound
#   held at every grid angle at both iterates drawn, and MM kept its promise at every step it took; on the narrow
#   4-6-1 network it fails as soon as a unit next to its kink switches, and for several seeds MM then takes uphill
#   steps — no line search catches them, because Algorithm 2 has none.
# * Where $m$ bounds, its curvature $c$ is far above the true $\kappa$ (tens to hundreds of times): the promised decrease
#   is about half the real one, and $\tau_{MM}/\tau_{\text{Alg. 1}} \approx \kappa/c$ explains why Algorithm 2 takes steps
#   tens of times shorter than Algorithm 1 and needs many more iterations (tutorial 6).

# %%
_save = save_figure                 # spherenet.plots.save_figure: PNG, 110 dpi, folder made


def main(quick=False, outdir="figures"):
    """Run the tutorial; return its key numbers, the claims it checks, and the figures it wrote."""
    outdir = Path(outdir)
    print("== the problem ==")
    net, X, Y = quadrotor_problem(quick)
    J, grads, m = at(net.weights, net.radii, X, Y)
    tau = mj.minimise(m)[0]
    ts = np.array([1e-4, tau, 1e-2, 0.1, 0.5])
    print("\n== step 1: exact expansion ==")
    numbers = {"expansion_error": exact_expansion(m, X, Y, J, ts)}
    print("\n== step 2: Assumption 1 ==")
    numbers["parameter_term_error"] = parameter_term_check(m, grads, ts)
    quad = decomposition(m, X, Y, T_GRID)
    report_gap(quad, ts)
    j_tau = int(np.argmin(np.abs(T_GRID - tau)))
    numbers["relative_gap_at_tau"] = float(quad["gap"][j_tau] / abs(quad["linear"][j_tau]))
    print("\n== step 3: the layerwise bound ==")
    numbers["layerwise_max"], numbers["telescoping_max"] = report_layerwise(m, X, ts)
    spec_tau, _ = layerwise_ratios(m, X, tau)
    numbers["layerwise_median_at_tau"] = float(np.median(spec_tau))
    print("\n== step 4: penalties, closed form, m at t = 0 ==")
    _, ordered = penalty_order(net.weights, grads, net.radii, X)
    numbers["closed_form_tau"], numbers["closed_form_error"] = closed_form_check(m, grads, net.radii, X)
    parts = touching(m, net.weights, net.radii, X, Y)

    print("\n== the picture ==")
    late_steps = 30 if quick else 300
    late = net.copy()
    quad_history = train(late, X, Y, "mm", late_steps)
    snapshots = {"first iterate": net.weights, f"after {late_steps} MM steps": late.weights}
    picture, comparisons = majorant_picture(snapshots, net.radii, X, Y, outdir / "tutorial05_majorant.png")
    print("\n== how loose ==")
    first = looseness(net.weights, net.radii, X, Y, comparisons["first iterate"], "first", parts)
    later = looseness(late.weights, late.radii, X, Y, comparisons[f"after {late_steps} MM steps"], "late")
    numbers |= {f"first_{k}": v for k, v in first.items()} | {f"late_{k}": v for k, v in later.items()}

    print("\n== when it fails ==")
    steps = 300 if quick else 400
    runs = {3: train_narrow(3, steps)}
    case = failure_case(3, *runs[3][:2])
    figures = [picture]
    if case is not None:
        figures.append(failure_figure(case, quad, outdir / "tutorial05_failure.png"))
        numbers |= {"failure_step": case["step"], "failure_worst_violation": case["report"]["worst_violation"],
                    "failure_bound_fraction": case["report"]["bound_fraction"],
                    "failure_first_t": case["first_fail"], "failure_t_flip": case["decomposition"]["t_flip"],
                    "failure_looseness": case["report"]["looseness"], "failure_identity": case["identity"]}
    print("\n== survey ==")
    numbers |= survey((0, 3) if quick else range(10), steps, quad_history, runs)

    claims = {
        "J(W + ΔW) = J + <∇_f J, Δf> + (1/2N) Σ ||Δf||² (exact)": numbers["expansion_error"] < 1e-9,
        "Σ_i <g_i, ΔW_i(t)> = α(cos t - 1) - β sin t": numbers["parameter_term_error"] < 1e-9,
        "||Δf(x_n)|| <= ||x_n|| (P_1(t) - P_2) for every sample and angle tried": numbers["layerwise_max"] <= 1.0,
        "the telescoping bound holds for every sample and angle tried": numbers["telescoping_max"] <= 1.0,
        "penalties are ordered telescoping <= spectral <= Frobenius": ordered,
        "the closed-form τ minimises h(t)": numbers["closed_form_error"] < 1e-6,
        "m(0) = 0 and m'(0) = -β": first["m0"] == 0.0 and first["slope_error"] < 1e-5,
        "m''(0) = -α + Q (Σ_i Π_{j≠i} ||W_j||_2 ||μ_i V_i||_2)²": first["c_error"] < 1e-3,
        "m bounds the true change at every grid angle for the simulator iterates (first and late)":
            first["bound_fraction"] == 1.0 and later["bound_fraction"] == 1.0,
        "looseness at the simulator iterates ≈ 1/(2 - κ/c) (within 10%)":
            all(abs(r["looseness"] / r["looseness_predicted"] - 1) < 0.1 for r in (first, later)),
        "the majorant's curvature is far above the true one (c > 5 |κ|)":
            abs(first["kappa_over_c"]) < 0.2 and abs(later["kappa_over_c"]) < 0.2,
        "MM kept its promise at every step on the quadrotor data": numbers["quad_kept"] == 1.0,
        "the constructed narrow-net case violates the bound": case is not None
            and case["report"]["worst_violation"] > 0 and case["report"]["bound_fraction"] < 1,
        "there MM took an uphill step (the loss rose at τ)": case is not None and case["report"]["true_tau"] > 0,
        "the violation starts where the first unit switches": case is not None
            and case["first_fail"] >= case["decomposition"]["t_flip"],
        "m - true = S - A (the decomposition is exact)": case is not None and case["identity"] < 1e-9,
    }
    print_claims(claims, figures)                 # spherenet.verify.print_claims
    return {"numbers": numbers, "claims": claims, "figures": figures}


if __name__ == "__main__":
    result = main(quick=quick_mode())          # SPHERENET_QUICK=1: the quick version
