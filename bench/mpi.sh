#!/usr/bin/env bash
# bench/mpi.sh — data-parallel training on this machine: epoch time and the
# share of it spent summing gradients, for one process (plain nnc, and under
# mpirun) and two, and a model of the sum's cost on a network. Writes the
# section "## Data-parallel training" of bench/RESULTS.md (between its markers, so
# bench/run.sh's sections stay). A benchmark, not a test: not part of ctest.
set -euo pipefail
prog=bench/mpi.sh
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
  cat <<'USAGE'
usage: bench/mpi.sh [options]
  --nnc PATH     nnc built with MPI (default: build/nnc of this checkout)
  --data DIR     MNIST-format digits (default: data/mnist; made by scripts/get-mnist.sh)
  --runs K       runs of each configuration (default 3)
  --epochs E     epochs of each run of mnist.nn (default 3; lenet.nn: one of the slice)
  --out FILE     the report to update (default: bench/RESULTS.md)
  -h, --help     this help
USAGE
}

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

nnc=$repo/build/nnc
data=$repo/data/mnist
runs=3
epochs=3
out=$repo/bench/RESULTS.md
while [ $# -gt 0 ]; do
  case $1 in
    --nnc) need_arg "$@"; nnc=$(abspath "$2"); shift 2 ;;
    --data) need_arg "$@"; data=$(abspath "$2"); shift 2 ;;
    --runs) need_arg "$@"; runs=$2; shift 2 ;;
    --epochs) need_arg "$@"; epochs=$2; shift 2 ;;
    --out) need_arg "$@"; out=$(abspath "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
[[ $epochs =~ ^[1-9][0-9]*$ ]] || die "--epochs must be a positive integer, not '$epochs'"
check_nnc "$nnc"
command -v mpirun >/dev/null || die "no mpirun: install openmpi-bin (scripts/install-deps.sh)"
ensure_digits "$data"
logs=$(mktemp -d /tmp/nnc-mpi-bench-XXXXXX)
# --bind-to none: pinned to a core another program is busy on, one process
# stalls every step of the other (10 to 30 times slower epochs, measured here)
mpirun_flags=(--allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader,tcp
              --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)

show() { case $1 in "$repo"/*) printf '%s\n' "${1#"$repo"/}" ;; *) printf '%s\n' "$1" ;; esac; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_load=$(cut -d' ' -f1-3 /proc/loadavg)
start_date=$(date -u '+%Y-%m-%d %H:%M UTC')
rows=()
# mnist.nn on the digits; lenet.nn (naive convolutions, about 0.2 s a step here) for one
# epoch of the committed slice.
for example in mnist lenet; do
  file=$repo/examples/$example.nn
  if [ "$example" = mnist ]; then run_data=$data run_epochs=$epochs
  else run_data=$repo/tests/data/mnist-slice run_epochs=1; fi
  params=$("$nnc" "$file" --check | awk '/^Total params:/ { gsub(",", "", $3); print $3 }')
  for config in alone np1 np2; do
    : >"$logs/$example.$config.epochs"
    : >"$logs/$example.$config.shares"
    for ((r = 1; r <= runs; r++)); do
      log=$logs/$example.$config.$r.log
      args=("$file" --train --data "$run_data" --epochs "$run_epochs")
      case $config in
        alone) "$nnc" "${args[@]}" 2>"$log" ;;
        np1) mpirun "${mpirun_flags[@]}" -np 1 "$nnc" "${args[@]}" 2>"$log" ;;
        np2) mpirun "${mpirun_flags[@]}" -np 2 "$nnc" "${args[@]}" 2>"$log" ;;
      esac
      # "epoch 2/3  train loss … lr 0.001  0.31 s  25,806 img/s": the training loop's seconds
      awk '/^epoch [0-9]+\/[0-9]+ / { for (i = 1; i < NF; i++) if ($(i + 1) == "s") s = $i; print s }' \
        "$log" >>"$logs/$example.$config.epochs"
      sed -n 's/.*s, \([0-9.]*\)% of it summing gradients.*/\1/p' "$log" >>"$logs/$example.$config.shares"
    done
    steps=$(sed -n 's/.*; \([0-9,]*\) steps of [0-9]* per epoch/\1/p' "$logs/$example.$config.1.log" | tr -d ,)
    epoch_s=$(median <"$logs/$example.$config.epochs")
    share=$(median <"$logs/$example.$config.shares")
    rows+=("$example|$params|$config|$epoch_s|$share|$steps|$(show "$run_data")|$run_epochs")
    note "$example $config: epoch $epoch_s s (median of $((runs * run_epochs))), summing ${share}%"
  done
done
end_load=$(cut -d' ' -f1-3 /proc/loadavg)

section=$(mktemp)
{
  printf '## Data-parallel training (issue 11)\n\n'
  printf 'Written by `bench/mpi.sh` (not part of ctest; `bench/accuracy.sh` keeps this section).\n'
  printf '%s; %s CPUs; load average %s at the start, %s at the end; %s runs of each\n' \
    "$start_date" "$(nproc)" "$start_load" "$end_load" "$runs"
  printf 'configuration, batch 64; %s (%s). Epoch time is the training loop'"'"'s (`--train`'"'"'s\n' \
    "$(show "$nnc")" "$("$nnc" --version)"
  printf 'seconds column), the median over every epoch of every run. "Summing" is the share of\n'
  printf 'it rank 0 spent in the sums (one MPI_Allreduce of the gradients, one of two numbers),\n'
  printf 'waiting for the other process included. Plain nnc uses both cores (2 threads); under\n'
  printf 'mpirun each process uses the cores divided by the processes (1 thread each for 2).\n'
  printf 'mpirun runs with `--bind-to none` (the machine is shared with other work).\n\n'
  printf '| model | parameters | data, epochs | run | epoch (s) | summing | step (ms) |\n'
  printf '| --- | ---: | --- | --- | ---: | ---: | ---: |\n'
  for row in "${rows[@]}"; do
    IFS='|' read -r example params config epoch_s share steps run_data run_epochs <<<"$row"
    case $config in
      alone) name="nnc alone" ;;
      np1) name="mpirun -np 1" ;;
      np2) name="mpirun -np 2" ;;
    esac
    [ -z "$share" ] || [ "$share" = nan ] && share="—" || share="$share%"
    printf '| %s.nn | %s | %s, %s | %s | %s | %s | %s |\n' "$example" "$params" "$run_data" "$run_epochs" \
      "$name" "$epoch_s" "$share" \
      "$(awk -v e="$epoch_s" -v s="$steps" 'BEGIN { printf "%.2f", 1000 * e / s }')"
  done
  printf '\n### A model of many machines\n\n'
  printf 'The sum moves every gradient: 4 bytes per parameter. For N machines, the usual\n'
  printf 'large-message allreduce (reduce-scatter, then allgather; Open MPI'"'"'s ring or\n'
  printf 'Rabenseifner'"'"'s) takes about 2 (N − 1)/N · S / bandwidth + 2 log2(N) · latency for S bytes;\n'
  printf 'below with a latency of 10 µs per message (TCP on Ethernet; RDMA is nearer 2 µs), the\n'
  printf 'summing of the adds left out. It is to be set against one machine'"'"'s step on its share of\n'
  printf 'the global batch: at best the step of nnc alone above (whole batch of 64, 2 cores) divided\n'
  printf 'by N, the last column. Where the sum takes longer than that, more machines only pay with a\n'
  printf 'larger global batch (the step grows with the share; the sum does not).\n\n'
  printf '| model | gradient bytes | N | 10 Gb/s | 25 Gb/s | 100 Gb/s | step on a share of 64/N |\n'
  printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
  for row in "${rows[@]}"; do
    IFS='|' read -r example params config epoch_s _ steps _ _ <<<"$row"
    [ "$config" = alone ] || continue
    for n in 2 10 100; do
      awk -v p="$params" -v n="$n" -v ex="$example" -v e="$epoch_s" -v st="$steps" 'BEGIN {
        s = 4 * p; lat = 10e-6; line = sprintf("| %s.nn | %d | %d", ex, s, n)
        split("10 25 100", gb, " ")
        for (i = 1; i <= 3; i++) {
          t = 2 * (n - 1) / n * s * 8 / (gb[i] * 1e9) + 2 * log(n) / log(2) * lat
          line = line sprintf(" | %.3f ms", 1000 * t)
        }
        print line sprintf(" | %.3f ms |", 1000 * e / st / n)
      }'
    done
  done
  printf '\nEvery run'"'"'s output was in `%s` (not kept in the repository).\n' "$logs"
} >"$section"

# Replace the section in $out, between its markers (or append it), keeping the rest.
begin='<!-- bench/mpi.sh: begin -->'
end='<!-- bench/mpi.sh: end -->'
{
  if [ -f "$out" ] && grep -qF "$begin" "$out"; then
    awk -v b="$begin" -v e="$end" -v sec="$section" '
      $0 == b { print; while ((getline line < sec) > 0) print line; skip = 1; next }
      $0 == e { skip = 0 }
      !skip { print }' "$out"
  else
    [ -f "$out" ] && { cat "$out"; printf '\n'; }
    printf '%s\n' "$begin"
    cat "$section"
    printf '%s\n' "$end"
  fi
} >"$out.tmp.$$"
mv "$out.tmp.$$" "$out"
rm -f "$section"
note "updated $out; logs in $logs"
