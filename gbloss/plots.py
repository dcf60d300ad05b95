"""Figures of ``gbloss compare`` (matplotlib, the ``plot`` extra).

* :func:`decision_regions`: the class regions of fitted 2-feature models side by side, with the
  test points and each model's test accuracy and balanced accuracy;
* :func:`pr_curves`: precision-recall curves per loss from out-of-fold probabilities;
* :func:`focal_curves`: focal loss and its gradient against ``p_t`` for several ``gamma``, next
  to cross-entropy (``gamma = 0``): how the focusing term down-weights well-classified rows.

Each returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state, no GUI
backend); :func:`save` writes it as PNG.
"""

import math

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from sklearn import metrics as skm

from .losses import BINARY, MULTICLASS, FocalLoss

__all__ = ["decision_regions", "focal_curves", "pr_curves", "save"]

#: Point colours per class (colour-blind safe: Okabe-Ito); region fills are lighter versions.
_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
            "#000000"]


def _light(hex_colour, amount=0.75):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return tuple(rgb + (1.0 - rgb) * amount)


def save(fig, path, dpi=110):
    """Write ``fig`` to ``path`` (PNG); returns the path."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def decision_regions(panels, X_test, y_test, X_train=None, *, class_names=None,
                     feature_names=("x0", "x1"), resolution=300, ncols=3,
                     title="Decision regions on the first test fold (shading: predicted class)"):
    """Decision regions of fitted models on two features, one panel per model.

    The regions are the predicted class of each cell of a ``resolution`` x ``resolution`` grid,
    drawn as pixels: a region one cell wide shows as such, not as a pair of contour lines.

    Parameters
    ----------
    panels : list of (title, estimator, accuracy, balanced_accuracy)
        ``estimator.predict`` maps (m, 2) points to class codes 0..K-1.
    X_test, y_test : the points drawn (coloured by their true class) and scored.
    X_train : optional, widens the plotted range to the training points.
    """
    X_test = np.asarray(X_test, dtype=np.float64)
    y_test = np.asarray(y_test)
    pts = X_test if X_train is None else np.vstack([X_test, X_train])
    lo, hi = np.nanmin(pts, axis=0), np.nanmax(pts, axis=0)
    pad = 0.05 * (hi - lo + 1e-12)
    extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    g0, g1 = np.meshgrid(np.linspace(*extent[:2], resolution),
                         np.linspace(*extent[2:], resolution))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    n_class = int(max(y_test.max(), 1)) + 1
    if class_names is None:
        class_names = list(range(n_class))
    colours = [_COLOURS[k % len(_COLOURS)] for k in range(n_class)]
    fills = ListedColormap([_light(c) for c in colours])
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.4 * ncols, 4.3 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    order = np.argsort(-np.bincount(y_test.astype(np.intp), minlength=n_class)[y_test])
    for ax, (name, est, acc, bal) in zip(axes, panels, strict=False):
        regions = np.asarray(est.predict(grid)).reshape(g0.shape)
        ax.imshow(regions, origin="lower", extent=extent, aspect="auto", cmap=fills,
                  vmin=-0.5, vmax=n_class - 0.5, interpolation="nearest")
        ax.scatter(X_test[order, 0], X_test[order, 1], s=9, linewidths=0.3, edgecolors="white",
                   c=[colours[int(k)] for k in y_test[order]])
        ax.set_title(f"{name}\naccuracy {acc:.3f}, balanced accuracy {bal:.3f}", fontsize=10)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for j in range(ncols):  # the lowest panel of each column carries the x axis
        bottom = axes[max(i for i in range(j, len(panels), ncols))]
        bottom.set_xlabel(feature_names[0])
        bottom.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[::ncols]:
        ax.set_ylabel(feature_names[1])
    counts = np.bincount(y_test.astype(np.intp), minlength=n_class)
    handles = []
    for k in range(n_class):  # one legend column per class: its points over its region
        handles += [Line2D([], [], marker="o", ls="", color=colours[k],
                           label=f"class {class_names[k]!s} ({counts[k]} test points)"),
                    Patch(facecolor=_light(colours[k]), edgecolor="0.6", lw=0.5,
                          label=f"predicted {class_names[k]!s}")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(n_class, 4),
               frameon=False)
    fig.suptitle(title)
    return fig


def pr_curves(oof, y, task, *, labels=None, fold_means=None):
    """Precision-recall curves from out-of-fold probabilities, one per loss.

    ``oof``: {loss name: probabilities of every row from the fold that held it out}, (n, 2)
    binary (the positive class is column 1), (n, K) multiclass or multi-label, whose curves
    pool every class / label (micro average). Each legend entry gives the average precision
    (AP) of its curve, all folds pooled, and, from ``fold_means`` ({loss name: AP}), the mean
    of the per-fold APs that the table reports (multiclass and multi-label: macro averages).
    The legend sits under the axes, off the curves.
    """
    y = np.asarray(y)
    fold_means = fold_means or {}
    fig = Figure(figsize=(6.4, 6.8), layout="constrained")
    ax = fig.subplots()
    if task == BINARY:
        truth = (y == 1).astype(int)
        what = f"positive class {labels[1]!s}" if labels is not None else "positive class"
        kind = mean_kind = ""
    else:
        n_out = next(iter(oof.values())).shape[1]
        Y = (y[:, None] == np.arange(n_out)[None, :]) if task == MULTICLASS else y
        truth = np.asarray(Y, dtype=int).ravel()
        what = "micro average over " + ("classes, one-vs-rest" if task == MULTICLASS
                                        else "labels")
        kind, mean_kind = "micro-", "macro "
    for k, (name, proba) in enumerate(oof.items()):
        score = proba[:, 1] if task == BINARY else proba.ravel()
        ok = np.isfinite(score)
        precision, recall, _ = skm.precision_recall_curve(truth[ok], score[ok])
        ap = skm.average_precision_score(truth[ok], score[ok])
        label = f"{name} (pooled {kind}AP {ap:.3f}"
        if name in fold_means:
            label += f"; mean of folds {mean_kind}{fold_means[name]:.3f}"
        # earlier curves wider, so that identical ones (ce and la rank alike) both show
        ax.step(recall, precision, where="post", color=_COLOURS[k % len(_COLOURS)],
                lw=max(3.2 - 0.5 * k, 1.2), ls="--" if "+" in name else "-", label=label + ")")
    prevalence = truth.mean()
    ax.axhline(prevalence, color="0.5", lw=0.8, ls=":",
               label=f"no skill (prevalence {prevalence:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Precision-recall of the out-of-fold predictions, all folds pooled\n({what})",
                 fontsize=11)
    ax.grid(alpha=0.3)
    title = "AP, average precision: pooled over the out-of-fold rows of all folds"
    if fold_means:
        title += ",\nand the mean of the per-fold APs (the table's PR-AUC)"
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), borderaxespad=0.0, fontsize=9,
              title=title, title_fontsize=9, alignment="left")
    return fig


def focal_curves(gammas=(0.0, 0.5, 1.0, 2.0, 5.0)):
    """Focal loss, its gradient and the gradient relative to cross-entropy against ``p_t``.

    ``p_t`` is the probability the model gives the true class; the gradient is taken with
    respect to the raw score (what the booster fits), computed by :class:`gbloss.FocalLoss`.
    """
    p_t = np.linspace(0.005, 0.995, 400)
    raw = np.log(p_t) - np.log1p(-p_t)  # a positive row with P(y=1) = p_t
    ones = np.ones_like(raw)
    fig = Figure(figsize=(14, 4.4), layout="constrained")
    ax_loss, ax_grad, ax_ratio = fig.subplots(1, 3)
    ce_grad = None
    for k, gamma in enumerate(gammas):
        loss = FocalLoss(gamma=gamma)
        value = loss.loss(ones, raw)
        grad = -loss.gradient_hessian(ones, raw)[0]
        if gamma == 0:
            ce_grad = grad
        label = "cross-entropy (γ = 0)" if gamma == 0 else f"focal γ = {gamma:g}"
        style = {"color": _COLOURS[k % len(_COLOURS)], "lw": 2.2 if gamma == 0 else 1.6,
                 "ls": "--" if gamma == 0 else "-", "label": label}
        ax_loss.plot(p_t, value, **style)
        ax_grad.plot(p_t, grad, **style)
        if ce_grad is not None:
            ax_ratio.plot(p_t, grad / ce_grad, **style)
    ax_loss.set_ylim(0, 5)
    ax_loss.set_ylabel("loss  −(1 − p_t)^γ log p_t")
    ax_loss.set_title("Loss: focal shrinks the cost of easy rows")
    ax_grad.set_ylabel("|∂ loss / ∂ raw score|")
    ax_grad.set_title("Gradient the booster fits")
    ax_ratio.set_yscale("log")
    ax_ratio.set_ylim(1e-4, 3)
    ax_ratio.set_ylabel("gradient / cross-entropy gradient")
    ax_ratio.set_title("Down-weighting relative to cross-entropy")
    for ax in (ax_loss, ax_grad, ax_ratio):
        ax.set_xlabel("p_t (probability of the true class)")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    ax_loss.legend(fontsize=9)
    ax_ratio.legend(fontsize=9, loc="lower left")
    return fig
