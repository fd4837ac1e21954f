"""Tutorial 8 — automatic steps on mini-batches: what one batch knows about the step, the curvature from the trial
point, a run of `geo-batch`, the model it reports and the batch size it chooses.

Run it as a script (``SPHERENET_QUICK=1``: the quick version, few samples and steps, whose error numbers are
NOT meaningful) or open it as a notebook (tutorials/README.md).
"""
# %% [markdown]
# # 8. Automatic steps on mini-batches
#
# Tutorial 4's step is the Newton step of the loss along the update curve: with $\varphi(t) = J(\Gamma(t))$,
# slope $\beta = -\varphi'(0)$ and curvature $\kappa = \varphi''(0)$, it takes $t = \beta/\kappa$. On a problem
# of real size each step sees one batch $b$ of the data and its loss $J_b$, whose mean over the batches is $J$.
# This tutorial follows `geo-batch` (`spherenet.beyond.stochastic.BatchGeodesicStep`, docs/beyond.md §7–10),
# the rule `spherenet train` runs, from what one batch knows to the model a run hands over.
#
# ## One batch's slope and curvature are unbiased; its step is not
#
# Along a direction $D$ fixed before the batch is drawn, $\varphi_b(t) = J_b(\Gamma(t))$ is a mean over the
# batch's rows, so its jet coefficients are too: over batches that partition the data, the batches' slopes
# average to the full batch's slope **exactly**, and so do their curvatures. Their ratio does not: the mean
# of $\beta_b/\kappa_b$ is not $\beta/\kappa$, and one batch's Newton step can be far from the full batch's
# (below, after a stretch of training, where the batches disagree more: by a factor of 2 to 3 either way). So
# `geo-batch` averages slope and curvature *separately* across batches, $B \leftarrow \rho B + (1-\rho)\beta_b$,
# $K \leftarrow \rho K + (1-\rho)\kappa_b$, and takes the Newton step $t = B/K$ of the averaged model
# (`BatchGeodesicStep.model_step`), which follows the expected slope and curvature instead of each batch's.

# %%
from pathlib import Path

import numpy as np

import spherenet
from spherenet import budget, plots
from spherenet.beyond.geodesic import Geodesic
from spherenet.beyond.stochastic import secant_curvature
from spherenet.data import StandardScaling, default_problem
from spherenet.plots import show
from spherenet.train import train, trained_network
from spherenet.verify import print_claims, quick_mode

QUICK = quick_mode()          # SPHERENET_QUICK=1: few samples and steps (checks only)
FIGURES = Path("figures")
claims = {}                   # statement -> bool, checked as we go and reported by the last cell
WIDTHS = [13, 25, 30, 15, 3]  # 12 features and the standard scaling's constant feature
BATCH = 256

train_part, _ = default_problem(seed=0, n_samples=3000 if QUICK else 30000)
net = spherenet.NormalisedMLP(WIDTHS, seed=0)
K = budget.budget_for(budget.LADDER[1], train_part.X, train_part.Y, float(np.prod(net.radii)))
scaling = StandardScaling.fit(train_part.X, train_part.Y, K, float(np.prod(net.radii)))
X, Y = scaling.transform_inputs(train_part.X), scaling.transform_targets(train_part.Y)

train(net, X, Y, "geo-batch", 300 if QUICK else 2000, batch_size=BATCH, seed=0)   # to where the batches disagree
rows = np.random.default_rng(0).permutation(len(X))[:len(X) // BATCH * BATCH].reshape(-1, BATCH)
_, grads = spherenet.loss_and_grad(net.weights, X[rows.ravel()], Y[rows.ravel()])
curve = Geodesic(net.weights, spherenet.direction(net.weights, grads, net.radii).V, net.radii)


def jet(batch):
    """``J_0, J_1, J_2`` of ``φ_b`` on the rows ``batch`` (the frozen-pattern jet of tutorial 3)."""
    return curve.loss_jet(spherenet.forward_cache(net.weights, X[batch]), X[batch], Y[batch], 2)


full = jet(rows.ravel())
beta, kappa = -full[1], 2 * full[2]
per_batch = np.array([jet(batch) for batch in rows])
slopes, curvatures = -per_batch[:, 1], 2 * per_batch[:, 2]
print(f"{len(rows)} batches of {BATCH}: full batch beta = {beta:.4g}, kappa = {kappa:.4g}, step {beta / kappa:.4g}")
print(f"  mean over the batches: beta_b {slopes.mean():.4g}, kappa_b {curvatures.mean():.4g}, "
      f"step beta_b/kappa_b {np.mean(slopes / curvatures):.4g} (from {np.min(slopes / curvatures):.4g} "
      f"to {np.max(slopes / curvatures):.4g})")
claims["the batches' slopes average to the full batch's slope (to 1e-12)"] = \
    abs(slopes.mean() - beta) <= 1e-12 * abs(beta)
claims["the batches' curvatures average to the full batch's curvature (to 1e-12)"] = \
    abs(curvatures.mean() - kappa) <= 1e-12 * abs(kappa)
show(plots.batches.batch_estimates(slopes, curvatures, beta, kappa, FIGURES / "tutorial08_batch_estimates.png"))

# %% [markdown]
# ## The curvature from the trial point
#
# A step is checked on its own batch: `geo-batch` evaluates $\varphi_b(t)$ at the model's step $t$ and halves
# $t$ (at most twice) while the batch's loss went up (`spherenet.steps.backtrack`). That forward pass is paid
# anyway, and with $\varphi_b(0)$ and $\varphi_b'(0) = -\beta_b$ known it fixes one parabola exactly:
#
# $$ \kappa_b = \frac{2\,(\varphi_b(t) - \varphi_b(0) + \beta_b t)}{t^2} $$
#
# (`spherenet.beyond.stochastic.secant_curvature`). The jet's $\varphi_b''(0) = 2c_2$ freezes the ReLU
# pattern at $t = 0$; along a real step units switch on and off, and near initialisation some switch within a
# millionth of a radian, so the jet's curvature describes $\varphi_b$ only very close to $t = 0$ (a central
# difference needs $h \approx 10^{-6}$ to agree with it). The secant measures the curvature over $[0, t]$:
# what a step of that length meets. It is the better model of the step actually taken, and it costs no extra
# pass. This is what `K` averages.

# %%
batch = rows[0]
J0, b0, c2 = jet(batch)                              # b0 = phi_b'(0) = -beta_b
t_trial = min(abs(beta / kappa), 0.3)                # a trial of the size of the full batch's Newton step
ts = np.linspace(0.0, 2 * t_trial, 41)
phi = np.array([curve.loss(X[batch], Y[batch], t)[0] for t in ts]) - J0
phi_trial = curve.loss(X[batch], Y[batch], t_trial)[0] - J0
kappa_secant = secant_curvature(J0, -b0, t_trial, J0 + phi_trial)
h = 1e-6
central = (curve.loss(X[batch], Y[batch], h)[0] - 2 * J0 + curve.loss(X[batch], Y[batch], -h)[0]) / h ** 2
step = ts <= t_trial
misfit = {name: float(np.sqrt(np.mean((b0 * ts + k / 2 * ts ** 2 - phi)[step] ** 2)))
          for name, k in (("jet", 2 * c2), ("secant", kappa_secant))}
print(f"batch 0: jet 2 c_2 = {2 * c2:.5g} (central difference, h = 1e-6: {central:.5g}); "
      f"secant over [0, {t_trial:.3g}] = {kappa_secant:.5g}")
print(f"  RMS misfit of the parabola over the step: jet {misfit['jet']:.3g}, secant {misfit['secant']:.3g}")
claims["the jet's curvature is phi_b''(0): a central difference with h = 1e-6 agrees to 1 %"] = \
    abs(central - 2 * c2) <= 1e-2 * abs(2 * c2)
claims["over the step, the secant's parabola follows phi_b closer than the jet's"] = misfit["secant"] < misfit["jet"]
show(plots.batches.secant(ts, phi, -b0, c2, t_trial, phi_trial, FIGURES / "tutorial08_secant.png"))

# %% [markdown]
# ## A run, and the model it reports
#
# `spherenet.train.train(..., "geo-batch", batch_size=B)` runs the rule: Adam's direction on the spheres (its
# moments average the gradient over ~20 batches), the averaged Newton step, the halvings and the secant. Every
# iterate is $\Gamma(\tau)$, on the spheres, so the certificate holds at every step; with spectral layers
# (tutorial 7, `norm="spectral"`) it is the budget $K$ itself. Near a minimum the step does not shrink to 0:
# each batch pulls its own way, and the iterates jitter around the minimiser of the expected loss. The model
# a mini-batch run reports is therefore the average of its last ~20 iterates, projected back onto the spheres
# (`spherenet.averaging.IterateAverage`, docs/beyond.md §9): still certified, with less of the last batches'
# noise. The optimiser itself never steps from the average, so the two runs below take the same steps.

# %%
held_out = budget.validation_rows(train_part, "random", 0)
fit_scaling = StandardScaling.fit(train_part.X[~held_out], train_part.Y[~held_out], K, float(np.prod(net.radii)))
fit = [fit_scaling.transform_inputs(train_part.X[~held_out]), fit_scaling.transform_targets(train_part.Y[~held_out])]
val = [fit_scaling.transform_inputs(train_part.X[held_out]), fit_scaling.transform_targets(train_part.Y[held_out])]
steps = 200 if QUICK else 3000
runs = {}
for label, average in (("the last iterate", None), ("the iterates' average (the default)", "auto")):
    run_net = spherenet.NormalisedMLP(WIDTHS, seed=0)
    history = train(run_net, *fit, "geo-batch", steps, *val, batch_size=BATCH, seed=0, norm="spectral",
                    eval_every=steps // 10, average=average)
    runs[label] = (run_net, history)
(last_net, last), (avg_net, avg) = runs.values()
curves = {label: (h.eval_iterations, fit_scaling.rmse_newtons(np.array(h.loss_test))) for label, (_, h) in runs.items()}
for label, (_, rmse) in curves.items():
    print(f"{label:38s} validation RMSE after {steps} steps: {rmse[-1]:.3f} N")
print(f"halvings per step {np.mean(avg.halvings):.2f}; largest norm drift {max(avg.drift):.1e}")
claims["the average changes what is reported, not the steps taken"] = avg.tau == last.tau
claims["every step stays on the spheres (norm drift below 1e-12, float64)"] = max(avg.drift) < 1e-12
model = trained_network(avg_net, avg, "spectral")
claims["the averaged model's certificate is the budget: prod of spectral norms = prod mu_i"] = \
    abs(model.spectral_norm_product() / np.prod(avg_net.radii) - 1) < 1e-9
if not QUICK:                             # quick mode's few steps say nothing about accuracy
    claims["the iterates' average ends lower than the last iterate"] = \
        curves["the iterates' average (the default)"][1][-1] < curves["the last iterate"][1][-1]
show(plots.batches.batch_run(avg, curves, FIGURES / "tutorial08_run.png"))

# %% [markdown]
# ## The batch size, chosen on validation
#
# A smaller batch costs a little less per step and carries more noise; whether that helps depends on the
# data. `spherenet train` chooses it where it chooses the budget, on the same validation fifth
# (`spherenet.budget.select_batch_size`, docs/beyond.md §10): from 1,024, halve the batch while the
# validation error of a run of the run's length falls. The table below is that walk for this problem.

# %%
size, table = budget.select_batch_size(train_part.X, train_part.Y, held_out, K, WIDTHS, "geo-batch",
                                       dtype=np.float32, norm="spectral", iterations=200 if QUICK else 2000)
for tried in table["tried"]:
    print(f"  batch {tried['batch_size']:5d}: validation RMSE {tried['rmse_validation']:.3f} N")
print(f"chosen: {size} ({table['seconds']:.1f} s)")
claims["the walk keeps the batch size with the lowest validation error it tried"] = \
    size == min(table["tried"], key=lambda t: t["rmse_validation"])["batch_size"]

# %% [markdown]
# ## Every claim of this tutorial, each checked above where its numbers were computed

# %%
print_claims(claims)
assert all(claims.values()), [claim for claim, ok in claims.items() if not ok]
