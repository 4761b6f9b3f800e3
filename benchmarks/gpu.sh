#!/usr/bin/env bash
# The prepared GPU check: the GPU tests, then the GPU benchmarks, in well under 5 minutes on an H100.
# Run from the repository root on a machine with a CUDA GPU and the project installed:
#   RBM_REC_DATA=/path/to/data bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY
echo "== GPU tests"
python -m pytest -q -m gpu tests/
echo "== MNIST epoch time on the GPU (target: one CD-1 epoch, 500 hidden, batch 100, in <= 0.05 s)"
python benchmarks/mnist_speed.py --device cuda --epochs 5 --skip-sklearn
if [ -f benchmarks/movielens_scale.py ]; then
    echo "== MovieLens-25M-shaped synthetic data on the GPU"
    python benchmarks/movielens_scale.py --device cuda
fi
