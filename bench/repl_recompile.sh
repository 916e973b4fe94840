#!/usr/bin/env bash
# bench/repl_recompile.sh — how long the REPL takes to recompile mnist.nn
# after a change, against the first (full) compile of the same run.
#
#   bench/repl_recompile.sh [--nnc PATH] [--rounds K] [--data DIR]
#
# One REPL session: load examples/mnist.nn and compile it, then K times each
# (interleaved): change the optimizer (adam <-> sgd: train_step is compiled
# again, predict reused) and change a layer (fc2 64 <-> 32 units: both are
# compiled again). Each change is compiled by a one-step :train. Prints the
# median wall-clock and processor time of each kind, from the REPL's :time.
# Processor time is the steadier number on a busy machine.
set -euo pipefail
prog=repl_recompile.sh
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

nnc=$repo/build/nnc
rounds=10
data=$repo/data/mnist
while [ $# -gt 0 ]; do
  case $1 in
  --nnc) need_arg "$@"; nnc=$(abspath "$2"); shift 2 ;;
  --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
  --data) need_arg "$@"; data=$(abspath "$2"); shift 2 ;;
  -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case $rounds in '' | *[!0-9]* | 0) die "--rounds needs a positive whole number, not '$rounds'" ;; esac
check_nnc "$nnc"
ensure_digits "$data"

script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
  echo ":load $repo/examples/mnist.nn"
  echo ":train 1 steps"
  for ((i = 0; i < rounds; i++)); do
    if ((i % 2 == 0)); then echo "optimizer sgd(lr=0.05)"; else echo "optimizer adam(lr=1e-3)"; fi
    echo ":train 1 steps"
    if ((i % 2 == 0)); then echo "fc2: dense(32)"; else echo "fc2: dense(64)"; fi
    echo ":train 1 steps"
  done
  echo ":time"
} >"$script"

out=$("$nnc" repl --data "$data" <"$script" 2>&1) || die "the REPL failed: $out"
grep '^compile [0-9]*:' <<<"$out" | python3 -c '
import re, statistics, sys
kinds = {"first compile (train_step and predict)": [], "optimizer change (train_step only)": [],
         "layer change (train_step and predict)": []}
for n, line in enumerate(sys.stdin):
    m = re.match(r"compile \d+: ([0-9.]+) ms, ([0-9.]+) ms of processor time", line)
    if not m:
        sys.exit("unexpected :time line: " + line)
    wall, cpu = float(m.group(1)), float(m.group(2))
    if n == 0:
        key = "first compile (train_step and predict)"
    elif "predict unchanged" in line:
        key = "optimizer change (train_step only)"
    else:
        key = "layer change (train_step and predict)"
    kinds[key].append((wall, cpu))
for key, v in kinds.items():
    if v:
        print("%-40s %3d x  wall median %7.1f ms  processor median %7.1f ms" % (
            key, len(v), statistics.median(w for w, _ in v), statistics.median(c for _, c in v)))
'
