#!/usr/bin/env bash
# fuzz.sh — runs one of nnc's libFuzzer targets (tests/fuzz; build with
# -DNNC_FUZZ=ON and clang, see docs/RELIABILITY.md) on a corpus seeded from
# the repository's examples and tests.
#
#   scripts/fuzz.sh BUILD TARGET SECONDS [LIBFUZZER ARGS…]
#       fuzz TARGET (source, idx, safetensors or repl) for SECONDS; the corpus
#       grows in BUILD/fuzz/corpus/TARGET, crashes land in BUILD/fuzz/crashes/
#       (idx and safetensors write each input to a file under $TMPDIR: put it on
#       a tmpfs, e.g. TMPDIR=/dev/shm, or they mostly wait for the disk)
#   scripts/fuzz.sh --once BUILD TARGET
#       run TARGET once over its seeds and tests/fuzz/regressions/TARGET/
#       (what the suite's fuzz.* tests do)
set -euo pipefail
shopt -s nullglob
once=0
if [ "${1:-}" = "--once" ]; then
  once=1
  shift
fi
if [ $# -lt 2 ] || { [ $once = 0 ] && [ $# -lt 3 ]; }; then
  echo "usage: $0 BUILD TARGET SECONDS [LIBFUZZER ARGS...] | $0 --once BUILD TARGET" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
target=$2
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$build/fuzz/fuzz_$target
[ -x "$binary" ] || { echo "fuzz.sh: no $binary (configure with -DNNC_FUZZ=ON)" >&2; exit 2; }

# The seeds, made afresh in BUILD/fuzz/seeds/TARGET.
seeds=$build/fuzz/seeds/$target
rm -rf "$seeds"
mkdir -p "$seeds"
case $target in
  source)
    cp "$root"/examples/*.nn "$root"/tests/golden/*.nn "$root"/tests/errors/*.nn \
       "$root"/tests/warnings/*.nn "$seeds"/
    ;;
  repl)
    cp "$root"/tests/repl/*.in "$seeds"/
    # Models to type in: each example as a session (declarations, then commands).
    for f in "$root"/examples/*.nn; do
      { cat "$f"; printf '\n:summary\nfc1: dense(7)\nx = randn(2, 3)\nsoftmax(x @ transpose(x))\n:train 2 steps\n:show fc1\n:set lr 0.5\n:help\n'; } \
        > "$seeds/example-$(basename "$f" .nn).in"
    done
    # :emit loops lowers the whole training step: on a small model only.
    printf 'model Tiny(x: [4]) {\n  x -> fc: dense(3) -> relu\n}\n:emit loops\nfc: dense(2)\n:emit loops\n' \
      > "$seeds/emit.in"
    ;;
  idx)
    cp "$root"/tests/data/mnist-slice/*labels*.gz "$seeds"/
    # Small valid files (the slice's first images and labels) and the
    # header shapes the reader checks.
    python3 - "$root/tests/data/mnist-slice" "$seeds" <<'PY'
import gzip, struct, sys, os
src, out = sys.argv[1], sys.argv[2]
images = gzip.open(os.path.join(src, 'train-images-idx3-ubyte.gz')).read()
labels = gzip.open(os.path.join(src, 'train-labels-idx1-ubyte.gz')).read()
n, rows, cols = struct.unpack('>III', images[4:16])
for k in (1, 3):
    open(os.path.join(out, f'images{k}'), 'wb').write(
        struct.pack('>IIII', 0x803, k, rows, cols) + images[16:16 + k * rows * cols])
    open(os.path.join(out, f'labels{k}'), 'wb').write(struct.pack('>II', 0x801, k) + labels[8:8 + k])
gzip.open(os.path.join(out, 'images3.gz'), 'wb').write(open(os.path.join(out, 'images3'), 'rb').read())
open(os.path.join(out, 'tiny'), 'wb').write(struct.pack('>IIII', 0x803, 2, 2, 2) + bytes(range(8)))
open(os.path.join(out, 'empty'), 'wb').write(struct.pack('>IIII', 0x803, 0, 28, 28))
PY
    ;;
  safetensors)
    python3 - "$seeds" <<'PY'
import json, struct, sys, os
out = sys.argv[1]
def write(name, tensors, metadata=None):
    header, data = {}, b''
    for tname, (dtype, shape, raw) in tensors.items():
        header[tname] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header['__metadata__'] = metadata
    h = json.dumps(header).encode()
    open(os.path.join(out, name), 'wb').write(struct.pack('<Q', len(h)) + h + data)
f32 = lambda n: struct.pack(f'<{n}f', *[0.5 * i for i in range(n)])
write('model', {'fc1.weight': ('F32', [4, 3], f32(12)), 'fc1.bias': ('F32', [4], f32(4)),
                'step': ('I64', [], struct.pack('<q', 7))}, {'format': 'pt', 'nnc': '0.1.0'})
write('mismatch', {'fc1.weight': ('F32', [3, 4], f32(12)), 'extra': ('F64', [2], struct.pack('<2d', 1, 2))})
write('empty', {})
write('scalars', {'a': ('I32', [], struct.pack('<i', 3)), 'b': ('U8', [0], b''), 'c': ('BF16', [1], b'\0\0')})
PY
    ;;
  *)
    echo "fuzz.sh: unknown target '$target' (source, idx, safetensors, repl)" >&2
    exit 2
    ;;
esac

regressions=$root/tests/fuzz/regressions/$target
dict=()
[ -f "$root/tests/fuzz/$target.dict" ] && dict=(-dict="$root/tests/fuzz/$target.dict")

if [ $once = 1 ]; then
  inputs=("$seeds"/*)
  [ -d "$regressions" ] && inputs+=("$regressions"/*)
  exec "$binary" -runs=1 "${inputs[@]}"
fi

seconds=$3
shift 3
corpus=$build/fuzz/corpus/$target
crashes=$build/fuzz/crashes/$target
mkdir -p "$corpus" "$crashes"
extra=("$seeds")
[ -d "$regressions" ] && extra+=("$regressions")
# -timeout: an input taking over 10 s is a hang; -rss_limit_mb: over 2 GB is a bug.
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$crashes/" "${dict[@]}" "$@" "$corpus" "${extra[@]}"
