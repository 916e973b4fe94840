#!/usr/bin/python3
"""Benchmark driver: nnc against PyTorch on examples/mnist.nn, side by side.

Runs build/nnc_bench and bench/torch_mnist.py for each thread count, several times, alternating
which goes first, then prints medians and ratios and writes the raw results to
bench/results/latest.json. Needs only the standard library; torch is needed by the PyTorch side
alone, and when it is missing (torch_mnist.py exits 77) nnc's numbers are still reported.

Relative paths on the command line are relative to the current directory; the defaults point
into this repository wherever the driver is run from.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
TORCH_UNAVAILABLE = 77
METRICS = ("train_step_us", "predict_us")


def parse_args(argv):
    p = argparse.ArgumentParser(description="nnc vs PyTorch on examples/mnist.nn (see bench/README.md)")
    p.add_argument("--nnc", default=os.path.join(REPO, "build", "nnc_bench"),
                   help="the nnc_bench binary (default: build/nnc_bench)")
    p.add_argument("--model", default=os.path.join(REPO, "examples", "mnist.nn"),
                   help="the .nn file given to nnc_bench (default: examples/mnist.nn)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--reps", type=int, default=200, help="timed calls per round (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls before the rounds (default 20)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per run (default 5)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each side per thread count, alternating which goes first (default 3)")
    p.add_argument("--torch-python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
                   help="the interpreter that has torch (default /usr/bin/python3)")
    p.add_argument("--torch-foreach", choices=("true", "false"),
                   help="Adam's foreach flag for the PyTorch side (default: torch_mnist.py's own default)")
    p.add_argument("--torch-ld-library-path", metavar="DIR",
                   help="LD_LIBRARY_PATH for the PyTorch side only, e.g. an unpacked OpenBLAS (see README)")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per run (default 900)")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "latest.json"),
                   help="where to write the raw JSON (default bench/results/latest.json)")
    args = p.parse_args(argv)
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        p.error(f"--threads must be comma-separated integers, e.g. 1,2; got '{args.threads}'")
    if not args.threads or any(t < 1 for t in args.threads):
        p.error("--threads needs at least one thread count, each at least 1")
    for name in ("batch", "reps", "rounds", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    return args


# ---------------------------------------------------------------------------------------------
# Machine facts


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except (OSError, ValueError):
        try:
            return list(os.getloadavg())
        except OSError:
            return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def nproc():
    try:
        out = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def git_revision():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def fmt_load(l):
    return " ".join(f"{v:.2f}" for v in l) if l else "unknown"


# ---------------------------------------------------------------------------------------------
# Running one side


def common_args(args, threads):
    return ["--threads", str(threads), "--batch", str(args.batch), "--reps", str(args.reps),
            "--warmup", str(args.warmup), "--rounds", str(args.rounds)]


def command(args, impl, threads):
    if impl == "nnc":
        return [args.nnc, args.model] + common_args(args, threads), None
    cmd = [args.torch_python, os.path.join(BENCH_DIR, "torch_mnist.py")] + common_args(args, threads)
    if args.torch_foreach:
        cmd += ["--foreach", args.torch_foreach]
    env = None
    if args.torch_ld_library_path:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (args.torch_ld_library_path, os.environ.get("LD_LIBRARY_PATH")) if p)
    return cmd, env


def check_result(result, impl, threads):
    """None if `result` is the JSON object we expect from `impl`, else what is wrong with it."""
    if not isinstance(result, dict):
        return "its output is not a JSON object"
    if result.get("impl") != impl:
        return f"\"impl\" is {result.get('impl')!r}, expected {impl!r}"
    if result.get("threads") != threads:
        return f"\"threads\" is {result.get('threads')!r}, expected {threads}"
    for key in METRICS + (("compile_ms",) if impl == "nnc" else ()):
        m = result.get(key)
        if not isinstance(m, dict) or not isinstance(m.get("rounds"), list) or not m["rounds"] \
                or not all(isinstance(v, (int, float)) for v in m["rounds"]):
            return f"\"{key}\" lacks a non-empty numeric \"rounds\" list"
    return None


def tail(text, lines=8):
    return "\n".join(text.strip().splitlines()[-lines:])


def run_one(args, impl, threads):
    """Runs one side once; returns a record with either "result" or "error" (and "status")."""
    cmd, env = command(args, impl, threads)
    rec = {"impl": impl, "threads": threads, "command": cmd, "loadavg_before": loadavg()}
    if args.torch_ld_library_path and impl == "torch":
        rec["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.timeout)
    except FileNotFoundError:
        rec.update(status="missing", error=f"{cmd[0]} not found")
        return rec
    except PermissionError:
        rec.update(status="missing", error=f"{cmd[0]} is not executable")
        return rec
    except subprocess.TimeoutExpired:
        rec.update(status="failed", error=f"timed out after {args.timeout:g} s")
        return rec
    rec["loadavg_after"] = loadavg()
    rec["returncode"] = proc.returncode
    if proc.stderr.strip():
        rec["stderr"] = tail(proc.stderr, 20)
    if impl == "torch" and proc.returncode == TORCH_UNAVAILABLE:
        rec.update(status="unavailable", error=tail(proc.stderr, 1) or "PyTorch is unavailable")
        return rec
    if proc.returncode != 0:
        rec.update(status="failed", error=f"exit status {proc.returncode}" +
                   (f": {tail(proc.stderr)}" if proc.stderr.strip() else ""))
        return rec
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        rec.update(status="failed", error=f"output is not JSON ({e}): {tail(proc.stdout, 3)!r}")
        return rec
    problem = check_result(result, impl, threads)
    if problem:
        rec.update(status="failed", error=problem, output=result)
        return rec
    rec.update(status="ok", result=result)
    return rec


# ---------------------------------------------------------------------------------------------
# Summary


def summarize(runs, impl, threads, key):
    """Median and min over every round of every successful run, plus each run's own median."""
    ok = [r["result"] for r in runs if r["impl"] == impl and r["threads"] == threads and r["status"] == "ok"]
    if not ok:
        return None
    rounds = [v for res in ok for v in res[key]["rounds"]]
    return {
        "median": statistics.median(rounds),
        "min": min(rounds),
        "runs": len(ok),
        "run_medians": [statistics.median(res[key]["rounds"]) for res in ok],
    }


def fmt(v, width, digits=1):
    return f"{v:{width}.{digits}f}" if v is not None else f"{'—':>{width}}"


def ratio(torch_s, nnc_s):
    if not torch_s or not nnc_s or nnc_s["median"] <= 0:
        return None
    return torch_s["median"] / nnc_s["median"]


def print_table(summary, threads_list):
    print(f"{'':>7} │ {'train_step (µs)':^29} │ {'predict (µs)':^29} │ {'compile':>8}")
    print(f"{'threads':>7} │ {'nnc':>9} {'torch':>9} {'torch/nnc':>9} │ "
          f"{'nnc':>9} {'torch':>9} {'torch/nnc':>9} │ {'nnc (ms)':>8}")
    print("─" * 8 + "┼" + "─" * 31 + "┼" + "─" * 31 + "┼" + "─" * 9)
    for t in threads_list:
        s = summary[str(t)]
        cells = []
        for key in METRICS:
            n, tr = s["nnc"].get(key), s["torch"].get(key)
            r = s["torch_over_nnc"].get(key)
            cells.append(f"{fmt(n and n['median'], 9)} {fmt(tr and tr['median'], 9)} "
                         f"{(f'{r:8.2f}x' if r is not None else '—'.rjust(9))}")
        c = s["nnc"].get("compile_ms")
        print(f"{t:>7} │ {cells[0]} │ {cells[1]} │ {fmt(c and c['median'], 8)}")


def describe_blas(libs):
    if not libs:
        return "unknown"
    names = [os.path.basename(l) for l in libs]
    for l in libs:
        if "/blas/libblas" in l:
            return f"reference netlib BLAS ({l}) — slow; see bench/README.md, \"PyTorch's BLAS\""
    for l in libs:
        if "openblas" in l or "mkl" in l or "blis" in l:
            return f"{os.path.basename(os.path.dirname(l)) if 'openblas-' in l else os.path.basename(l)} ({l})"
    return ", ".join(names)


def main(argv):
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    machine = {"nproc": nproc(), "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
               "loadavg_start": loadavg(), "platform": platform.platform()}

    print(f"nnc vs PyTorch: {os.path.relpath(args.model, REPO) if args.model.startswith(REPO) else args.model}, "
          f"batch {args.batch}, {args.rounds} rounds of {args.reps} calls after {args.warmup} warm-up, "
          f"{args.repeat} run{'s' if args.repeat != 1 else ''} per side and thread count")
    print(f"machine: nproc {machine['nproc']}, {machine['cpu_model'] or 'CPU model unknown'}")
    print(f"load average at start: {fmt_load(machine['loadavg_start'])}")
    sys.stdout.flush()

    runs = []
    torch_unavailable = None
    nnc_missing = None
    for rep in range(args.repeat):
        order = ("nnc", "torch") if rep % 2 == 0 else ("torch", "nnc")
        for t in args.threads:
            for impl in order:
                if (impl == "torch" and torch_unavailable) or (impl == "nnc" and nnc_missing):
                    continue
                rec = run_one(args, impl, t)
                rec["repeat"] = rep
                rec["order"] = list(order)
                runs.append(rec)
                if rec["status"] == "ok":
                    m = rec["result"]
                    print(f"  run {rep + 1}/{args.repeat} threads {t} {impl:<5}: "
                          f"train_step {m['train_step_us']['median']:.1f} µs, predict {m['predict_us']['median']:.1f} µs"
                          + (f", compile {m['compile_ms']['median']:.1f} ms" if impl == "nnc" else "")
                          + f"  (load {fmt_load(rec['loadavg_before'])})", file=sys.stderr)
                elif rec["status"] == "unavailable":
                    torch_unavailable = rec["error"]
                    print(f"  PyTorch is unavailable: {rec['error']}", file=sys.stderr)
                elif rec["status"] == "missing" and impl == "nnc":
                    nnc_missing = rec["error"]
                    print(f"  nnc is unavailable: {rec['error']} (build it, or give its path with --nnc)",
                          file=sys.stderr)
                else:
                    print(f"  run {rep + 1}/{args.repeat} threads {t} {impl}: {rec['status']}: {rec['error']}",
                          file=sys.stderr)
                sys.stderr.flush()

    machine["loadavg_end"] = loadavg()
    summary = {}
    for t in args.threads:
        s = {"nnc": {}, "torch": {}, "torch_over_nnc": {}}
        for key in METRICS:
            s["nnc"][key] = summarize(runs, "nnc", t, key)
            s["torch"][key] = summarize(runs, "torch", t, key)
            s["torch_over_nnc"][key] = ratio(s["torch"][key], s["nnc"][key])
        s["nnc"]["compile_ms"] = summarize(runs, "nnc", t, "compile_ms")
        summary[str(t)] = s

    torch_results = [r["result"] for r in runs if r["impl"] == "torch" and r["status"] == "ok"]
    print()
    print_table(summary, args.threads)
    print()
    print("Medians over every round of every run; torch/nnc > 1 means nnc is that many times faster.")
    if torch_results:
        r0 = torch_results[0]
        print(f"torch {r0.get('torch_version')}, Adam foreach={r0.get('adam_foreach')}, "
              f"BLAS: {describe_blas(r0.get('blas'))}")
    elif torch_unavailable:
        print(f"PyTorch is unavailable ({torch_unavailable}); only nnc's numbers are shown.")
    print(f"load average at start: {fmt_load(machine['loadavg_start'])}, at end: {fmt_load(machine['loadavg_end'])}"
          f" (nproc {machine['nproc']})")
    # The load at the end includes the benchmark itself (about 1 while a side runs).
    start, end, n = machine["loadavg_start"], machine["loadavg_end"], machine["nproc"]
    if n and ((start and start[0] > 0.5 * n) or (end and end[0] > n)):
        print("warning: other work was competing for the CPUs; the numbers are noisy.")

    failures = [r for r in runs if r["status"] in ("failed", "missing")]
    for f in {(r["impl"], r["error"]) for r in failures}:
        print(f"error: {f[0]}: {f[1]}", file=sys.stderr)

    report = {
        "started": started,
        "git": git_revision(),
        "machine": machine,
        "config": {k: getattr(args, k) for k in ("nnc", "model", "threads", "batch", "reps", "warmup", "rounds",
                                                  "repeat", "torch_python", "torch_foreach",
                                                  "torch_ld_library_path")},
        "torch_unavailable": torch_unavailable,
        "summary": summary,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"raw results: {os.path.relpath(args.out)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
