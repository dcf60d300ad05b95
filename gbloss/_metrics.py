"""Engine-independent evaluation metrics for gbloss losses.

Every metric takes raw margins *including the start* and turns them into probabilities (or
decisions) through the loss's own link, then calls scikit-learn:

=====================  ==================================================  ==============
name                   computes                                            better
=====================  ==================================================  ==============
``loss``               weighted mean of ``loss.loss(y, raw)``              lower
``average_precision``  PR-AUC, ``sklearn.metrics.average_precision_score``  higher
``roc_auc``            ``sklearn.metrics.roc_auc_score``                    higher
``log_loss``           ``sklearn.metrics.log_loss`` on probabilities       lower
``balanced_accuracy``  ``sklearn.metrics.balanced_accuracy_score`` of the   higher
                       loss's decision rule (:meth:`Loss.decision_scores`)
=====================  ==================================================  ==============

Tasks: binary scores the positive class; multiclass averages one-vs-rest scores over classes
(macro); multi-label averages per-label binary scores over labels (macro). For the ranking
metrics (average precision, ROC-AUC) classes/labels without both positive and negative rows in
``y`` are left out of the macro average (they have no defined score); ``nan`` when none is left.
"""

from typing import NamedTuple

import numpy as np
from sklearn import metrics as skm

from .losses import BINARY, MULTICLASS


class Metric(NamedTuple):
    """A metric: ``function(loss, y, raw, sample_weight) -> float`` and its direction."""

    function: object
    higher_is_better: bool


def _task_and_weight(loss, y, raw, sample_weight):
    y = np.asarray(y, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    task = loss.task_of(y, raw)
    if y.shape[0] != raw.shape[0]:
        raise ValueError(f"y has {y.shape[0]} rows but raw has {raw.shape[0]}")
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64).ravel()
        if w.shape[0] != raw.shape[0]:
            raise ValueError(f"sample_weight has {w.shape[0]} entries but raw has "
                             f"{raw.shape[0]} rows")
    return task, y, raw, w


def _indicator(task, y, n_out):
    """Labels as a 0/1 indicator matrix (n, K) for multiclass; y itself otherwise."""
    if task == MULTICLASS:
        return (y[:, None] == np.arange(n_out)[None, :]).astype(np.float64)
    return y


def _loss(loss, y, raw, sample_weight=None):
    """Weighted mean loss: ``sum_i w_i L_i / sum_i w_i``."""
    task, y, raw, w = _task_and_weight(loss, y, raw, sample_weight)
    total = loss.loss(y, raw, w).sum()
    return float(total / (w.sum() if w is not None else raw.shape[0]))


def _ranking(score_fn):
    def compute(loss, y, raw, sample_weight=None):
        task, y, raw, w = _task_and_weight(loss, y, raw, sample_weight)
        proba = loss.link(raw, None if task == BINARY else task)
        if task == BINARY:
            if np.unique(y).size < 2:
                return float("nan")
            return float(score_fn(y, proba, sample_weight=w))
        target = _indicator(task, y, raw.shape[1])
        scores = [score_fn(target[:, k], proba[:, k], sample_weight=w)
                  for k in range(raw.shape[1]) if np.unique(target[:, k]).size == 2]
        return float(np.mean(scores)) if scores else float("nan")
    return compute


def _log_loss(loss, y, raw, sample_weight=None):
    """``sklearn.metrics.log_loss`` on the loss's probabilities; multi-label: the mean over
    labels of the binary log-loss."""
    task, y, raw, w = _task_and_weight(loss, y, raw, sample_weight)
    proba = loss.link(raw, None if task == BINARY else task)
    if task == BINARY:
        return float(skm.log_loss(y, proba, sample_weight=w, labels=[0, 1]))
    if task == MULTICLASS:
        return float(skm.log_loss(y, proba, sample_weight=w, labels=np.arange(raw.shape[1])))
    return float(np.mean([skm.log_loss(y[:, k], proba[:, k], sample_weight=w, labels=[0, 1])
                          for k in range(raw.shape[1])]))


def _balanced_accuracy(loss, y, raw, sample_weight=None):
    """Balanced accuracy of the decision rule: ``sign`` (binary), ``argmax`` (multiclass) of
    :meth:`Loss.decision_scores`; multi-label: the mean over labels of the binary score."""
    task, y, raw, w = _task_and_weight(loss, y, raw, sample_weight)
    scores = loss.decision_scores(raw)
    if task == MULTICLASS:
        return float(skm.balanced_accuracy_score(y, np.argmax(scores, axis=1), sample_weight=w))
    y2, s2 = (y[:, None], scores[:, None]) if task == BINARY else (y, scores)
    return float(np.mean([skm.balanced_accuracy_score(y2[:, k] > 0.5, s2[:, k] > 0,
                                                      sample_weight=w)
                          for k in range(s2.shape[1])]))


METRICS = {
    "loss": Metric(_loss, False),
    "average_precision": Metric(_ranking(skm.average_precision_score), True),
    "roc_auc": Metric(_ranking(skm.roc_auc_score), True),
    "log_loss": Metric(_log_loss, False),
    "balanced_accuracy": Metric(_balanced_accuracy, True),
}


def _spec(name):
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}") from None


def metric_value(name, loss, y, raw, sample_weight=None):
    """Value of metric ``name`` for labels ``y`` and raw margins ``raw`` (including the start),
    computed through ``loss``'s link; see the module docstring for the definitions."""
    return _spec(name).function(loss, y, raw, sample_weight)


def higher_is_better(name):
    """Whether larger values of metric ``name`` are better (early stopping maximises it)."""
    return _spec(name).higher_is_better
