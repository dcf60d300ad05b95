"""Every script in examples/ runs, on tiny data, in a fresh interpreter.

Each example honours ``GBLOSS_EXAMPLE_SMALL=1`` (few rows, few trees); scripts whose optional
dependencies are missing are skipped, and the GPU example runs only where CuPy sees a CUDA
device.
"""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: Optional packages an example may import at top level: a missing one skips the example.
OPTIONAL = {"xgboost", "lightgbm", "dask", "distributed", "cupy", "matplotlib", "pandas",
            "numba_cuda", "cudf"}
MAX_LINES = 100


def _imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _has_cuda_device():
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device, broken install
        return False


def _needs(path):
    """Why the example cannot run here, or None."""
    missing = sorted(m for m in _imports(path) & OPTIONAL if importlib.util.find_spec(m) is None)
    if missing:
        return f"needs {', '.join(missing)}"
    if "gpu" in path.stem and not _has_cuda_device():
        return "needs an NVIDIA GPU (CuPy with a CUDA device)"
    return None


def test_there_are_examples():
    names = {p.stem for p in EXAMPLES}
    assert {"xgboost_native", "sklearn_grid_search", "multilabel", "dask_xgboost",
            "logit_adjusted_longtail"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_short_and_honours_small_mode(path):
    text = path.read_text()
    assert text.startswith('"""'), "an example opens with a docstring saying what it shows"
    assert len(text.splitlines()) <= MAX_LINES
    assert "GBLOSS_EXAMPLE_SMALL" in text, "the test suite runs examples on tiny data"


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.dask) if "dask" in p.stem else p for p in EXAMPLES],
    ids=lambda p: p.name)
def test_example_runs(path, tmp_path):
    reason = _needs(path)
    if reason:
        pytest.skip(reason)
    if "gpu" in path.stem:
        pytest.importorskip("cupy")  # marks the intent; _needs has checked the device
    env = {**os.environ, "GBLOSS_EXAMPLE_SMALL": "1", "MPLBACKEND": "Agg",
           "OMP_WAIT_POLICY": "PASSIVE",  # XGBoost's and Numba's OpenMP threads share cores
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    env.setdefault("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n" \
                                 f"{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{path.name} printed nothing"
