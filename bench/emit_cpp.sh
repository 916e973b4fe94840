#!/usr/bin/env bash
# bench/emit_cpp.sh — the emitted C++ trainer against nnc's JIT, epoch for epoch (issue 7).
#
# Emits examples/mnist.nn and examples/fashion_cnn.nn with `nnc --emit-cpp`, builds each with the
# one-line g++ command of the emitted README, then trains each model for 3 epochs with nnc and
# with the emitted trainer, alternating which goes first, and compares the median time of an epoch
# (the `seconds` of --json: the training loop alone). Also checks that both print the same losses
# and accuracies. Writes a Markdown report. A benchmark, not a test: not part of ctest.
# See bench/README.md, "The emitted trainer against the JIT".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prog=emit_cpp.sh

usage() {
  cat <<EOF
usage: bench/emit_cpp.sh [OPTIONS]

Trains examples/mnist.nn and examples/fashion_cnn.nn for 3 epochs with nnc's JIT
and with the trainer nnc --emit-cpp writes, and reports the median epoch time of
each and their ratio.

options (relative paths are relative to the current directory):
  --nnc PATH        the nnc binary (default: build/nnc of this checkout)
  --digits DIR      data for mnist.nn (default: data/mnist of this checkout; made
                    with scripts/get-mnist.sh when missing)
  --cnn-data DIR    data for fashion_cnn.nn (default: tests/data/mnist-slice, 2,000
                    digits, to keep the benchmark short; any MNIST-format directory
                    of 28x28 images in 10 classes will do)
  --epochs N        epochs per run (default: 3)
  --runs N          runs of each side per model, alternating which goes first
                    (default: 3)
  --threads N       threads for both (default: 2)
  --cxx CXX         the compiler for the emitted trainer (default: g++)
  --out FILE        the report (default: bench/EMIT_CPP.md of this checkout)
  --work DIR        emitted sources, binaries and logs (default: a new directory in /tmp)
  -h, --help        this help
EOF
}

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

nnc=$repo/build/nnc
digits=$repo/data/mnist
cnn_data=$repo/tests/data/mnist-slice
epochs=3
runs=3
threads=2
cxx=g++
out=$repo/bench/EMIT_CPP.md
work=

while [ $# -gt 0 ]; do
  case $1 in
    --nnc) need_arg "$@"; nnc=$(abspath "$2"); shift 2 ;;
    --digits) need_arg "$@"; digits=$(abspath "$2"); shift 2 ;;
    --cnn-data) need_arg "$@"; cnn_data=$(abspath "$2"); shift 2 ;;
    --epochs) need_arg "$@"; epochs=$2; shift 2 ;;
    --runs) need_arg "$@"; runs=$2; shift 2 ;;
    --threads) need_arg "$@"; threads=$2; shift 2 ;;
    --cxx) need_arg "$@"; cxx=$2; shift 2 ;;
    --out) need_arg "$@"; out=$(abspath "$2"); shift 2 ;;
    --work) need_arg "$@"; work=$(abspath "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

for v in epochs runs threads; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer, not '${!v}'"
done
check_nnc "$nnc"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx'"
[ -d "$(dirname "$out")" ] || die "the directory of --out $out does not exist"

ensure_digits "$digits"
has_idx "$cnn_data" || die "no MNIST-format IDX files in $cnn_data (pass --cnn-data DIR)"

if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/nnc-emit-bench.XXXXXX)
else
  mkdir -p "$work"
fi
note "work directory: $work"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$SECONDS

models=(mnist fashion_cnn)
declare -A data=([mnist]=$digits [fashion_cnn]=$cnn_data)

# Emit and build, with the emitted README's command (zlib for .gz data, as nnc reads it).
for m in "${models[@]}"; do
  src=$work/$m/src
  mkdir -p "$work/$m"
  rm -rf "$src"
  "$nnc" "$repo/examples/$m.nn" --emit-cpp "$src" 2>"$work/$m/emit.log" ||
    die "nnc --emit-cpp failed for $m: $(tail -3 "$work/$m/emit.log")"
  note "building the emitted $m trainer"
  build_start=$SECONDS
  "$cxx" -std=c++17 -O3 -march=native -pthread -DNNC_WITH_ZLIB "$src"/*.cpp -lz \
    -o "$work/$m/trainer" 2>"$work/$m/build.log" ||
    die "building the emitted $m trainer failed: $(tail -5 "$work/$m/build.log")"
  echo $((SECONDS - build_start)) >"$work/$m/build_seconds"
done

# Train: nnc and the trainer alternately, each run on its own.
run_side() { # MODEL SIDE RUN
  local m=$1 side=$2 r=$3 log=$work/$1/$2.$3
  local -a cmd
  if [ "$side" = jit ]; then
    cmd=("$nnc" "$repo/examples/$m.nn")
  else
    cmd=("$work/$m/trainer")
  fi
  cmd+=(--train --json --epochs "$epochs" --data "${data[$m]}" --threads "$threads")
  note "$m, run $r: $side"
  printf '%q ' "${cmd[@]}" >"$log.cmd"
  "${cmd[@]}" >"$log.json" 2>"$log.err" || die "$side failed on $m: $(tail -3 "$log.err")"
}
for m in "${models[@]}"; do
  for ((r = 1; r <= runs; ++r)); do
    if ((r % 2)); then order=(jit emitted); else order=(emitted jit); fi
    for side in "${order[@]}"; do run_side "$m" "$side" "$r"; done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work" "$out" "$runs" "$epochs" "$threads" "$started" "$load_start" "$load_end" \
  "$((SECONDS - t0))" "$("$nnc" --version)" "$("$cxx" --version | head -1)" \
  "$digits" "$cnn_data" <<'EOF'
import json, os, statistics, sys

work, out, runs, epochs, threads, started, load0, load1, wall, nnc, cxx, digits, cnn = sys.argv[1:]
runs, epochs = int(runs), int(epochs)

def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

def without_timings(recs):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in recs]

rows, identical = [], True
for m, data in (("mnist", digits), ("fashion_cnn", cnn)):
    secs = {"jit": [], "emitted": []}
    for r in range(1, runs + 1):
        recs = {s: records(os.path.join(work, m, f"{s}.{r}.json")) for s in secs}
        for s in secs:
            if len(recs[s]) != epochs:
                sys.exit(f"emit_cpp.sh: {m} {s} run {r}: {len(recs[s])} epochs reported, not {epochs}")
            secs[s] += [e["seconds"] for e in recs[s]]
        same = without_timings(recs["jit"]) == without_timings(recs["emitted"])
        identical = identical and same
    jit, emitted = statistics.median(secs["jit"]), statistics.median(secs["emitted"])
    with open(os.path.join(work, m, "build_seconds")) as f:
        build = f.read().strip()
    rows.append((m, data, jit, emitted, secs, build))

cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
lines = [
    "# The emitted C++ trainer against nnc's JIT",
    "",
    "Written by `bench/emit_cpp.sh` (not part of ctest). Each model is emitted with `nnc --emit-cpp`,",
    "built with the emitted README's command (`g++ -std=c++17 -O3 -march=native -pthread *.cpp`, plus",
    "zlib for `.gz` data), and trained with `--train --json` by nnc and by the trainer, alternating",
    "which goes first. An epoch's time is the `seconds` of `--json`: the training loop alone. The",
    "median is over every epoch of every run of a side. **Times depend on the machine and its load;**",
    "compare only numbers from the same run of the script.",
    "",
    "| | |",
    "| --- | --- |",
    f"| date | {started} ({wall} s in all) |",
    f"| machine | {os.cpu_count()} CPUs, {cpu} |",
    f"| load average (1, 5, 15 min) | {load0} at the start, {load1} at the end |",
    f"| nnc | {nnc} |",
    f"| compiler | {cxx} |",
    f"| runs × epochs | {runs} × {epochs} per side and model, {threads} threads |",
    "",
    "| model | data | JIT epoch (s, median) | emitted epoch (s, median) | emitted / JIT | build (s) |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
]
for m, data, jit, emitted, secs, build in rows:
    lines.append(f"| {m}.nn | {data} | {jit:.3f} | {emitted:.3f} | {emitted / jit:.3f} | {build} |")
lines += ["", "Every epoch's seconds, in run order:", ""]
for m, data, jit, emitted, secs, build in rows:
    for s in ("jit", "emitted"):
        lines.append(f"- {m} {s}: " + ", ".join(f"{v:.3f}" for v in secs[s]))
lines += [
    "",
    "## Issue 7's criterion",
    "",
]
for m, data, jit, emitted, secs, build in rows:
    ok = emitted <= 1.15 * jit
    lines.append(f"- {m}.nn: the emitted trainer's epoch is {emitted / jit:.3f} times the JIT's "
                 f"(within 15%: **{'met' if ok else 'not met'}**)")
lines.append(f"- Losses and accuracies of every epoch identical between the two: "
             f"**{'yes' if identical else 'NO'}**")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
note "report: $out"
