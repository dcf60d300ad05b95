"""Shared helpers of the gbloss tests: the registry of loss instances, data makers and the
4th-order finite difference.

The registry lists every loss configuration the derivative, stability and kernel tests run over.
Each entry builds its loss for a given number of outputs K (per-class alpha and priors need K;
K = 1 stands for a binary target) and names the tasks it supports.
"""

import dataclasses
import zlib
from collections.abc import Callable

import numpy as np
import pytest

import gbloss

try:
    import mpmath
except ImportError:  # installed by the "test" extra; the independent high-precision references
    mpmath = None

needs_mpmath = pytest.mark.skipif(mpmath is None, reason="needs mpmath")

BINARY, MULTICLASS, MULTILABEL = "binary", "multiclass", "multilabel"
GAMMAS = (0.0, 0.5, 2.0, 3.7)
CLIPS = (0.0, 0.05)
TAUS = (0.0, 1.0)
K_VALUES = (2, 3, 10)
POLICIES = ("exact", "psd", "gn")

#: Finite-difference step: a power of two, with margins rounded to multiples of 2**-20, so that
#: every stencil point z + j*STEP is exact in float64.
STEP = 2.0**-13
GRID = 2.0**-20


@dataclasses.dataclass(frozen=True)
class Case:
    """One registry entry: ``build(K)`` returns the loss for K outputs (K = 1: binary)."""

    name: str
    build: Callable[[int], gbloss.Loss]
    tasks: tuple

    def __repr__(self):
        return self.name


def per_class_alpha(n_out):
    """Distinct per-class (or per-label) alphas in (0, 1)."""
    return np.linspace(0.2, 0.8, n_out) if n_out > 1 else 0.3


def priors_for(n_out):
    """A non-uniform class distribution with max(n_out, 2) classes."""
    n = max(n_out, 2)
    p = np.arange(1.0, n + 1.0) ** 2
    return p / p.sum()


def counts_for(n_out):
    """Long-tailed class counts for max(n_out, 2) classes: 1000 / (1, 4, 9, ...)."""
    return 1000.0 / np.arange(1.0, max(n_out, 2) + 1.0) ** 2


#: (epsilon, gamma) of the Poly-1 registry entries: epsilon = -1 (the leading orders cancel),
#: 1 and 2 (a negative exact Hessian at gamma = 0), on cross-entropy and on focal loss.
POLY = ((-1.0, 0.0), (1.0, 0.0), (2.0, 0.0), (-1.0, 2.0), (1.0, 0.5), (2.0, 3.7))


def _registry():
    cases = []
    for g in GAMMAS:
        cases += [
            Case(f"focal-g{g}", lambda k, g=g: gbloss.FocalLoss(g),
                 (BINARY, MULTICLASS, MULTILABEL)),
            Case(f"focal-g{g}-a.25", lambda k, g=g: gbloss.FocalLoss(g, 0.25),
                 (BINARY, MULTILABEL)),
            Case(f"focal-g{g}-aK", lambda k, g=g: gbloss.FocalLoss(g, per_class_alpha(k)),
                 (MULTICLASS, MULTILABEL)),
        ]
    cases += [
        Case("ce", lambda k: gbloss.CrossEntropyLoss(), (BINARY, MULTICLASS, MULTILABEL)),
        Case("ce-a.7", lambda k: gbloss.CrossEntropyLoss(0.7), (BINARY, MULTILABEL)),
        Case("ce-aK", lambda k: gbloss.CrossEntropyLoss(per_class_alpha(k)),
             (MULTICLASS, MULTILABEL)),
    ]
    for gp in GAMMAS:
        for gn in GAMMAS:
            for clip in CLIPS:
                for grad in ("exact", "detached"):
                    cases.append(Case(
                        f"asl-gp{gp}-gn{gn}-m{clip}-{grad}",
                        lambda k, gp=gp, gn=gn, clip=clip, grad=grad: gbloss.AsymmetricLoss(
                            gp, gn, clip, gradient=grad),
                        (BINARY, MULTILABEL)))
    for tau in TAUS:
        cases.append(Case(f"la-tau{tau}",
                          lambda k, tau=tau: gbloss.LogitAdjustedLoss(tau, priors_for(k)),
                          (BINARY, MULTICLASS)))
    cases.append(Case("la-tau1-posthoc",
                      lambda k: gbloss.LogitAdjustedLoss(1.0, priors_for(k), posthoc=True),
                      (BINARY, MULTICLASS)))
    for eps, g in POLY:
        cases.append(Case(f"poly-e{eps}-g{g}", lambda k, eps=eps, g=g: gbloss.PolyLoss(eps, g),
                          (BINARY, MULTICLASS, MULTILABEL)))
    cases += [
        Case("poly-e1.0-g2.0-a.25", lambda k: gbloss.PolyLoss(1.0, 2.0, 0.25),
             (BINARY, MULTILABEL)),
        Case("poly-e-0.5-g0.5-aK", lambda k: gbloss.PolyLoss(-0.5, 0.5, per_class_alpha(k)),
             (MULTICLASS, MULTILABEL)),
        Case("ce-ls0.1", lambda k: gbloss.CrossEntropyLoss(label_smoothing=0.1),
             (BINARY, MULTICLASS, MULTILABEL)),
        Case("focal-g2.0-ls0.2", lambda k: gbloss.FocalLoss(2.0, label_smoothing=0.2),
             (BINARY, MULTICLASS, MULTILABEL)),
        Case("focal-g0.5-aK-ls0.1",
             lambda k: gbloss.FocalLoss(0.5, per_class_alpha(k), label_smoothing=0.1),
             (MULTICLASS, MULTILABEL)),
        Case("poly-e1.0-g0.0-ls0.1", lambda k: gbloss.PolyLoss(1.0, label_smoothing=0.1),
             (BINARY, MULTICLASS, MULTILABEL)),
        Case("poly-e-1.0-g2.0-aK-ls0.3",
             lambda k: gbloss.PolyLoss(-1.0, 2.0, per_class_alpha(k), label_smoothing=0.3),
             (MULTICLASS, MULTILABEL)),
    ]
    for margin in (0.5, 2.0):
        cases.append(Case(f"ldam-m{margin}",
                          lambda k, m=margin: gbloss.LDAMLoss(m, counts_for(k)),
                          (BINARY, MULTICLASS)))
    return cases


REGISTRY = _registry()


def case_params(tasks=(BINARY, MULTICLASS, MULTILABEL), k_values=K_VALUES, select=None,
                cases=REGISTRY):
    """``pytest.param(case, task, K)`` for every registry entry, task and K, with readable ids."""
    params = []
    for case in cases:
        if select is not None and not select(case):
            continue
        for task in tasks:
            if task not in case.tasks:
                continue
            for k in (1,) if task == BINARY else k_values:
                suffix = "" if task == BINARY else f"-K{k}"
                params.append(pytest.param(case, task, k, id=f"{case.name}-{task}{suffix}"))
    return params


def with_policy(loss, hessian):
    """The same loss with another Hessian policy."""
    return type(loss)(**{**loss.get_params(), "hessian": hessian})


def kink(loss):
    """The ASL kink ``p = clip`` as a margin, or None."""
    clip = getattr(loss, "clip", 0.0)
    return np.log(clip / (1.0 - clip)) if clip > 0 else None


def make_data(task, n_out, n, rng, *, soft=False, low=-8.0, high=8.0, avoid_kink_of=None):
    """Labels and margins for one task, margins on the 2**-20 grid.

    ``soft`` draws labels in [0, 1] for the sigmoid tasks. ``avoid_kink_of``: keep every margin
    whose probability is within 1e-3 of that loss's ASL clip away from the kink.
    """
    shape = (n,) if task == BINARY else (n, n_out)
    raw = rng.uniform(low, high, shape)
    if task == MULTICLASS:
        y = rng.integers(0, n_out, n).astype(np.float64)
    elif soft:
        y = rng.uniform(0.0, 1.0, shape)
        y[rng.uniform(size=shape) < 0.2] = 0.0  # keep some exact 0/1 labels in the mix
        y[rng.uniform(size=shape) < 0.2] = 1.0
    else:
        y = rng.integers(0, 2, shape).astype(np.float64)
    if avoid_kink_of is not None and kink(avoid_kink_of) is not None:
        clip = avoid_kink_of.clip
        p = 1.0 / (1.0 + np.exp(-raw))
        near = np.abs(p - clip) < 2e-3
        raw = np.where(near, raw + 0.2, raw)
    return y, np.round(raw / GRID) * GRID


def column_fd(func, raw, k, step=STEP):
    """4th-order central difference of ``func(raw)`` (vectorised over rows) w.r.t. column k.

    ``(-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h``; a 1-D ``raw`` is perturbed as a whole.
    """

    def at(d):
        x = raw.copy()
        if x.ndim == 1:
            x += d
        else:
            x[:, k] += d
        return func(x)

    return (-at(2 * step) + 8 * at(step) - 8 * at(-step) + at(-2 * step)) / (12 * step)


@pytest.fixture
def rng(request):
    """A generator seeded from the test id, so every test draws its own reproducible data."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(scope="module")
def client():
    """A Dask client on a 2-worker LocalCluster of processes, one per test module."""
    import logging

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
