#!/usr/bin/env bash
# bench/accuracy.sh — test accuracy of nnc and PyTorch on the same recipes (issue 6).
#
# Trains examples/mnist.nn (10 epochs, StepLR) on the digits and examples/fashion.nn (5 epochs)
# on Fashion-MNIST, once per seed with nnc and once with bench/torch_reference.py (the same
# recipe in PyTorch), optionally also the mnist recipe on the small slice the end-to-end test uses,
# takes the final epoch's test accuracy of every run and writes a Markdown report
# (bench/RESULTS.md). It is a benchmark, not a test: it is not part of ctest.
# See bench/README.md, "Accuracy against PyTorch".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prog=accuracy.sh

usage() {
  cat <<EOF
usage: bench/accuracy.sh [OPTIONS]

Trains examples/mnist.nn and examples/fashion.nn with nnc and with PyTorch
(bench/torch_reference.py), one run per seed each, and writes the final test
accuracies, their medians and the wall times to a Markdown report.

options (relative paths are relative to the current directory):
  --nnc PATH               the nnc binary (default: build/nnc of this checkout)
  --digits DIR             the digits' IDX files (default: data/mnist of this checkout;
                           made with scripts/get-mnist.sh when missing)
  --fashion DIR            Fashion-MNIST's IDX files (default: /usr/share/datasets/fashion-mnist)
  --slice DIR              the end-to-end test's slice (default: tests/data/mnist-slice)
  --no-slice               skip the slice
  --digits-seeds LIST      seeds for the digits (default: "1 2 3 4 5")
  --fashion-seeds LIST     seeds for Fashion-MNIST (default: "1 2 3")
  --slice-seeds LIST       seeds for the slice (default: "1 2 3 4 5")
  --threads N              threads for both nnc and PyTorch (default: 2)
  --python PATH            the interpreter with torch (default: /usr/bin/python3)
  --torch-ld-library-path DIR
                           LD_LIBRARY_PATH for the PyTorch side only (e.g. an unpacked
                           OpenBLAS; see bench/README.md, "PyTorch's BLAS")
  --out FILE               the report (default: bench/RESULTS.md of this checkout)
  --logs DIR               keep every run's output here (default: a new directory in /tmp)
  -h, --help               this help

PyTorch runs with OMP_WAIT_POLICY=PASSIVE unless OMP_WAIT_POLICY is set (see bench/README.md).
Without torch, only nnc runs and the report says PyTorch was unavailable.
EOF
}

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

nnc=$repo/build/nnc
digits=$repo/data/mnist
fashion=/usr/share/datasets/fashion-mnist
slice=$repo/tests/data/mnist-slice
do_slice=1
digits_seeds="1 2 3 4 5"
fashion_seeds="1 2 3"
slice_seeds="1 2 3 4 5"
threads=2
python=/usr/bin/python3
torch_ld=
out=$repo/bench/RESULTS.md
logs=

while [ $# -gt 0 ]; do
  case $1 in
    --nnc) need_arg "$@"; nnc=$(abspath "$2"); shift 2 ;;
    --digits) need_arg "$@"; digits=$(abspath "$2"); shift 2 ;;
    --fashion) need_arg "$@"; fashion=$(abspath "$2"); shift 2 ;;
    --slice) need_arg "$@"; slice=$(abspath "$2"); do_slice=1; shift 2 ;;
    --no-slice) do_slice=0; shift ;;
    --digits-seeds) need_arg "$@"; digits_seeds=$2; shift 2 ;;
    --fashion-seeds) need_arg "$@"; fashion_seeds=$2; shift 2 ;;
    --slice-seeds) need_arg "$@"; slice_seeds=$2; shift 2 ;;
    --threads) need_arg "$@"; threads=$2; shift 2 ;;
    --python) need_arg "$@"; python=$2; shift 2 ;;
    --torch-ld-library-path) need_arg "$@"; torch_ld=$(abspath "$2"); shift 2 ;;
    --out) need_arg "$@"; out=$(abspath "$2"); shift 2 ;;
    --logs) need_arg "$@"; logs=$(abspath "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, not '$threads'"
for list in "$digits_seeds" "$fashion_seeds" "$slice_seeds"; do
  [[ $list =~ ^[[:space:]]*[0-9]+([[:space:]]+[0-9]+)*[[:space:]]*$ ]] ||
    die "a seed list must be non-negative integers separated by spaces, not '$list'"
done
check_nnc "$nnc"
[ -d "$(dirname "$out")" ] || die "the directory of --out $out does not exist"

ensure_digits "$digits"
has_idx "$fashion" ||
  die "Fashion-MNIST is not in $fashion (install Debian's dataset-fashion-mnist, or pass --fashion DIR)"
if [ "$do_slice" = 1 ] && ! has_idx "$slice"; then
  die "the slice is not in $slice (pass --slice DIR, or --no-slice)"
fi

if [ -z "$logs" ]; then
  logs=$(mktemp -d /tmp/nnc-accuracy.XXXXXX)
else
  mkdir -p "$logs"
fi

# The environment of the PyTorch side. libgomp's threads spin while they wait for work, and on a
# busy shared machine a spinning thread whose partner is descheduled wastes its time slice:
# measured here, 2-thread PyTorch was up to ~40x slower per epoch than with PASSIVE (nnc's own
# pool spins only 50 µs before it sleeps). The results do not depend on it.
torch_env=(env "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}")
[ -n "$torch_ld" ] && torch_env+=("LD_LIBRARY_PATH=$torch_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

# Is torch there? torch_reference.py --info exits 77 without it.
have_torch=1
torch_info=
set +e
torch_info=$("${torch_env[@]}" "$python" "$here/torch_reference.py" --info --threads "$threads" 2>"$logs/torch-info.err")
rc=$?
set -e
if [ "$rc" = 77 ] || [ "$rc" = 126 ] || [ "$rc" = 127 ]; then
  have_torch=0
  note "PyTorch is unavailable: $(tail -n 1 "$logs/torch-info.err" 2>/dev/null || true)"
  note "running nnc only; install Debian's python3-torch, or pass --python PATH to an interpreter with torch"
elif [ "$rc" != 0 ]; then
  cat "$logs/torch-info.err" >&2
  die "bench/torch_reference.py --info failed (exit status $rc)"
fi
json_field() { # KEY: the value of "KEY" in the JSON object on stdin (numbers and plain strings)
  sed -n "s/.*\"$1\": *\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" | head -n 1 | tr -d '"'
}
torch_version=n/a
torch_blas=n/a
if [ "$have_torch" = 1 ]; then
  torch_version=$(printf '%s\n' "$torch_info" | json_field torch_version)
  blas_libs=$(printf '%s\n' "$torch_info" | sed -n 's/.*"blas": *\[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' '\n' | sed 's/^ *//')
  if [ -n "$blas_libs" ]; then
    # "libblas.so.3, libopenblasp-r0.3.21.so in DIR" (the directory of the first one)
    torch_blas="$(printf '%s\n' "$blas_libs" | sed 's|.*/||' | paste -sd, - | sed 's/,/, /g') in $(dirname "$(printf '%s\n' "$blas_libs" | head -n 1)")"
    case $blas_libs in
      */x86_64-linux-gnu/blas/*) torch_blas="$torch_blas (the reference BLAS: PyTorch's wall times are much longer than with OpenBLAS)" ;;
    esac
  else
    torch_blas=unknown
  fi
fi

show() { case $1 in "$repo"/*) printf '%s\n' "${1#"$repo"/}" ;; *) printf '%s\n' "$1" ;; esac; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }

start_date=$(date -u '+%Y-%m-%d %H:%M UTC')
start_load=$(loadavg)
start_time=$(now)
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$cpu_model" ] || cpu_model=unknown
ncpu=$(nproc)
nnc_version=$("$nnc" --version 2>&1 | head -n 1 || true)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
# Read-only (diff-index does not refresh the index); may say "changes" for files only touched.
if [ "$commit" != unknown ] && ! git -C "$repo" diff-index --quiet HEAD -- 2>/dev/null; then
  commit="$commit, with uncommitted changes in the tree"
fi

note "logs in $logs; threads $threads; load average $start_load on $ncpu CPUs"
[ "$have_torch" = 1 ] && note "torch $torch_version, BLAS: $torch_blas"

# run IMPL SET RECIPE DIR SEED EPOCHS: one training run; sets run_acc and run_wall.
run() {
  local impl=$1 set=$2 recipe=$3 dir=$4 seed=$5 epochs=$6
  local base="$logs/$set-$impl-seed$seed" t0 t1 rc last
  local -a cmd
  if [ "$impl" = nnc ]; then
    cmd=("$nnc" "$repo/examples/$recipe.nn" --train --json --seed "$seed" --data "$dir" --threads "$threads")
  else
    cmd=("${torch_env[@]}" "$python" "$here/torch_reference.py" --recipe "$recipe" --data "$dir"
         --seed "$seed" --threads "$threads")
  fi
  printf '%q ' "${cmd[@]}" >"$base.cmd"
  note "$set: $impl seed $seed ..."
  t0=$(now)
  set +e
  "${cmd[@]}" >"$base.jsonl" 2>"$base.err"
  rc=$?
  set -e
  t1=$(now)
  if [ "$rc" != 0 ]; then
    tail -n 20 "$base.err" >&2
    die "$set: $impl seed $seed failed with exit status $rc (command in $base.cmd, output in $base.err)"
  fi
  last=$(grep '^{' "$base.jsonl" | tail -n 1 || true)
  local epoch
  epoch=$(printf '%s\n' "$last" | json_field epoch)
  run_acc=$(printf '%s\n' "$last" | json_field test_acc)
  [ "$epoch" = "$epochs" ] ||
    die "$set: $impl seed $seed stopped at epoch '${epoch:-none}', expected $epochs (see $base.jsonl)"
  [[ $run_acc =~ ^[0-9.eE+-]+$ ]] || die "$set: $impl seed $seed: no test_acc in $base.jsonl"
  run_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  note "$set: $impl seed $seed: test accuracy $(pct "$run_acc"), $run_wall s"
}

pct() { awk -v v="$1" 'BEGIN { printf "%.2f%%", 100 * v }'; }
median() { # numbers as arguments
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
total() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s }'; }
points() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", 100 * (a - b) }'; }

# bench SET RECIPE DIR EPOCHS SEEDS...: runs both sides (nnc first for odd seeds, PyTorch first
# for even ones, so that a slow spell does not always hit the same side) and appends the table
# to $report; sets nnc_median and torch_median.
report=$logs/report.md
: >"$report"
bench() {
  local set=$1 recipe=$2 dir=$3 epochs=$4 title=$5
  shift 5
  local -a nnc_accs=() torch_accs=() nnc_walls=() torch_walls=() rows=()
  local seed i order impl
  for seed in "$@"; do
    if [ $((seed % 2)) = 1 ]; then order="nnc torch"; else order="torch nnc"; fi
    local nacc=- nwall=- tacc=- twall=-
    for impl in $order; do
      [ "$impl" = torch ] && [ "$have_torch" = 0 ] && continue
      run "$impl" "$set" "$recipe" "$dir" "$seed" "$epochs"
      if [ "$impl" = nnc ]; then nacc=$run_acc; nwall=$run_wall; else tacc=$run_acc; twall=$run_wall; fi
    done
    nnc_accs+=("$nacc"); nnc_walls+=("$nwall")
    if [ "$have_torch" = 1 ]; then
      torch_accs+=("$tacc"); torch_walls+=("$twall")
      rows+=("| $seed | $(pct "$nacc") | $(pct "$tacc") | $(points "$nacc" "$tacc") | $nwall | $twall |")
    else
      rows+=("| $seed | $(pct "$nacc") | n/a | n/a | $nwall | n/a |")
    fi
  done
  nnc_median=$(median "${nnc_accs[@]}")
  nnc_min=$(minimum "${nnc_accs[@]}")
  torch_median=
  torch_min=
  {
    printf '## %s\n\n' "$title"
    printf '| seed | nnc test acc | PyTorch test acc | nnc − PyTorch (points) | nnc wall (s) | PyTorch wall (s) |\n'
    printf '| ---: | ---: | ---: | ---: | ---: | ---: |\n'
    for i in "${rows[@]}"; do printf '%s\n' "$i"; done
    if [ "$have_torch" = 1 ]; then
      torch_median=$(median "${torch_accs[@]}")
      torch_min=$(minimum "${torch_accs[@]}")
      printf '| **median** | **%s** | **%s** | **%s** | %s | %s |\n' "$(pct "$nnc_median")" \
        "$(pct "$torch_median")" "$(points "$nnc_median" "$torch_median")" \
        "$(median "${nnc_walls[@]}")" "$(median "${torch_walls[@]}")"
      printf '| min | %s | %s | | | |\n' "$(pct "$nnc_min")" "$(pct "$torch_min")"
      printf '| total wall (s) | | | | %s | %s |\n' "$(total "${nnc_walls[@]}")" "$(total "${torch_walls[@]}")"
    else
      printf '| **median** | **%s** | n/a | n/a | %s | n/a |\n' "$(pct "$nnc_median")" "$(median "${nnc_walls[@]}")"
      printf '| min | %s | n/a | | | |\n' "$(pct "$nnc_min")"
      printf '| total wall (s) | | | | %s | n/a |\n' "$(total "${nnc_walls[@]}")"
    fi
    printf '\n'
  } >>"$report"
}

ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b - 1e-12) }'; }

# shellcheck disable=SC2086 # the seed lists are split on purpose
bench digits mnist "$digits" 10 \
  "Digits: examples/mnist.nn (10 epochs, StepLR) on $(show "$digits")" $digits_seeds
digits_nnc=$nnc_median digits_torch=$torch_median
if [ "$have_torch" = 1 ]; then
  bar=$(awk -v t="$digits_torch" 'BEGIN { print t - 0.005 }')
  if ge "$digits_nnc" "$bar"; then digits_verdict="**met**"; else digits_verdict="**not met**"; fi
  digits_line="nnc's median $(pct "$digits_nnc") ≥ PyTorch's median $(pct "$digits_torch") − 0.5 points = $(pct "$bar"): $digits_verdict"
else
  digits_line="not evaluated: PyTorch was unavailable (nnc's median $(pct "$digits_nnc"))"
fi

# shellcheck disable=SC2086
bench fashion fashion "$fashion" 5 \
  "Fashion-MNIST: examples/fashion.nn (5 epochs, constant rate) on $(show "$fashion")" $fashion_seeds
fashion_nnc=$nnc_median
if ge "$fashion_nnc" 0.86; then fashion_verdict="**met**"; else fashion_verdict="**not met**"; fi
fashion_line="nnc's median $(pct "$fashion_nnc") ≥ 86.00%: $fashion_verdict"

slice_line=
if [ "$do_slice" = 1 ]; then
  # shellcheck disable=SC2086
  bench slice mnist "$slice" 10 \
    "The end-to-end test's slice: examples/mnist.nn (10 epochs) on $(show "$slice")" $slice_seeds
  if [ "$have_torch" = 1 ]; then
    slice_line="PyTorch on the slice: median $(pct "$torch_median"), min $(pct "$torch_min"); nnc: median $(pct "$nnc_median"), min $(pct "$nnc_min"). PyTorch's median − 3 points = $(awk -v t="$torch_median" 'BEGIN { printf "%.2f%%", 100 * t - 3 }')."
  else
    slice_line="nnc on the slice: median $(pct "$nnc_median"), min $(pct "$nnc_min") (PyTorch unavailable)."
  fi
fi

end_load=$(loadavg)
elapsed=$(awk -v a="$start_time" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
images() { # DIR: "train/test" image counts from the IDX headers of the labels
  local f n part=()
  for f in train-labels-idx1-ubyte t10k-labels-idx1-ubyte; do
    if [ -s "$1/$f" ]; then n=$(od -An -tu1 -j4 -N4 "$1/$f")
    else n=$(gzip -dc "$1/$f.gz" | od -An -tu1 -j4 -N4); fi
    part+=("$(printf '%s\n' "$n" | awk '{ printf "%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4 }')")
  done
  printf '%s train / %s test' "${part[0]}" "${part[1]}"
}

tmp_out="$out.tmp.$$"
# shellcheck disable=SC2016 # backquotes are Markdown
{
  printf '# Test accuracy: nnc vs PyTorch\n\n'
  printf 'Written by `bench/accuracy.sh` (not part of ctest). Each run trains from scratch with one seed and\n'
  printf 'reports the test accuracy after its **last** epoch. PyTorch runs `bench/torch_reference.py`, the\n'
  printf 'same recipe (784-64-64-10, ReLU, mean cross-entropy, Adam lr 1e-3, batch 64, shuffled every epoch,\n'
  printf 'last partial batch kept, pixels p/255, PyTorch'"'"'s default initialization). Accuracy does not\n'
  printf 'depend on the machine; **wall times do, and are noisy here** (a shared machine: see the load).\n'
  printf 'Wall time is the whole process: start-up, nnc'"'"'s compilation or PyTorch'"'"'s import, data\n'
  printf 'loading, training and the test evaluation after every epoch.\n\n'
  printf '| | |\n| --- | --- |\n'
  printf '| date | %s (%s s in all) |\n' "$start_date" "$elapsed"
  printf '| machine | %s CPUs (`nproc`), %s |\n' "$ncpu" "$cpu_model"
  printf '| load average (1, 5, 15 min) | %s at the start, %s at the end |\n' "$start_load" "$end_load"
  printf '| nnc | `%s`, %s; checkout at %s |\n' "$(show "$nnc")" "$nnc_version" "$commit"
  if [ "$have_torch" = 1 ]; then
    printf '| PyTorch | %s with `%s`; BLAS: %s |\n' "$torch_version" "$python" "$torch_blas"
  else
    printf '| PyTorch | unavailable with `%s` |\n' "$python"
  fi
  printf '| threads | %s for both (`--threads %s`); PyTorch with `OMP_WAIT_POLICY=%s`, inter-op threads 1 |\n' \
    "$threads" "$threads" "${OMP_WAIT_POLICY:-PASSIVE}"
  printf '| digits | %s: %s |\n' "$(show "$digits")" "$(images "$digits")"
  printf '| Fashion-MNIST | %s: %s |\n' "$(show "$fashion")" "$(images "$fashion")"
  [ "$do_slice" = 1 ] && printf '| slice | %s: %s |\n' "$(show "$slice")" "$(images "$slice")"
  printf '\n## Acceptance criteria (issue 6)\n\n'
  printf -- '- Digits: %s\n' "$digits_line"
  printf -- '- Fashion-MNIST: %s\n' "$fashion_line"
  [ -n "$slice_line" ] && printf -- '- End-to-end slice: %s\n' "$slice_line"
  printf '\n'
  cat "$report"
  printf 'Every run'"'"'s command and JSON Lines output were in `%s` (not kept in the repository).\n' "$logs"
  # bench/mpi.sh's section, kept as it was
  if [ -f "$out" ] && grep -q '^## Data-parallel training' "$out"; then
    printf '\n'
    awk '/^## Data-parallel training/ { keep = 1 } keep' "$out"
  fi
} >"$tmp_out"
mv "$tmp_out" "$out"
note "wrote $out ($elapsed s); logs in $logs"
cat "$out"
