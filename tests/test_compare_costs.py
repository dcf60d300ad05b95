"""``gbloss compare --costs``: the expected cost per row of the Bayes decisions."""

import numpy as np
import pytest
from conftest import MULTICLASS

from gbloss import compare as C
from gbloss.decisions import bayes_decision, expected_cost

FAST = ("--folds", "2", "--n-estimators", "5", "--no-progress", "--losses", "ce")


def run_cli(capsys, *args):
    code = C.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cost_is_the_mean_cost_of_the_bayes_decisions(rng):
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet(np.ones(3), size=200)
    costs = np.array([[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [8.0, 1.0, 0.0]])
    got = C.scores(MULTICLASS, y, proba, np.argmax(proba, axis=1), costs)["cost"]
    brute = np.mean([costs[y[i], np.argmin(proba[i] @ costs)] for i in range(200)])
    assert got == pytest.approx(brute, rel=1e-15)
    assert got == expected_cost(y, bayes_decision(proba, costs), costs)
    assert np.isnan(C.scores(MULTICLASS, y, proba, np.argmax(proba, axis=1))["cost"])


def test_binary_shorthand_in_the_table(capsys):
    code, out, err = run_cli(capsys, *FAST, "--costs", "fn=10,fp=1")
    assert code == 0, err
    assert "cost/row" in out.splitlines()[0]
    assert "C[true, predicted] = [[0.0, 1.0], [10.0, 0.0]]" in " ".join(out.split())


def test_no_costs_no_column(capsys):
    code, out, err = run_cli(capsys, *FAST)
    assert code == 0, err
    assert "cost/row" not in out


def test_selecting_by_cost(capsys):
    code, out, err = run_cli(capsys, "--folds", "2", "--n-estimators", "5", "--no-progress",
                             "--losses", "focal", "--costs", "fn=10,fp=1", "--select", "cost")
    assert code == 0, err
    assert "focal by cost/row" in " ".join(out.split())


@pytest.mark.parametrize(("args", "message"), [
    (("--costs", "fn=10"), "'fn': cost, 'fp': cost"),
    (("--costs", "fn=ten,fp=1"), "fn must be a number"),
    (("--costs", "[[0, 1], [1, 1]]"), "zero diagonal"),
    (("--costs", "[[0, 1], [1"), "not a valid JSON matrix"),
    (("--select", "cost"), "--select cost needs --costs"),
])
def test_cost_errors_are_one_line(capsys, args, message):
    code, out, err = run_cli(capsys, *FAST, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1




def test_written_results_carry_the_cost_column_only_when_computed(capsys, tmp_path):
    for extra, expected in (((), False), (("--costs", "fn=10,fp=1"), True)):
        out_dir = tmp_path / str(expected)
        code, out, err = run_cli(capsys, *FAST, *extra, "--no-plots", "--out", str(out_dir))
        assert code == 0, err
        header = (out_dir / "results.csv").read_text().splitlines()[0].split(",")
        assert ("cost_mean" in header) is expected
