#!/usr/bin/env bash
# The GPU checks of gbloss in one go, for the GPU machine (run from the repository root):
#   1. installs the carried XGBoost wheel(s) from .whl/ (CUDA-enabled XGBoost; the machine has
#      CuPy, numba-cuda, numpy, scikit-learn, pandas and pytest already),
#   2. prints the device and the versions,
#   3. runs the GPU tests, `pytest -m gpu tests/test_cuda.py` (CPU/GPU agreement to 1e-9 for
#      every loss on device arrays, the device-resident loop against the host objective with
#      NumPy/CuPy/pandas X, eval sets, early stopping, attributes), then the rest of
#      tests/test_cuda.py on the real GPU (kernels on NumPy in/out, PTX compile, shim),
#   4. profiles one device-resident round (benchmarks/bench_gpu_round.py), runs the benchmark
#      (4M x 50, depth 8, 100 rounds; softmax K=10 on 1M rows), which prints the ratios to the
#      built-in objectives (`--quick`: its --small smoke test instead), and the example.
# The order is by importance; the step limits add up to 530 s. The tests run on pytest-xdist,
# one worker per core (the image has it). Logs go to $OUT (the device
# tool's folder) or /tmp/gpu_check.
#
# With the device tool: carry [".whl"], timeout_s 600, command `bash benchmarks/gpu_check.sh`.
# .whl/ holds xgboost-3.4.1-py3-none-manylinux_2_28_x86_64.whl (python3 -m pip download
# --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl
# xgboost==3.4.1; echo /.whl/ >> .git/info/exclude).
set -uo pipefail
LOG=${OUT:-/tmp/gpu_check}
mkdir -p "$LOG"
status=0

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$PWD/.site" .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD/.site:$PWD"
export NUMBA_CACHE_DIR=/tmp/nbcache_gbloss PYTHONUNBUFFERED=1 GBLOSS_REQUIRE_GPU=1
unset NUMBA_ENABLE_CUDASIM

nvidia-smi -L
python3 - <<'EOF' 2>&1 | tee "$LOG/versions.txt"
import importlib.metadata as md
for name in ("numpy", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "xgboost",
             "scikit-learn", "scipy", "pandas", "pytest"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        pass
import xgboost
print("xgboost from", xgboost.__file__, "cuda:", xgboost.build_info().get("USE_CUDA"))
EOF

step() {  # step NAME TIMEOUT COMMAND...: run, log, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name"
    timeout "$limit" "$@" 2>&1 | tee "$LOG/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}

# one worker per core: most of the tests' time is numba-cuda compiling each loss's kernels
step pytest_gpu 170 python3 -m pytest -m gpu tests/test_cuda.py -q -n auto -p no:cacheprovider -rf
step bench_round 75 python3 benchmarks/bench_gpu_round.py
if [ "${1:-}" = "--quick" ]; then
    step bench_small 90 python3 benchmarks/bench_gpu.py --small
else
    step bench 200 python3 benchmarks/bench_gpu.py
fi
step pytest_rest 45 python3 -m pytest -m "not gpu" tests/test_cuda.py -q -n auto -p no:cacheprovider -rf
step example 40 env GBLOSS_EXAMPLE_SMALL=1 python3 examples/gpu_xgboost.py
exit $status
