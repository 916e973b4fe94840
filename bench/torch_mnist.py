#!/usr/bin/python3
"""PyTorch half of the nnc-vs-PyTorch benchmark: examples/mnist.nn in torch.

Times one training step (zero_grad, forward, loss, backward, Adam step) and one
prediction (forward under inference_mode, model.eval()) on a fixed random batch,
and prints one JSON object to stdout.

Run with /usr/bin/python3 (the interpreter that has torch). Exits 77 when torch
cannot be imported, so that bench/run.py can report it as unavailable.
"""

import argparse
import json
import statistics
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--reps", type=int, default=200, help="timed calls per round (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls before the rounds (default 20)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; the median over them is reported (default 5)")
    p.add_argument("--foreach", choices=("true", "false"), default="true",
                   help="Adam's foreach implementation (default true: measured slightly faster, see bench/README.md)")
    p.add_argument("--seed", type=int, default=42, help="seed for the weights and the random batch")
    args = p.parse_args(argv)
    for name in ("threads", "batch", "reps", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    return args


def time_rounds(fn, reps, warmup, rounds):
    """Per-call mean in microseconds of `reps` consecutive calls, for each round."""
    for _ in range(warmup):
        fn()
    per_call_us = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            fn()
        t1 = time.perf_counter_ns()
        per_call_us.append((t1 - t0) / reps / 1000.0)
    return {
        "median": statistics.median(per_call_us),
        "min": min(per_call_us),
        "rounds": per_call_us,
    }


def loaded_blas():
    """Paths of the BLAS/LAPACK shared libraries this process has mapped (Linux only), or None.

    Debian's python3-torch is built with BLAS_INFO=generic and calls whatever libblas.so.3 the
    dynamic linker finds; with the reference (netlib) BLAS its matrix products are ~30x slower
    than with OpenBLAS, so the result must say which one was used.
    """
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return None
    return sorted(l for l in libs if any(k in l.rsplit("/", 1)[-1] for k in ("blas", "lapack", "mkl", "blis")))


def main(argv):
    args = parse_args(argv)
    try:
        import torch
        from torch import nn
    except Exception as e:  # ImportError, or a broken install
        print(f"torch_mnist.py: cannot import torch with {sys.executable}: {e}", file=sys.stderr)
        return 77

    # Before any tensor work: the thread pools are fixed at first use.
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)

    # examples/mnist.nn: x -> flatten -> fc1: dense(64) -> relu -> fc2: dense(64) -> relu -> fc3: dense(10)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 10),
    ).float()
    loss_fn = nn.CrossEntropyLoss()  # mean over the batch
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=(args.foreach == "true"))

    # One fixed batch, made once: no data loading in the timed region.
    x = torch.rand(args.batch, 1, 28, 28, dtype=torch.float32)
    y = torch.randint(0, 10, (args.batch,), dtype=torch.int64)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def predict():
        with torch.inference_mode():
            return model(x)

    model.train()
    train = time_rounds(train_step, args.reps, args.warmup, args.rounds)
    model.eval()
    pred = time_rounds(predict, args.reps, args.warmup, args.rounds)

    blas = loaded_blas()
    if blas and any(l.startswith("/usr/lib/x86_64-linux-gnu/blas/") for l in blas):
        print("torch_mnist.py: warning: torch is using the reference (netlib) BLAS, so its matrix products "
              "are slow; see bench/README.md, 'PyTorch's BLAS'", file=sys.stderr)

    out = {
        "impl": "torch",
        "threads": args.threads,
        "batch": args.batch,
        "train_step_us": train,
        "predict_us": pred,
        "torch_version": torch.__version__,
        "adam_foreach": args.foreach == "true",
        "blas": blas,
        "reps": args.reps,
        "warmup": args.warmup,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
