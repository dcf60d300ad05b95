"""``gbloss compare``: the table, CSV inputs, error handling, outputs and figures.

Every run is tiny (a few trees, 2-3 folds) so the whole file takes seconds.
"""

import csv
import errno
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

import gbloss
import gbloss.__main__
from gbloss import compare as C
from gbloss.__main__ import main as gbloss_main

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
HAS_PANDAS = importlib.util.find_spec("pandas") is not None
needs_mpl = pytest.mark.skipif(not HAS_MPL, reason="needs matplotlib (the plot extra)")
needs_pandas = pytest.mark.skipif(not HAS_PANDAS, reason="needs pandas (the cli extra)")

FAST = ["--folds", "2", "--n-estimators", "5", "--no-progress"]
HEADERS = ["loss", "parameters", "PR-AUC", "ROC-AUC", "bal. acc.", "F1", "log-loss", "fit s"]
NUMBER = re.compile(r"(\d+\.\d+) ± (\d+\.\d+)")


def run_cli(capsys, *args):
    code = gbloss_main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def flat(text):
    """The text with line wrapping undone (the footer is wrapped at 100 columns)."""
    return " ".join(text.split())


def table_rows(out):
    """{loss: [(mean, sd) per metric column]} parsed from the printed table."""
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == "loss"
    rows = {}
    for line in lines[2:]:
        if not line.strip():
            break
        rows[line.split()[0]] = [(float(a), float(b)) for a, b in NUMBER.findall(line)]
    return rows


def check_rows(rows, names, n_folds=2):
    assert list(rows) == names
    for name, cells in rows.items():
        assert len(cells) == 6, name  # five metrics and the fit time, each mean ± sd
        for j, (mean, sd) in enumerate(cells[:4]):
            assert 0.0 <= mean <= 1.0, (name, j)
            assert sd >= 0.0
        assert cells[4][0] > 0.0  # log-loss
        assert cells[5][0] >= 0.0  # fit seconds


# -- data ----------------------------------------------------------------------------------------


def write_csv(path, columns):
    names = list(columns)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(["" if v is None else v for v in row])
    return str(path)


@pytest.fixture
def mixed_csv(tmp_path):
    """Binary: numeric, categorical (strings) and missing values, string labels 'no'/'yes'."""
    rng = np.random.default_rng(0)
    n = 160
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(x + (colour == "red") + rng.normal(0, 0.5, n) > 1.4, "yes", "no")
    x_missing = np.where(rng.random(n) < 0.1, None, np.round(rng.normal(size=n), 3))
    colour_missing = np.where(rng.random(n) < 0.1, None, colour)
    return write_csv(tmp_path / "mixed.csv", {
        "x": np.round(x, 4), "colour": colour_missing, "noise": x_missing, "label": y})


@pytest.fixture
def multiclass_csv(tmp_path):
    rng = np.random.default_rng(1)
    n = 180
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.select([x1 > 0.9, x2 > 0.6], ["rare", "mid"], "common")
    return write_csv(tmp_path / "multi.csv", {"x1": np.round(x1, 4), "x2": np.round(x2, 4),
                                               "shop": rng.choice(["a", "b"], size=n),
                                               "species": label})


@pytest.fixture
def multilabel_csv(tmp_path):
    rng = np.random.default_rng(2)
    n = 160
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return write_csv(tmp_path / "tags.csv", {
        "x1": np.round(x1, 4), "x2": np.round(x2, 4),
        "sports": (x1 > 0.5).astype(int),
        "news": np.where(x2 + 0.3 * x1 > 0.8, "yes", "no")})


# -- the table ---------------------------------------------------------------------------------


def test_default_run_prints_one_table(capsys):
    code, out, err = run_cli(capsys, *FAST)
    assert code == 0, err
    assert out.splitlines()[0].split() == "loss parameters PR-AUC ROC-AUC bal. acc. F1 " \
        "log-loss fit s".split()
    rows = table_rows(out)
    check_rows(rows, ["ce", "focal", "asl", "la", "ce+spw"])
    assert "embedded make_classification (90:10" in flat(out)
    assert "2000 rows, 2 features" in flat(out)
    assert "calibrated" in flat(out)
    assert "scale_pos_weight" in flat(out)
    assert "Traceback" not in err


def test_compare_api_matches_sklearn_metrics():
    data = C.default_dataset()
    assert data.X.shape == (2000, 2)
    assert 0.09 < data.y.mean() < 0.12
    result = C.compare(data, losses="ce,focal", folds=2, n_estimators=5, grid=False)
    splits = C._splits(data, 2, 0)
    names = ["ce", "focal", "ce+spw"]
    assert [e["loss"] for e in result.summary] == names
    assert [r["loss"] for r in result.folds] == names * 2
    # the out-of-fold probabilities reproduce the per-fold sklearn scores
    for row in result.folds:
        te = splits[row["fold"]][1]
        p = result.oof[row["loss"]][te]
        assert row["pr_auc"] == pytest.approx(skm.average_precision_score(data.y[te], p[:, 1]))
        assert row["log_loss"] == pytest.approx(skm.log_loss(data.y[te], p))
    entry = result.summary[0]
    values = [r["roc_auc"] for r in result.folds if r["loss"] == "ce"]
    assert entry["roc_auc_mean"] == pytest.approx(np.mean(values))
    assert entry["roc_auc_sd"] == pytest.approx(np.std(values, ddof=1))


def test_same_folds_for_every_loss():
    data = C.default_dataset()
    a = [te.tolist() for _, te in C._splits(data, 3, 0)]
    b = [te.tolist() for _, te in C._splits(data, 3, 0)]
    assert a == b
    result = C.compare(data, losses="ce,la", folds=3, n_estimators=3, grid=False)
    for name in ("ce", "la", "ce+spw"):
        assert np.isfinite(result.oof[name]).all()  # every row predicted once, out of fold


def test_fixed_values_skip_the_grid(capsys, monkeypatch):
    fits = []
    real = C._Engine.make

    def counting(self, loss, **kw):
        fits.append(type(loss).__name__)
        return real(self, loss, **kw)

    monkeypatch.setattr(C._Engine, "make", counting)
    code, out, err = run_cli(capsys, *FAST, "--losses", "focal,la", "--gamma", "2",
                             "--alpha", "0.25", "--tau", "1")
    assert code == 0, err
    assert "gamma=2 alpha=0.25" in flat(out)
    assert "tau=1" in flat(out)
    assert "grid:" not in flat(out)
    assert fits.count("FocalLoss") == 1 + 2  # the untimed warm-up, one fit per fold, no search
    assert fits.count("LogitAdjustedLoss") == 1 + 2


def test_grid_selects_inside_the_training_fold(monkeypatch):
    data = C.default_dataset()
    seen = []
    real = C.scores

    def spy(task, y, proba, pred, costs=None):
        seen.append(len(y))
        return real(task, y, proba, pred, costs)

    monkeypatch.setattr(C, "scores", spy)
    result = C.compare(data, losses="focal", folds=2, n_estimators=3)
    # per fold: 4 grid candidates scored on 25% of the 1000 training rows, then the test fold
    assert seen == [250] * 4 + [1000, 1000] + [250] * 4 + [1000, 1000]  # (focal, ce+spw)
    focal = gbloss.losses.by_key("focal")
    grid = {C._format_params(p) for p in C._candidates(focal, "binary", {}, True)}
    assert len(grid) == 4
    assert {r["params"] for r in result.folds if r["loss"] == "focal"} <= grid
    assert "held-out 25% of it (focal by PR-AUC)" in flat(result.table())


# -- losses from the registry ------------------------------------------------------------------


def test_param_fixes_one_loss_or_every_loss_that_searches_it(capsys):
    code, out, err = run_cli(capsys, *FAST, "--losses", "focal,asl,la", "--no-grid",
                             "--param", "focal.gamma=1", "--param", "clip=0", "--tau", "2")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[2:5]}
    assert "gamma=1 alpha=None" in rows["focal"]
    assert "gamma_neg=4 clip=0" in rows["asl"]
    assert "tau=2" in rows["la"]
    data = C.default_dataset()
    focal = gbloss.losses.by_key("focal")
    given = C._assign_fixed({"alpha": 0.25, "gamma_pos": 1.0, "ce.alpha": 0.5},
                            {"ce": gbloss.losses.by_key("ce"), "focal": focal,
                             "asl": gbloss.losses.by_key("asl")}, data.task)
    # a bare name goes to the losses that search it (focal's alpha, not ce's), else to those
    # that take it (gamma_pos: asl); a qualified one to its loss
    assert given == {"ce": {"alpha": 0.5}, "focal": {"alpha": 0.25}, "asl": {"gamma_pos": 1.0}}
    assert C._candidates(focal, "binary", {"gamma": 1.0}, True) == [
        {"gamma": 1.0, "alpha": None}, {"gamma": 1.0, "alpha": 0.25}]


@pytest.mark.parametrize(("args", "expected"), [
    (["--losses", "ce,asl", "--gamma", "2"], "no loss in the table (ce, asl) takes the "
                                             "parameter 'gamma'"),
    (["--losses", "ce", "--param", "focal.gamma=2"], "loss 'focal' is not in the table"),
    (["--losses", "focal", "--param", "focal.gama=2"], "FocalLoss has no parameter 'gama'"),
    (["--losses", "focal", "--gamma", "2", "--param", "gamma=1"], "both fix 'gamma'"),
    (["--losses", "focal", "--param", "gamma"], "expected NAME=VALUE or LOSS.NAME=VALUE"),
    (["--losses", "focal", "--param", "gamma=-1", "--no-grid"],
     "loss 'focal' with gamma=-1 alpha=None: gamma must be >= 0"),
    (["--losses", "la", "--import", "no_such_module_xyz"], "--import no_such_module_xyz"),
])
def test_param_errors_one_line(capsys, args, expected):
    code, out, err = run_cli(capsys, *FAST, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gbloss compare: error: "), err
    assert expected in err
    assert out == ""


def test_multiclass_scalar_alpha_fails_before_any_fit(monkeypatch):
    rng = np.random.default_rng(0)
    data = C.Dataset(rng.normal(size=(60, 2)), np.repeat([0, 1, 2], 20), "multiclass",
                     ["a", "b", "c"], ["x0", "x1"])
    monkeypatch.setattr(C._Engine, "make", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(C.CompareError, match="loss 'focal' with gamma=2 alpha=0.25: .*alpha "
                                             "must hold one weight per class"):
        C.compare(data, losses="focal", fixed={"alpha": 0.25}, grid=False, folds=2)


class SharpFocal(gbloss.FocalLoss):
    """A user's loss: focal loss under its own key, grid and engine defaults."""

    key = "sharp"
    description = "focal loss, sharper"
    compare_select = "roc_auc"

    @classmethod
    def compare_grid(cls, task):
        return {"gamma": (0.5, 3.0)}

    @classmethod
    def compare_fixed(cls, task):
        return {"gamma": 3.0}

    def engine_defaults(self, engine):
        return {"min_child_weight": 0.5}


@pytest.fixture
def clean_registry():
    """Unregister the losses that a test registers."""
    before = set(gbloss.losses.REGISTRY)
    yield gbloss.losses.REGISTRY
    for name in set(gbloss.losses.REGISTRY) - before:
        del gbloss.losses.REGISTRY[name]


@pytest.fixture
def user_loss(clean_registry):
    return gbloss.losses.register(SharpFocal)


def test_user_loss_in_the_table(capsys, user_loss):
    assert "sharp" not in C.default_losses("binary")  # only gbloss's own by default
    code, out, err = run_cli(capsys, *FAST, "--losses", "ce,sharp", "--n-estimators", "3")
    assert code == 0, err
    assert list(table_rows(out)) == ["ce", "sharp", "ce+spw"]
    assert "sharp by ROC-AUC" in flat(out)
    # gbloss's own engine defaults win for every row; the clash is reported
    assert "min_child_weight=0.001" in flat(out)
    assert "SharpFocal asks for min_child_weight=0.5" in flat(err)
    code, out, err = run_cli(capsys, *FAST, "--losses", "sharp", "--param", "sharp.gamma=1",
                             "--no-grid")
    assert code == 0, err
    assert re.search(r"^sharp +gamma=1 ", out, re.MULTILINE)


USER_LOSS_MODULE = """
import numpy as np
from gbloss.losses import BINARY, Loss, register, scalar
from gbloss.losses.primitives import HESS_FLOOR, HESS_PSD


@scalar
def scaled_element(y, z, k, theta, mode):
    scale, = theta
    p = 1.0 / (1.0 + np.exp(-z)) if z >= 0 else np.exp(z) / (1.0 + np.exp(z))
    q = 1.0 - p if z < 0 else np.exp(-z) / (1.0 + np.exp(-z))
    loss = scale * (y * np.logaddexp(0.0, -z) + (1.0 - y) * np.logaddexp(0.0, z))
    floor = HESS_FLOOR * scale if mode == HESS_PSD else 0.0
    return loss, scale * ((1.0 - y) * p - y * q), scale * p * q + floor


@register
class ScaledCrossEntropy(Loss):
    tasks = (BINARY,)
    parameters = ("scale",)
    scalars = {"sigmoid_element": scaled_element}
    key = "scaled"
    description = "cross-entropy times a constant"
    grid = {"scale": (0.5, 2.0)}
    fixed = {"scale": 1.0}
    compare_select = "log_loss"

    def __init__(self, scale=1.0, *, hessian="psd"):
        super().__init__(hessian=hessian)
        self.scale = float(scale)

    def kernel_params(self, task, n_out):
        return (self.scale,)

    def is_proper(self, task):
        return True
"""


def test_import_registers_a_loss_written_from_scratch(capsys, tmp_path, monkeypatch,
                                                      clean_registry):
    module = tmp_path / "my_losses.py"
    module.write_text(USER_LOSS_MODULE)
    monkeypatch.delitem(sys.modules, "my_losses", raising=False)
    code, out, err = run_cli(capsys, *FAST, "--import", str(module), "--losses", "ce,scaled")
    assert code == 0, err
    assert list(table_rows(out)) == ["ce", "scaled", "ce+spw"]
    assert re.search(r"^scaled +scale=(0.5|2)( \(1/2\))? ", out, re.MULTILINE), out
    assert "scaled by log-loss" in flat(out)
    assert clean_registry["ScaledCrossEntropy"].__module__ == "my_losses"
    code, out, err = run_cli(capsys, *FAST, "--import", str(module), "--losses", "scaled",
                             "--param", "scale=3", "--no-grid")
    assert code == 0, err
    assert re.search(r"^scaled +scale=3 ", out, re.MULTILINE)


# -- CSV inputs ----------------------------------------------------------------------------------


@needs_pandas
def test_csv_numeric_categorical_missing_string_target(capsys, mixed_csv):
    code, out, err = run_cli(capsys, *FAST, "--csv", mixed_csv, "--target", "label")
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "asl", "la", "ce+spw"])
    assert "3 features (1 categorical, split natively by XGBoost, feature_types 'c')" \
        in flat(out)
    assert "positive class 'yes'" in flat(out)  # the minority label


def test_xgboost_estimators_get_categorical_feature_types():
    engine = C._Engine("xgboost", "binary", {"n_estimators": 3}, None, [1], 3)
    est = engine.make(gbloss.CrossEntropyLoss())
    assert est.feature_types == ["q", "c", "q"]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=400), rng.integers(0, 4, 400), rng.normal(size=400)])
    est.fit(X, (X[:, 1] == 2).astype(int))
    assert "f1:{" in est.booster_.get_dump()[0]  # a partition split on the categorical column


@needs_pandas
def test_csv_encoding(mixed_csv):
    data = C.load_csv(mixed_csv, ["label"])
    assert data.feature_names == ["x", "colour", "noise"]
    assert data.categorical == [1]
    assert data.task == "binary"
    assert data.classes == ["no", "yes"]
    assert np.isnan(data.X[:, 1]).any()
    assert np.isnan(data.X[:, 2]).any()
    codes = data.X[:, 1][~np.isnan(data.X[:, 1])]
    assert set(codes.tolist()) == {0.0, 1.0, 2.0}
    flipped = C.load_csv(mixed_csv, ["label"], pos_label="no")
    assert flipped.classes == ["yes", "no"]
    assert np.array_equal(flipped.y, 1 - data.y)


@needs_pandas
def test_csv_multiclass(capsys, multiclass_csv):
    code, out, err = run_cli(capsys, *FAST, "--csv", multiclass_csv, "--target", "species")
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "la", "ce+balanced"])
    assert "3 classes" in flat(out)
    assert "one-vs-rest macro" in flat(out)


def test_multiclass_scores_match_sklearn():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], [30, 15, 5])
    proba = rng.dirichlet(np.ones(3), size=50)
    pred = proba.argmax(1)
    s = C.scores("multiclass", y, proba, pred)
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    Y = np.eye(3)[y]
    assert s["pr_auc"] == pytest.approx(skm.average_precision_score(Y, proba))
    assert s["log_loss"] == pytest.approx(skm.log_loss(y, proba))


@needs_pandas
def test_csv_multilabel_several_targets(capsys, multilabel_csv):
    code, out, err = run_cli(capsys, *FAST, "--csv", multilabel_csv, "--target", "sports",
                             "--target", "news")
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "asl", "ce+spw"])
    assert "multi-label target, 2 labels" in flat(out)
    data = C.load_csv(multilabel_csv, ["sports", "news"])
    assert data.y.shape == (160, 2)
    assert set(np.unique(data.y)) == {0, 1}


# -- --out and --csv formats ---------------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the comparison or the data loading starts."""
    monkeypatch.setattr(C, "compare", lambda *a, **k: pytest.fail("the work started"))
    monkeypatch.setattr(C, "default_dataset", lambda: pytest.fail("the data was loaded"))


def test_unwritable_out_fails_before_the_work(capsys, tmp_path, monkeypatch, no_work):
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    cases = [(a_file, "a file is in the way; give a directory"),
             (a_file / "sub", f"a file is in the way ({a_file} is one)")]
    for out, expected in cases:
        code, out_text, err = run_cli(capsys, *FAST, "--out", str(out))
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("gbloss compare: error: --out "), err
        assert expected in err
        assert out_text == ""
    assert a_file.read_text() == "keep me"

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(gbloss.__main__.tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(gbloss.__main__.tempfile, "TemporaryDirectory", read_only)
    for out in (tmp_path, tmp_path / "new" / "dir"):
        for args in (["--out", str(out)], [f"--out={out}"], ["--ou", str(out)]):
            code, _, err = run_cli(capsys, *FAST, *args)
            assert code == 2
            assert err == (f"gbloss compare: error: --out {out}: cannot write in {tmp_path} "
                           f"({os.strerror(errno.EROFS)})\n")
    assert not (tmp_path / "new").exists()  # nothing created


def test_out_is_checked_before_the_parser_loads_the_losses(capsys, tmp_path, monkeypatch):
    a_file = tmp_path / "results"
    a_file.touch()
    monkeypatch.setattr(gbloss.__main__, "build_parser", lambda: pytest.fail("parser built"))
    assert gbloss_main(["compare", "--losses", "ce", "--out", str(a_file)]) == 2
    assert capsys.readouterr().err == (f"gbloss compare: error: --out {a_file}: a file is in "
                                       "the way; give a directory\n")


def test_write_errors_are_one_line(tmp_path):
    result = C.compare(C.default_dataset(), losses="ce", folds=2, n_estimators=2, grid=False)
    (tmp_path / "results.csv").mkdir()  # a directory where a file goes
    with pytest.raises(C.CompareError, match=r"--out .*: Is a directory \(.*results.csv\)"):
        C.write_outputs(result, str(tmp_path), plots=False)


@needs_pandas
def test_semicolon_csv_with_decimal_commas(capsys, tmp_path, mixed_csv):
    with open(mixed_csv) as f:
        rows = list(csv.reader(f))
    path = tmp_path / "european.csv"
    with open(path, "w", newline="") as f:  # the same table as spreadsheets write it in Europe
        csv.writer(f, delimiter=";").writerows(
            [[cell.replace(".", ",") for cell in row] for row in rows])
    assert C.detect_separator(str(path)) == ";"
    assert C.detect_separator(mixed_csv) == ","
    data = C.load_csv(str(path), ["label"])
    expected = C.load_csv(mixed_csv, ["label"])
    assert data.categorical == expected.categorical == [1]
    assert np.array_equal(data.X, expected.X, equal_nan=True)
    assert "columns separated by ';' (detected" in " ".join(data.notes)
    assert "decimal commas read as numbers in x, noise" in data.notes
    code, out, err = run_cli(capsys, *FAST, "--csv", str(path), "--target", "label",
                             "--losses", "ce")
    assert code == 0, err
    assert "3 features (1 categorical" in flat(out)
    code, out, err = run_cli(capsys, *FAST, "--csv", str(path), "--target", "label",
                             "--sep", ",")
    assert code == 2
    assert err.count("\n") == 1
    assert ("read with the separator ',', but its header holds ';': give --sep ';'"
            in err), err


@needs_pandas
def test_unreadable_csv_is_one_line(capsys, tmp_path, monkeypatch, mixed_csv):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), mixed_csv)

    monkeypatch.setattr(C, "open", denied, raising=False)  # the separator's first lines
    code, out, err = run_cli(capsys, *FAST, "--csv", mixed_csv, "--target", "label")
    assert code == 2
    assert err == f"gbloss compare: error: cannot read {mixed_csv}: {os.strerror(errno.EACCES)}\n"


def test_detect_separator(tmp_path):
    for sep in (",", ";", "\t", "|"):
        path = tmp_path / "data.csv"
        path.write_text(sep.join(["a", "b", "label"]) + "\n"
                        + "".join(sep.join(["1.5", f"x{i}", "0"]) + "\n" for i in range(5)))
        assert C.detect_separator(str(path)) == sep
    path.write_text("label\n1\n0\n")  # one column: the default
    assert C.detect_separator(str(path)) == ","


# -- errors --------------------------------------------------------------------------------------


def _bad_inputs(mixed, multiclass, multilabel):
    return [
        (["--csv", "no/such/file.csv", "--target", "y"], "no such file"),
        (["--csv", mixed, "--target", "nope"], "'nope' is not in"),
        (["--csv", mixed, "--target", "label", "--features", "x,zzz"], "'zzz' is not in"),
        (["--csv", mixed, "--target", "label", "--losses", "focal,hinge"], "unknown loss"),
        (["--csv", multiclass, "--target", "species", "--losses", "ce,asl"],
         "does not fit a multiclass target"),
        (["--csv", multilabel, "--target", "sports,news", "--losses", "la"],
         "does not fit a multilabel target"),
        (["--csv", mixed, "--target", "label", "--engine-params", "{max_depth: 2"],
         "not valid JSON"),
        (["--csv", mixed], "needs --target"),
        (["--target", "y"], "need --csv"),
        (["--folds", "1"], "--folds must be"),
        (["--csv", mixed, "--target", "label", "--pos-label", "maybe"], "--pos-label"),
        (["--gamma", "-1", "--losses", "focal"], "gamma must be >= 0"),
        (["--losses", "ce", "--engine-params", '{"eta": 0.3}'], "by its estimator name"),
        (["--losses", "ce", "--engine-params", "[1]"], "must be a JSON object"),
        (["--losses", "ce", "--engine-params", '{"max_depth": -3}'], "max_depth"),  # XGBoost's
        (["--folds", "x"], "invalid int value: 'x'"),  # argparse's own errors: one line too
    ]


@needs_pandas
def test_bad_inputs_give_one_line(capsys, tmp_path, mixed_csv, multiclass_csv,
                                  multilabel_csv):
    one_class = write_csv(tmp_path / "one.csv", {"x": [1, 2, 3, 4], "y": ["a"] * 4})
    cases = _bad_inputs(mixed_csv, multiclass_csv, multilabel_csv)
    cases.append((["--csv", one_class, "--target", "y"], "only one class ('a')"))
    for args, expected in cases:
        code, out, err = run_cli(capsys, *FAST, *args)
        assert code == 2, args
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("gbloss compare: error: "), err
        assert expected in lines[0], (expected, err)
        assert "Traceback" not in err
        assert out == ""


def test_rare_class_and_too_many_folds(capsys):
    # 2 rows of a class cannot be spread over 5 stratified folds
    data = C.Dataset(np.arange(20.0)[:, None], np.array([0] * 18 + [1] * 2), "binary", [0, 1],
                     ["x"])
    with pytest.raises(C.CompareError, match="class 1 has 2 rows, fewer than --folds 5"):
        C.compare(data, folds=5, n_estimators=2)


def test_subprocess_error_one_line(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR",
                                                          str(tmp_path / "nb"))}
    missing = str(tmp_path / "missing.csv")
    proc = subprocess.run([sys.executable, "-m", "gbloss", "compare", "--csv", missing,
                           "--target", "label"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"gbloss compare: error: no such file: {missing}"
    assert proc.stdout == ""


def test_help(capsys):
    assert gbloss_main(["--help"]) == 0
    out = flat(capsys.readouterr().out)
    assert "usage: gbloss" in out
    assert "compare" in out
    assert gbloss_main(["compare", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gbloss compare")
    for option in ("--csv", "--target", "--backend", "--losses", "--folds", "--out", "--gamma",
                   "--alpha", "--tau", "--no-grid", "--select", "--engine-params"):
        assert option in out
    assert gbloss_main([]) == 2  # no command: the help, on stderr
    assert "compare" in capsys.readouterr().err
    assert gbloss_main(["compare", "--backend", "catboost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("gbloss compare: error: argument --backend: invalid choice: "
                          "'catboost'")
    assert C.main(["--no-such-option"]) == 2  # gbloss.compare.main, the same parser
    assert "unrecognized arguments" in capsys.readouterr().err


# -- outputs and figures -----------------------------------------------------------------------


def test_out_writes_tables(capsys, tmp_path):
    out_dir = tmp_path / "res"
    code, out, err = run_cli(capsys, *FAST, "--losses", "ce,focal", "--no-grid", "--out",
                             str(out_dir), "--no-plots")
    assert code == 0, err
    with open(out_dir / "results.csv") as f:
        summary = list(csv.DictReader(f))
    assert [r["loss"] for r in summary] == ["ce", "focal", "ce+spw"]
    for r in summary:
        assert 0 <= float(r["pr_auc_mean"]) <= 1
        assert float(r["n_folds"]) == 2
    with open(out_dir / "folds.csv") as f:
        folds = list(csv.DictReader(f))
    assert len(folds) == 6
    assert {"fold", "loss", "params", "pr_auc", "log_loss", "fit_s"} <= set(folds[0])
    md = (out_dir / "results.md").read_text()
    assert md.startswith("| loss | parameters | PR-AUC |")
    assert "| focal | gamma=2 alpha=None |" in md
    assert not list(out_dir.glob("*.png"))


@needs_mpl
def test_out_writes_figures(capsys, tmp_path):
    out_dir = tmp_path / "res"
    code, out, err = run_cli(capsys, *FAST, "--losses", "ce,focal", "--no-grid", "--out",
                             str(out_dir))
    assert code == 0, err
    for name in ("decision_regions.png", "pr_curves.png", "focal_curves.png"):
        data = (out_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 10_000
    assert "decision_regions.png" in err


@needs_mpl
@needs_pandas
def test_figures_for_multiclass_and_multilabel(capsys, tmp_path, multiclass_csv,
                                               multilabel_csv):
    out_dir = tmp_path / "mc"
    code, _, err = run_cli(capsys, *FAST, "--csv", multiclass_csv, "--target", "species",
                           "--features", "x1,x2", "--no-grid", "--out", str(out_dir))
    assert code == 0, err
    assert (out_dir / "decision_regions.png").exists()  # 2 features, 3 classes
    out_dir = tmp_path / "ml"
    code, _, err = run_cli(capsys, *FAST, "--csv", multilabel_csv, "--target", "sports",
                           "--target", "news", "--no-grid", "--out", str(out_dir))
    assert code == 0, err
    assert (out_dir / "pr_curves.png").exists()
    assert not (out_dir / "decision_regions.png").exists()
    assert "figure skipped" in err


# -- LightGBM --------------------------------------------------------------------------------


@needs_pandas
def test_lightgbm_backend_with_categoricals(capsys, mixed_csv):
    pytest.importorskip("lightgbm")
    if importlib.util.find_spec("gbloss.lightgbm") is None:
        pytest.skip("gbloss.lightgbm is not written yet")
    code, out, err = run_cli(capsys, *FAST, "--csv", mixed_csv, "--target", "label",
                             "--backend", "lightgbm")
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "asl", "la", "ce+spw"])
    assert "cat_feature=1" in flat(out)  # LightGBM splits the category codes natively
    code, out, err = run_cli(capsys, *FAST, "--backend", "lightgbm")  # the embedded data
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "asl", "la", "ce+spw"])


@needs_pandas
def test_lightgbm_multiclass_and_multilabel(capsys, multiclass_csv, multilabel_csv):
    pytest.importorskip("lightgbm")
    if importlib.util.find_spec("gbloss.lightgbm") is None:
        pytest.skip("gbloss.lightgbm is not written yet")
    code, out, err = run_cli(capsys, *FAST, "--no-grid", "--csv", multiclass_csv, "--target",
                             "species", "--backend", "lightgbm")
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "la", "ce+balanced"])
    code, out, err = run_cli(capsys, *FAST, "--no-grid", "--csv", multilabel_csv, "--target",
                             "sports,news", "--backend", "lightgbm")  # one-vs-rest
    assert code == 0, err
    check_rows(table_rows(out), ["ce", "focal", "asl", "ce+spw"])


@needs_mpl
def test_figures_have_labels_and_legends():
    from gbloss import plots

    class Threshold:  # a stand-in model: class 1 right of x0 = 0
        def predict(self, X):
            return (X[:, 0] > 0).astype(int)

    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=60) > 0.8).astype(int)
    fig = plots.decision_regions([("ce", Threshold(), 0.9, 0.8), ("focal", Threshold(), 0.9,
                                                                   0.8)], X, y,
                                 feature_names=["age", "income"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["age", "age"]
    assert axes[0].get_ylabel() == "income"
    assert "balanced accuracy 0.800" in axes[1].get_title()
    assert fig.legends
    proba = np.column_stack([1 - X[:, 0] / 10, X[:, 0] / 10]).clip(0, 1)
    fig = plots.pr_curves({"ce": proba, "ce+spw": proba}, y, "binary", labels=[0, 1])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("ce (pooled AP")
    assert labels[-1].startswith("no skill")
    fig = plots.focal_curves(gammas=(0.0, 2.0))
    loss_ax, grad_ax, ratio_ax = fig.axes
    assert all("p_t" in ax.get_xlabel() for ax in fig.axes)
    assert all(ax.get_ylabel() for ax in fig.axes)
    x, ratio = ratio_ax.get_lines()[1].get_data()
    assert ratio[x > 0.9].max() < 0.03  # gamma=2: easy rows (p_t > 0.9) pull 30x+ less
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
        "cross-entropy (γ = 0)", "focal γ = 2"]


# -- first-run feedback ------------------------------------------------------------------------


def test_compilation_is_announced_once(capsys):
    import numba

    @numba.njit
    def double(x):
        return 2 * x

    @numba.njit
    def triple(x):
        return 3 * x

    with C._announce_compilation(True):
        assert double(1) == 2  # compiles
        assert double(1.5) == 3.0  # compiles another signature: no second notice
    assert capsys.readouterr().err == C._CompileNotice.MESSAGE + "\n"
    with C._announce_compilation(True):
        assert double(2) == 4  # compiled already: nothing to say
    with C._announce_compilation(False):
        assert triple(1) == 3  # --no-progress: silent
    assert capsys.readouterr().err == ""


# -- the figures say what the table says -------------------------------------------------------


def _rendered(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


@needs_mpl
def test_decision_regions_show_the_table_parameters(monkeypatch, tmp_path):
    from gbloss import plots

    def select(spec, engine, X, y, task, metric, seed, progress, costs):  # fold 0: gamma=1
        return {"gamma": 1.0 if seed == 0 else 3.0, "alpha": None}, 0.0

    monkeypatch.setattr(C, "_select", select)
    result = C.compare(C.default_dataset(), losses="focal", folds=3, n_estimators=3)
    assert result.summary[0]["parameters"] == "gamma=3 alpha=None (2/3)"
    est, tr, te, pred = result.first_fold["focal"]
    assert est.loss.gamma == 3.0  # refitted with the table's choice on fold 0's training rows
    assert np.array_equal(te, C._splits(result.data, 3, 0)[0][1])
    assert np.array_equal(pred, est.predict(result.data.X[te]))
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig) or path)
    C._write_figures(result, str(tmp_path))
    titles = [ax.get_title() for ax in figures[0].axes if ax.get_visible()]
    assert titles[0].startswith("focal: gamma=3 alpha=None (chosen in 2/3 folds)\naccuracy ")
    assert titles[1].startswith("ce+spw: pos_weight=")
    assert "with the parameters of the table" in figures[0].get_suptitle()


@needs_mpl
def test_decision_regions_are_pixels_without_contour_lines():
    from gbloss import plots

    class Band:  # class 1 in a band one grid cell wide: drawn as cells, not as two lines
        def predict(self, X):
            return (np.abs(X[:, 1] - 0.3) < 0.01).astype(int)

    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(80, 2))
    y = (X[:, 0] > 0.5).astype(int)
    fig = _rendered(plots.decision_regions([("band", Band(), 0.5, 0.5)], X, y,
                                           resolution=101))
    ax = fig.axes[0]
    assert [type(c).__name__ for c in ax.collections] == ["PathCollection"]  # the points only
    assert not ax.lines
    regions = np.asarray(ax.images[0].get_array())
    assert regions.shape == (101, 101)
    assert set(np.unique(regions)) == {0, 1}
    assert regions[:, 0].sum() == 1  # the band: one row of cells


@needs_mpl
@pytest.mark.parametrize("positive_rate", [0.03, 0.3])
def test_pr_legend_labels_pooled_and_fold_mean_ap_and_stays_off_the_curves(positive_rate):
    from gbloss import plots

    rng = np.random.default_rng(6)
    y = (rng.random(600) < positive_rate).astype(int)
    score = np.clip(0.3 * y + rng.random(600), 0, 1)
    proba = np.column_stack([1 - score, score])
    fig = _rendered(plots.pr_curves({"ce": proba, "focal": proba, "ce+spw": proba}, y,
                                    "binary", labels=[0, 1],
                                    fold_means={"ce": 0.25, "focal": 0.5, "ce+spw": 0.75}))
    ax = fig.axes[0]
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    ap = skm.average_precision_score(y, score)
    assert texts[:3] == [f"{name} (pooled AP {ap:.3f}; mean of folds {m})" for name, m in
                         (("ce", "0.250"), ("focal", "0.500"), ("ce+spw", "0.750"))]
    assert "the table's PR-AUC" in legend.get_title().get_text()
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    Y = np.column_stack([1 - y, y])
    fig = _rendered(plots.pr_curves({"ce": proba}, Y, "multilabel", fold_means={"ce": 0.5}))
    assert fig.axes[0].get_legend().get_texts()[0].get_text().startswith(
        "ce (pooled micro-AP ")
    assert "mean of folds macro 0.500" in fig.axes[0].get_legend().get_texts()[0].get_text()
