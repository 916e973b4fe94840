#!/usr/bin/python3
"""bench/run.sh's driver: nnc against PyTorch, whole epochs on Fashion-MNIST, in one run.

For examples/fashion.nn (the 784-64-64-10 MLP) and examples/fashion_cnn.nn (the CNN), both sides
train the same model on the same 60,000 images, batch 64, Adam(lr=1e-3), for --epochs epochs; for
each side it reports seconds per epoch (the median of the epochs), images/s, GFLOP/s and % of the
measured FMA peak (bench/fma_peak.cpp, same run), the final test accuracy, and inference images/s
at batch 1 and 1000. nnc trains with --threads 2 (both cores); PyTorch (bench/torch_train.py,
/usr/bin/python3) runs with 1 and with 2 threads, BLAS and OpenMP pools set to the same count, and
its best configuration is the one compared. Also: nnc's JIT compile time of mnist.nn (nnc_bench,
median of rounds) and the peak memory of training mnist.nn. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = ["fashion", "fashion_cnn"]
BEGIN, END = "<!-- bench/run.sh: begin -->", "<!-- bench/run.sh: end -->"


def fail(message):
    print(f"run.sh: error: {message}", file=sys.stderr)
    sys.exit(1)


def note(message):
    print(f"run.sh: {message}", file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=None):
    """Runs cmd to completion; returns (stdout, stderr); fails the run if it fails."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"{cmd[0]} took longer than {timeout} s: {' '.join(cmd)}")
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{err.strip()[-2000:]}")
    return out, err


def measure_rss(cmd, env=None):
    """Runs cmd to completion; returns (stdout, stderr, peak resident memory in KiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        pid = os.fork()
        if pid == 0:  # the child
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                os.execvpe(cmd[0], cmd, env or os.environ)
            finally:
                os._exit(127)
        _, status, usage = os.wait4(pid, 0)
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        fail(f"{' '.join(cmd)} exited with {code}:\n{e.strip()[-2000:]}")
    return o, e, usage.ru_maxrss


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def thread_env(threads, ld_library_path=None):
    env = dict(os.environ)
    if ld_library_path:
        env["LD_LIBRARY_PATH"] = ld_library_path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # idle OpenMP workers do not spin against the other pool
    return env


def fma_peak(work):
    exe = os.path.join(work, "fma_peak")
    run(["g++", "-O2", "-march=native", "-pthread", os.path.join(HERE, "fma_peak.cpp"), "-o", exe])
    out, _ = run([exe, "1", "2"])
    peaks = {}
    for line in out.splitlines():
        t, g, lanes = line.split()
        peaks[int(t)] = float(g)
        peaks["lanes"] = int(lanes)
    return peaks


def flops_per_image(macs):
    """Training: forward 2·MACs, weight gradients 2·MACs, input gradients 2·MACs but for the first
    layer (no gradient for the image). Inference: 2·MACs. Elementwise work is not counted."""
    forward = 2 * sum(macs)
    train = 3 * forward - 2 * macs[0]
    return train, forward


def nnc_side(args, model, threads):
    cmd = [args.nnc, os.path.join(REPO, "examples", model + ".nn"), "--train", "--json",
           "--epochs", str(args.epochs), "--threads", str(threads), "--data", args.data]
    out, err, rss = measure_rss(cmd)
    epochs = jsonl(out)
    m = re.search(r"compiled \S+ in ([0-9.]+) ms", err)
    return {
        "seconds": [e["seconds"] for e in epochs],
        "test_acc": epochs[-1]["test_acc"],
        "compile_ms": float(m.group(1)) if m else None,
        "max_rss_kib": rss,
    }


def nnc_inference(args, model, batch, threads):
    reps, rounds = (2000, 5) if batch == 1 else (10, 3)
    out, _ = run([args.nnc_bench, os.path.join(REPO, "examples", model + ".nn"), "--threads",
                  str(threads), "--batch", str(batch), "--reps", str(reps), "--warmup",
                  str(max(2, reps // 10)), "--rounds", str(rounds)])
    result = json.loads(out)
    return batch / result["predict_us"]["median"] * 1e6


def pool(results, key, run):
    """Adds one run of a side to results[key]: its epochs' seconds appended, the largest peak
    memory, the last run's other fields (test accuracy, versions), inference rates kept per run."""
    into = results.setdefault(key, {"seconds": []})
    seconds = into["seconds"] + run["seconds"]
    rss = max(into.get("max_rss_kib", 0), run["max_rss_kib"])
    rounds = {k + "_rounds": into.get(k + "_rounds", []) + [run[k]]
              for k in ("infer_b1_images_per_s", "infer_b1000_images_per_s") if k in run}
    into.update(run)
    into.update(rounds)
    into["seconds"], into["max_rss_kib"] = seconds, rss


def torch_side(args, model, threads):
    cmd = [args.torch_python, os.path.join(HERE, "torch_train.py"), "--model", model, "--epochs",
           str(args.epochs), "--threads", str(threads), "--data", args.data]
    out, err, _ = measure_rss(cmd, thread_env(threads, args.torch_ld_library_path))
    lines = jsonl(out)
    epochs, summary = lines[:-1], lines[-1]
    summary["seconds"] = [e["seconds"] for e in epochs]
    return summary


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3; the median is reported)")
    p.add_argument("--rounds", type=int, default=2,
                   help="runs of each side per model, alternating nnc and PyTorch (default 2); every side's "
                        "epochs are pooled and their median reported")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: both)")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--nnc", default=os.path.join(REPO, "build", "nnc"))
    p.add_argument("--nnc-bench", default=os.path.join(REPO, "build", "nnc_bench"))
    p.add_argument("--torch-python", default="/usr/bin/python3")
    p.add_argument("--torch-threads", default="1,2", help="PyTorch's configurations (default 1,2)")
    p.add_argument("--torch-ld-library-path", help="LD_LIBRARY_PATH for PyTorch alone: where an optimized "
                   "libblas.so.3 is (bench/run.sh passes OpenBLAS's; see bench/README.md, PyTorch's BLAS)")
    p.add_argument("--scaling", action="store_true",
                   help="instead: how nnc's MLP epoch time grows with batch size, width and threads")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"),
                   help="the report's file; its bench/run.sh section is replaced (default bench/RESULTS.md)")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if not models or any(m not in MODELS for m in models):
        p.error(f"--models takes {', '.join(MODELS)}")
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    torch_threads = [int(t) for t in args.torch_threads.split(",")]
    for exe in (args.nnc, args.nnc_bench):
        if not os.access(exe, os.X_OK):
            fail(f"no executable {exe}: build nnc first (cmake --build build)")
    if not shutil.which("g++"):
        fail("g++ is needed for the FMA peak (bench/fma_peak.cpp)")

    if args.scaling:
        return scaling(args)
    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        note("measuring the FMA peak")
        peak = fma_peak(work)
        results = {}
        for model in models:
            r = results[model] = {"torch": {}}
            # Interleaved, --rounds times: nnc, torch 1, torch 2, nnc, ... — a
            # slow spell of the machine (other tenants share its memory) falls
            # on both sides; each side's epochs are pooled, inference rates are
            # the median over the rounds.
            for k in range(args.rounds):
                note(f"{model}, round {k + 1} of {args.rounds}: nnc, {args.epochs} epochs on 2 threads")
                pool(r, "nnc", nnc_side(args, model, 2))
                for t in torch_threads:
                    note(f"{model}, round {k + 1} of {args.rounds}: PyTorch, {args.epochs} epochs on {t} thread(s)")
                    pool(r["torch"], t, torch_side(args, model, t))
                note(f"{model}, round {k + 1} of {args.rounds}: inference")
                r["nnc"].setdefault("infer_rounds", []).append(
                    {b: max(nnc_inference(args, model, b, t) for t in (1, 2)) for b in (1, 1000)})
            r["nnc"]["infer"] = {b: statistics.median(x[b] for x in r["nnc"]["infer_rounds"]) for b in (1, 1000)}
            for side in r["torch"].values():
                for key in ("infer_b1_images_per_s", "infer_b1000_images_per_s"):
                    side[key] = statistics.median(side[key + "_rounds"])
        note("mnist.nn: compile time and peak memory")
        bench = json.loads(run([args.nnc_bench, os.path.join(REPO, "examples", "mnist.nn"), "--reps", "20",
                                "--warmup", "2", "--rounds", "7"])[0])
        mnist = nnc_side(argparse.Namespace(**{**vars(args), "epochs": 1,
                                                "data": os.path.join(REPO, "data", "mnist")}), "mnist", 2)
    load_after = os.getloadavg()

    torch_info = next(iter(results[models[0]]["torch"].values()))
    lines = [BEGIN, "# Speed: nnc vs PyTorch (bench/run.sh)", "",
             "Written by `bench/run.sh` (not part of ctest). Both sides train the same model on the same",
             "data with batch 64 and Adam(lr=1e-3) for whole epochs; seconds per epoch are the median of",
             f"{args.rounds} runs of {args.epochs} epochs, nnc's and PyTorch's runs alternating. nnc runs on 2 threads; PyTorch in each configuration listed, and",
             "the ratio is against its best. GFLOP/s counts the dense and convolution layers' multiply-adds",
             "(training: forward, weight and input gradients; elementwise work not counted); % of peak is",
             "against the FMA peak measured in the same run on the same number of threads.", "",
             "| | |", "| --- | --- |",
             f"| date | {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC ({time.time() - started:.0f} s in all) |",
             f"| machine | {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, {cpu_model()} |",
             f"| load average (1, 5, 15 min) | {fmt_load(load_before)} at the start, {fmt_load(load_after)} at the end |",
             f"| nnc | {version(args.nnc)}; checkout {git_rev()} |",
             f"| PyTorch | {torch_info['torch_version']} with {args.torch_python}, inter-op threads 1, "
             "OMP/BLAS threads = intra-op threads, OMP_WAIT_POLICY=PASSIVE |",
             f"| PyTorch's BLAS | {', '.join(torch_info.get('blas') or ['unknown'])} |",
             f"| FMA peak (measured) | {peak.get(1, 0):.1f} GFLOP/s on 1 thread, {peak.get(2, 0):.1f} on 2 "
             f"({peak['lanes']}-lane vectors: {'AVX-512' if peak['lanes'] == 16 else 'AVX2'}) |",
             f"| data | {args.data} (60,000 train / 10,000 test) |", ""]
    images = 60000
    for model in models:
        r = results[model]
        macs = next(iter(r["torch"].values()))["multiply_adds"]
        train_flop, infer_flop = flops_per_image(macs)
        lines += [f"## examples/{model}.nn", "",
                  f"{train_flop / 1e6:.2f} MFLOP per training image, {infer_flop / 1e6:.2f} per inference.", "",
                  "| | s/epoch (median) | epochs (s) | images/s | GFLOP/s | % of peak | test acc | peak memory |",
                  "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]

        def row(name, side, threads):
            s = statistics.median(side["seconds"])
            g = train_flop * images / s / 1e9
            return (f"| {name} | {s:.3f} | {', '.join(f'{x:.2f}' for x in side['seconds'])} | "
                    f"{images / s:,.0f} | {g:.1f} | {100 * g / peak[threads]:.0f}% | "
                    f"{100 * side['test_acc']:.2f}% | {side['max_rss_kib'] / 1024:.0f} MiB |")

        lines.append(row("nnc, 2 threads", r["nnc"], 2))
        for t, side in r["torch"].items():
            lines.append(row(f"PyTorch, {t} thread{'s' if t > 1 else ''}", side, t))
        best_t = min(r["torch"], key=lambda t: statistics.median(r["torch"][t]["seconds"]))
        ratio = statistics.median(r["torch"][best_t]["seconds"]) / statistics.median(r["nnc"]["seconds"])
        lines += ["", f"Training: nnc is **{ratio:.2f}×** PyTorch's best ({best_t} thread{'s' if best_t > 1 else ''}).", ""]
        lines += ["| inference images/s | nnc (best of 1, 2 threads) | PyTorch (best) | nnc / PyTorch |",
                  "| --- | ---: | ---: | ---: |"]
        for b in (1, 1000):
            key = f"infer_b{b}_images_per_s"
            best = max(side[key] for side in r["torch"].values())
            lines.append(f"| batch {b} | {r['nnc']['infer'][b]:,.0f} | {best:,.0f} | {r['nnc']['infer'][b] / best:.2f}× |")
        lines.append("")
    lines += ["## examples/mnist.nn", "",
              f"- JIT compile (nnc_bench, median of 7, 1 thread): {bench['compile_ms']['median']:.0f} ms wall, "
              f"{bench['compile_cpu_ms']['median']:.0f} ms processor time",
              f"- peak memory of `nnc examples/mnist.nn --train --epochs 1`: {mnist['max_rss_kib'] / 1024:.0f} MiB", "",
              END]
    write_section(args.out, BEGIN, END, lines)
    return 0


def write_section(path, begin, end, lines):
    """Prints the report and puts it into `path` between its markers (replacing what was there)."""
    report = "\n".join(lines) + "\n"
    print(report)
    previous = open(path).read() if os.path.exists(path) else ""
    if begin in previous and end in previous:
        before, rest = previous.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + report.rstrip("\n") + after
    else:
        text = previous + ("\n" if previous else "") + report
    with open(path, "w") as f:
        f.write(text)
    note(f"wrote {path}")


SCALING_BEGIN, SCALING_END = "<!-- bench/run.sh --scaling: begin -->", "<!-- bench/run.sh --scaling: end -->"


def scaling(args):
    """nnc's MLP (examples/fashion.nn), the median of 3 epochs each: batch 16…1024 at width 64, width
    64…1024 at batch 64, each on 1 and 2 threads, against the compute limit (the layers'
    training FLOP over the measured FMA peak)."""
    started = time.time()
    load_before = os.getloadavg()
    source = open(os.path.join(REPO, "examples", "fashion.nn")).read()
    if source.count("dense(64)") != 2:
        fail("examples/fashion.nn no longer has two dense(64) layers: update speed.py's --scaling")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        note("measuring the FMA peak")
        peak = fma_peak(work)
        cases = [(b, 64) for b in (16, 32, 64, 128, 256, 512, 1024)] + [(64, w) for w in (128, 256, 512, 1024)]
        for batch, width in cases:
            path = os.path.join(work, f"fashion_{width}.nn")
            with open(path, "w") as f:
                f.write(source.replace("dense(64)", f"dense({width})"))
            macs = [784 * width, width * width, width * 10]
            train_flop = 3 * 2 * sum(macs) - 2 * macs[0]
            for threads in (1, 2):
                note(f"batch {batch}, width {width}, {threads} thread(s)")
                out, err, rss = measure_rss([args.nnc, path, "--train", "--json", "--epochs", "3", "--batch",
                                             str(batch), "--threads", str(threads), "--data", args.data])
                seconds = statistics.median(e["seconds"] for e in jsonl(out))
                limit = train_flop * 60000 / (peak[threads] * 1e9)
                rows.append((batch, width, threads, seconds, limit, train_flop * 60000 / seconds / 1e9,
                             rss / 1024))
    lines = [SCALING_BEGIN, "# Scaling: nnc's MLP epoch (bench/run.sh --scaling)", "",
             "examples/fashion.nn (784-W-W-10, Adam), the median of 3 epochs of the 60,000 Fashion-MNIST images at each",
             "batch size and width, on 1 and 2 threads. The compute limit is the epoch's training FLOP (dense",
             "layers: forward, weight and input gradients) over the FMA peak measured in the same run",
             f"({peak[1]:.1f} GFLOP/s on 1 thread, {peak[2]:.1f} on 2, {peak['lanes']}-lane vectors); one run of 3 "
             "epochs each.", "",
             f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {time.time() - started:.0f} s in all; load average "
             f"{fmt_load(load_before)} at the start, {fmt_load(os.getloadavg())} at the end; checkout {git_rev()}.", "",
             "| batch | width | threads | s/epoch | compute limit (s) | × limit | GFLOP/s | peak memory |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for batch, width, threads, seconds, limit, gflops, mib in rows:
        lines.append(f"| {batch} | {width} | {threads} | {seconds:.3f} | {limit:.3f} | {seconds / limit:.1f} | "
                     f"{gflops:.1f} | {mib:.0f} MiB |")
    lines += ["", SCALING_END]
    write_section(args.out, SCALING_BEGIN, SCALING_END, lines)
    return 0


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def version(nnc):
    try:
        return subprocess.run([nnc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown version"


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        # the report file is not the code measured (a run before may have written it)
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)bench/RESULTS.md"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (", with uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
