#!/usr/bin/python3
"""PyTorch half of bench/run.sh: trains examples/fashion.nn or examples/fashion_cnn.nn in PyTorch.

The same model, data, batch and optimizer as the .nn file: Adam(lr=1e-3, default betas and eps),
mean cross-entropy, batch 64 shuffled every epoch with the last partial batch kept, pixels p/255.
Prints one JSON object per epoch ({"epoch", "seconds", "train_loss"}), then one summary object:
test accuracy after the last epoch, inference images/s at batch 1 and 1000 (median of 3 rounds),
the model's multiply-adds per image, and the process's peak resident memory.

  fashion      Flatten, Linear(784, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 10)
  fashion_cnn  Conv2d(1, 32, 3), ReLU, MaxPool2d(2), Conv2d(32, 64, 3), ReLU, MaxPool2d(2),
               Flatten, Linear(1600, 128), ReLU, Linear(128, 10)

The training loop is the fast way (tensors in memory, a permutation per epoch, slices of it), not
torchvision's DataLoader. Run with /usr/bin/python3 (Debian's python3-torch). Set the BLAS and
OpenMP thread counts in the environment to --threads (bench/run.sh does). Exits 77 without torch.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import build_model, load_split, loaded_blas  # noqa: E402  (the models; the IDX reader)

BATCH = 64
LR = 1e-3


def multiply_adds(model, torch, nn):
    """Multiply-adds per image of each Linear and Conv2d, in order (one forward pass)."""
    counts = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Linear):
            counts.append(module.in_features * module.out_features)
        else:
            c_out, c_in, kh, kw = module.weight.shape
            counts.append(output.shape[2] * output.shape[3] * c_out * c_in * kh * kw)

    handles = [m.register_forward_hook(hook) for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in handles:
        h.remove()
    return counts


def images_per_second(model, x, calls, torch):
    """Median over 3 rounds of `calls` forward passes of x, in images per second."""
    rates = []
    with torch.inference_mode():
        for _ in range(max(2, calls // 10)):  # warm-up
            model(x)
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(calls):
                model(x)
            rates.append(calls * x.shape[0] / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["fashion", "fashion_cnn"], required=True)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.threads < 1:
        p.error("--epochs and --threads must be at least 1")
    try:
        import torch
        from torch import nn
    except Exception as e:  # ImportError, or a broken install
        print(f"torch_train.py: cannot import torch with {sys.executable}: {e}", file=sys.stderr)
        return 77
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    try:
        train_x, train_y = load_split(args.data, "train", torch)
        test_x, test_y = load_split(args.data, "t10k", torch)
    except (OSError, ValueError) as e:
        print(f"torch_train.py: cannot read the data: {e}", file=sys.stderr)
        return 1

    torch.manual_seed(args.seed)
    model = build_model(args.model, nn)
    macs = multiply_adds(model, torch, nn)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(args.seed)
    n = train_x.shape[0]
    model.train()
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            xb, yb = train_x[idx], train_y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * idx.shape[0]
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch + 1, "seconds": seconds, "train_loss": loss_sum / n}), flush=True)

    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, test_x.shape[0], 1000):
            correct += (model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum().item()
    summary = {
        "test_acc": correct / test_x.shape[0],
        "infer_b1_images_per_s": images_per_second(model, test_x[:1], 2000, torch),
        "infer_b1000_images_per_s": images_per_second(model, test_x[:1000], 10, torch),
        "multiply_adds": macs,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": loaded_blas(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
