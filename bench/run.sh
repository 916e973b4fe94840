#!/usr/bin/env bash
# bench/run.sh — nnc against PyTorch on Fashion-MNIST, whole epochs, in one run (issue 9):
# examples/fashion.nn (MLP) and examples/fashion_cnn.nn (CNN), seconds per epoch, images/s,
# GFLOP/s and % of the measured FMA peak, the ratio against PyTorch's best configuration, test
# accuracies, inference at batch 1 and 1000, nnc's compile time and peak memory. Writes its
# section of bench/RESULTS.md; --scaling: the MLP epoch against batch, width and threads. Not a
# test. Options: see `bench/run.sh --help` (bench/speed.py).
#
#   bench/run.sh                 # both models, 3 epochs each side and configuration
#   bench/run.sh --epochs 1 --models fashion --out /tmp/r.md
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/python3 ] || { echo "run.sh: error: /usr/bin/python3 (with Debian's python3-torch) is needed" >&2; exit 1; }
[ -x "$repo/build/nnc" ] || { echo "run.sh: error: build nnc first: cmake -S . -B build -G Ninja && cmake --build build" >&2; exit 1; }
[ -e "$repo/data/mnist/train-images-idx3-ubyte" ] || [ -e "$repo/data/mnist/train-images-idx3-ubyte.gz" ] ||
  "$repo/scripts/get-mnist.sh" "$repo/data/mnist"
exec /usr/bin/python3 "$repo/bench/speed.py" "$@"
