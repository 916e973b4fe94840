#!/usr/bin/env bash
# bench/cnn_epoch.sh — an epoch of examples/fashion_cnn.nn: nnc (and optionally a second nnc
# binary, e.g. a baseline build) against PyTorch's same recipe (bench/torch_reference.py
# --recipe fashion_cnn), on the same data, runs interleaved. A benchmark, not a test: not part
# of ctest. See bench/README.md, "Convolutions: an epoch of fashion_cnn.nn".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prog=cnn_epoch.sh

usage() {
  cat <<EOF
usage: bench/cnn_epoch.sh [OPTIONS]

Trains examples/fashion_cnn.nn with nnc (and with --base, a second nnc binary)
and with PyTorch, --runs times each per thread count, the sides
interleaved, and prints the median time of the last epoch of each side (the
training loop alone: the 'seconds' of --json) and the ratios.

options (relative paths are relative to the current directory):
  --nnc PATH        the nnc binary (default: build/nnc of this checkout)
  --base PATH       a second nnc binary to time the same way (default: none)
  --data DIR        MNIST-format data (default: tests/data/mnist-slice, 2,000 images)
  --epochs N        PyTorch's epochs per run; the last one is timed (default: 2: the
                    first includes PyTorch's warm-up)
  --nnc-epochs N    nnc's epochs per run; the last one is timed (default: 1: nnc
                    compiles before its first epoch, outside the time of --json)
  --runs N          runs of each side per thread count (default: 3)
  --threads LIST    thread counts, comma-separated (default: 1,2)
  --python PATH     the interpreter with torch (default: /usr/bin/python3)
  --torch-ld-library-path DIR   LD_LIBRARY_PATH for PyTorch only (its BLAS: see README)
  --no-torch        time nnc only
  -h, --help        this help
EOF
}

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

nnc=$repo/build/nnc
base=
data=$repo/tests/data/mnist-slice
epochs=2
nnc_epochs=1
runs=3
threads=1,2
python=/usr/bin/python3
torch_ld=
torch=1

while [ $# -gt 0 ]; do
  case $1 in
    --nnc) need_arg "$@"; nnc=$(abspath "$2"); shift 2 ;;
    --base) need_arg "$@"; base=$(abspath "$2"); shift 2 ;;
    --data) need_arg "$@"; data=$(abspath "$2"); shift 2 ;;
    --epochs) need_arg "$@"; epochs=$2; shift 2 ;;
    --nnc-epochs) need_arg "$@"; nnc_epochs=$2; shift 2 ;;
    --runs) need_arg "$@"; runs=$2; shift 2 ;;
    --threads) need_arg "$@"; threads=$2; shift 2 ;;
    --python) need_arg "$@"; python=$2; shift 2 ;;
    --torch-ld-library-path) need_arg "$@"; torch_ld=$(abspath "$2"); shift 2 ;;
    --no-torch) torch=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
for v in epochs nnc_epochs runs; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer, not '${!v}'"
done
[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads must be a list like 1,2, not '$threads'"
check_nnc "$nnc"
[ -z "$base" ] || check_nnc "$base"
has_idx "$data" || die "no MNIST-format IDX files in $data (pass --data DIR)"

work=$(mktemp -d /tmp/cnn_epoch.XXXXXX)
# the last line of JSON Lines on stdout: its "seconds"
last_seconds() { sed -n 's/.*"seconds": \([0-9.e+-]*\).*/\1/p' "$1" | tail -1; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

run_nnc() { # BINARY THREADS OUT
  "$1" "$repo/examples/fashion_cnn.nn" --train --json --epochs "$nnc_epochs" --data "$data" \
    --threads "$2" >"$3" 2>"$3.err" || die "$1 failed: $(tail -3 "$3.err")"
}
run_torch() { # THREADS OUT
  local env=(env "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}")
  [ -z "$torch_ld" ] || env+=("LD_LIBRARY_PATH=$torch_ld")
  "${env[@]}" "$python" "$here/torch_reference.py" --recipe fashion_cnn --data "$data" \
    --epochs "$epochs" --threads "$1" >"$2" 2>"$2.err"
}

if [ $torch = 1 ]; then
  set +e
  "$python" "$here/torch_reference.py" --info >/dev/null 2>&1
  rc=$?
  set -e
  [ $rc = 0 ] || { note "PyTorch is unavailable (exit $rc): timing nnc only"; torch=0; }
fi

sides=(nnc)
[ -z "$base" ] || sides+=(base)
[ $torch = 0 ] || sides+=(torch)
echo "fashion_cnn.nn on $data, $nnc_epochs (nnc) and $epochs (torch) epochs per run, the last timed, $runs runs; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a tlist <<<"$threads"
for t in "${tlist[@]}"; do
  for r in $(seq 1 "$runs"); do
    # rotate the order of the sides from run to run
    n=${#sides[@]}
    for k in $(seq 0 $((n - 1))); do
      side=${sides[$(((k + r - 1) % n))]}
      out=$work/$side-t$t-r$r.json
      case $side in
        nnc) run_nnc "$nnc" "$t" "$out" ;;
        base) run_nnc "$base" "$t" "$out" ;;
        torch) run_torch "$t" "$out" || die "torch_reference.py failed: $(tail -3 "$out.err")" ;;
      esac
      echo "  threads $t run $r $side: $(last_seconds "$out") s" >&2
    done
  done
  line="threads $t:"
  declare -A med=()
  for side in "${sides[@]}"; do
    med[$side]=$(for r in $(seq 1 "$runs"); do last_seconds "$work/$side-t$t-r$r.json"; done | median)
    line+="  $side ${med[$side]} s"
  done
  [ -z "$base" ] || line+="  base/nnc $(awk -v a="${med[base]}" -v b="${med[nnc]}" 'BEGIN{printf "%.2f", a/b}')x"
  [ $torch = 0 ] || line+="  torch/nnc $(awk -v a="${med[torch]}" -v b="${med[nnc]}" 'BEGIN{printf "%.2f", a/b}')x"
  echo "$line"
  unset med
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg); runs in $work"
