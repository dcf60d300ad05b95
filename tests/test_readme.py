"""The code in README.md and docs/*.md runs as written.

Every ```python block is executed verbatim, each in a fresh namespace that holds only the data
names the documentation assumes (``X``, ``y``, ``X_train``, ``dtrain``, ``train_set`` ...; see
:func:`data_cell`), on small synthetic data. Modules are not in that namespace: a block must
import what it uses. A block that needs a missing optional package (an engine, matplotlib...) is
skipped.

An HTML comment right above a block, ``<!-- readme-test: xfail REASON -->``, marks it as
expected to fail (strictly: once it passes, the mark must go).

The install commands are checked too: every extra they name exists in pyproject.toml, and the
first command, which runs ``gbloss compare``, installs what its ``--out`` needs.
"""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```python\n(?P<code>.*?)^```",
                   re.DOTALL | re.MULTILINE)
#: Optional packages (extras of gbloss): a block that needs a missing one is skipped.
OPTIONAL = {"xgboost", "lightgbm", "dask", "distributed", "matplotlib", "pandas"}
INSTALL = re.compile(r"pip install (?:-e )?\"?\.\[(?P<extras>[a-z,]+)\]\"?")


def _blocks(document):
    """(code, mark, line) of each ```python block of a document."""
    text = document.read_text()
    for match in FENCE.finditer(text):
        yield match["code"], match["mark"], text.count("\n", 0, match.start("code")) + 1


def _block_params():
    for document in DOCUMENTS:
        for code, mark, line in _blocks(document):
            yield pytest.param(code, marks=_marks(mark), id=f"{document.relative_to(ROOT)}:{line}")


def _marks(mark):
    if mark is None:
        return ()
    kind, _, reason = mark.partition(" ")
    if kind != "xfail" or not reason:
        raise ValueError(f"a readme-test mark is 'xfail REASON', got {mark!r}")
    return pytest.mark.xfail(reason=reason, strict=True)


def data_cell():
    """The names the documentation's snippets take as given, on small synthetic data.

    Binary, 10% positives: ``X, y`` (all rows), ``X_train, y_train``, ``X_val, y_val``,
    ``X_test, y_test``; ``w`` sample weights and ``raw`` raw scores of ``y``'s rows;
    ``Y_multilabel`` three labels of ``X``'s rows; ``dtrain, dvalid`` (XGBoost DMatrix) and
    ``train_set, valid_set`` (LightGBM Dataset) of the training and validation rows.
    """
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    X, y = make_classification(n_samples=800, n_features=8, n_informative=4, weights=[0.9],
                               flip_y=0.01, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                      stratify=y_train, random_state=0)
    Y_multilabel = np.column_stack([y, X[:, 0] > 0.5, X[:, 1] + X[:, 2] > 1.0]).astype(float)
    data = {"X": X, "y": y, "X_train": X_train, "y_train": y_train, "X_val": X_val,
            "y_val": y_val, "X_test": X_test, "y_test": y_test,
            "w": rng.uniform(0.5, 2.0, len(y)), "raw": rng.normal(-2.0, 2.0, len(y)),
            "Y_multilabel": Y_multilabel}
    if importlib.util.find_spec("xgboost"):
        import xgboost

        data["dtrain"] = xgboost.DMatrix(X_train, label=y_train)
        data["dvalid"] = xgboost.DMatrix(X_val, label=y_val)
    if importlib.util.find_spec("lightgbm"):
        import lightgbm

        data["train_set"] = lightgbm.Dataset(X_train, y_train)
        data["valid_set"] = lightgbm.Dataset(X_val, y_val, reference=data["train_set"])
    return data


def _run(code, namespace, name):
    """Execute a block; a missing optional package skips the test."""
    try:
        exec(compile(code, name, "exec"), namespace)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"needs {exc.name}")
        raise


def test_the_readme_has_python_blocks():
    assert len(list(_blocks(ROOT / "README.md"))) >= 5


@pytest.mark.parametrize("code", list(_block_params()))
def test_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block may save files
    _run(code, {"__name__": "__readme__", **data_cell()}, "<readme block>")


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if any(_blocks(d))],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_blocks_run_one_after_the_other(document, tmp_path, monkeypatch):
    """A reader pastes the blocks into one session, on the same data objects."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__", **data_cell()}
    for code, mark, line in _blocks(document):
        if mark is None:
            _run(code, namespace, f"<block at line {line}>")


def _extras():
    """pyproject.toml's extras, each resolved to the set of requirement names it installs."""
    tomllib = pytest.importorskip("tomllib")
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = table["optional-dependencies"]

    def resolve(extra):
        names = set()
        for requirement in extras[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower()
            inner = re.search(r"\[(.*)\]", requirement)
            if name == table["name"] and inner:
                names |= set().union(*(resolve(e.strip()) for e in inner[1].split(",")))
            else:
                names.add(name)
        return names

    return {extra: resolve(extra) for extra in extras}


def _install_commands():
    for document in DOCUMENTS:
        for line in document.read_text().splitlines():
            for match in INSTALL.finditer(line):
                yield line, match["extras"].split(",")


def test_install_commands_name_existing_extras():
    extras = _extras()
    commands = list(_install_commands())
    assert commands
    for line, names in commands:
        unknown = [name for name in names if name not in extras]
        assert not unknown, f"{line!r} names extras that pyproject.toml lacks: {unknown}"


def test_first_command_installs_what_compare_out_needs():
    extras = _extras()
    line, names = next(_install_commands())
    assert "gbloss compare" in line, "the README opens with the install-and-compare command"
    installed = set().union(*(extras[name] for name in names))
    # an engine, the progress bar, CSV input and the figures of --out
    assert installed & {"xgboost", "lightgbm"}
    assert {"tqdm", "pandas", "matplotlib"} <= installed, f"{line!r} installs {installed}"
