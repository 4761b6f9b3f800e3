#!/usr/bin/env bash
# The prepared GPU check: the GPU tests, then the GPU benchmarks, in a few minutes on one H100/H200.
# Run from the repository root on a machine with a CUDA GPU and the project installed:
#   RBM_REC_DATA=/path/to/data bash benchmarks/gpu.sh
# Parts: GPU tests; the MNIST epoch (target <= 0.05 s); the 25M-shape recommender epoch (target <= 2 s);
# nccl data-parallel training under torchrun with every GPU present (world size 1 at least), checked
# against one process; a long run of the 500-unit MNIST model (the exercise's 200 epochs) scored by AIS.
set -euo pipefail
cd "$(dirname "$0")/.."
GPUS=$(python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.device_count())")
python -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0), '×', torch.cuda.device_count())"
started=$SECONDS

echo "== GPU tests"
python -m pytest -q -m gpu tests/

echo "== MNIST epoch time on the GPU (one CD-1 epoch, 500 hidden, batch 100; target <= 0.05 s)"
python benchmarks/mnist_speed.py --device cuda --epochs 5 --skip-sklearn

echo "== MovieLens-25M-shaped synthetic data on the GPU (target: a ratings-model epoch <= 2 s)"
python benchmarks/movielens_scale.py --device cuda

echo "== nccl DDP: the joint recommender on ml-100k u1 under torchrun, 1 process and $GPUS"
python benchmarks/distributed_speed.py movielens --epochs 6 --device cuda
torchrun --nproc-per-node "$GPUS" benchmarks/distributed_speed.py movielens --epochs 6 --device cuda
echo "== nccl DDP: MNIST, 500 hidden, PCD-1, 1 process and $GPUS"
python benchmarks/distributed_speed.py mnist --epochs 2 --device cuda
torchrun --nproc-per-node "$GPUS" benchmarks/distributed_speed.py mnist --epochs 2 --device cuda

echo "== A long run: the 500-unit MNIST model, the exercise's recipe (200 epochs), test log-likelihood by AIS"
python benchmarks/mnist_quality.py --device cuda --plain-epochs 0 --small-epochs 0

echo "== gpu.sh took $((SECONDS - started)) s"
