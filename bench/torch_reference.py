#!/usr/bin/python3
"""PyTorch half of the accuracy benchmark: the recipes of examples/mnist.nn, fashion.nn and fashion_cnn.nn.

Trains the model exactly as the .nn recipe says and prints one JSON object per
epoch on stdout, with the keys of `nnc FILE --train --json` (epoch, train_loss, train_acc,
val_loss, val_acc, test_loss, test_acc, lr, seconds, images_per_s; accuracies in [0, 1]).

  recipe   epochs  schedule                        data (default --data)
  mnist    10      StepLR(step_size=5, gamma=0.1)  <repo>/data/mnist
  fashion  5       constant                        /usr/share/datasets/fashion-mnist
  fashion_cnn 5    constant                        /usr/share/datasets/fashion-mnist

mnist and fashion: nn.Linear(784, 64) -> ReLU -> nn.Linear(64, 64) -> ReLU -> nn.Linear(64, 10);
fashion_cnn: Conv2d(1, 32, 3) -> ReLU -> MaxPool2d(2) -> Conv2d(32, 64, 3) -> ReLU -> MaxPool2d(2)
-> Flatten -> Linear(1600, 128) -> ReLU -> Linear(128, 10). All with PyTorch's
default initialization, nn.CrossEntropyLoss() (mean over the batch), Adam(lr=1e-3) with default
betas and eps, batch 64, shuffled every epoch, the last partial batch kept, pixels p/255 in [0, 1]
without normalization.

The IDX files (raw or .gz) are read directly; torchvision is not needed. Run with
/usr/bin/python3 (the interpreter that has torch). Exits 77 when torch cannot be imported.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

RECIPES = {
    # name: (default epochs, StepLR step size or None, default data directory)
    "mnist": (10, 5, os.path.join(REPO, "data", "mnist")),
    "fashion": (5, None, "/usr/share/datasets/fashion-mnist"),
    "fashion_cnn": (5, None, "/usr/share/datasets/fashion-mnist"),
}
LR = 1e-3
GAMMA = 0.1
BATCH = 64
EVAL_BATCH = 1000  # evaluation only; does not change the results


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="mnist",
                   help="examples/mnist.nn, fashion.nn or fashion_cnn.nn (default mnist)")
    p.add_argument("--data", help="directory with the MNIST-format IDX files, raw or .gz "
                   "(default: the recipe's data path)")
    p.add_argument("--seed", type=int, default=42, help="seed of the initialization and the shuffling (default 42)")
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's, 10 or 5)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--info", action="store_true",
                   help="print one JSON object with torch's version, threads and BLAS, and exit")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    return args


def build_model(recipe, nn):
    """The recipe's model with PyTorch's default initialization (from the current seed)."""
    if recipe == "fashion_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1600, 128), nn.ReLU(),
            nn.Linear(128, 10),
        ).float()
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 10),
    ).float()


def loaded_blas():
    """Paths of the BLAS/LAPACK shared libraries this process has mapped (Linux only), or None."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return None
    return sorted(l for l in libs if any(k in l.rsplit("/", 1)[-1] for k in ("blas", "lapack", "mkl", "blis")))


def find_idx(data_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{data_dir}: neither {stem} nor {stem}.gz")


def read_idx(path, torch):
    """An IDX file (raw or gzipped) of unsigned bytes as a uint8 tensor of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: IDX element type 0x{raw[2]:02x}, expected unsigned bytes (0x08)")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    count = 1
    for d in dims:
        count *= d
    offset = 4 + 4 * ndim
    if len(raw) - offset != count:
        raise ValueError(f"{path}: {len(raw) - offset} bytes of data, the header says {count}")
    return torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(dims)


def load_split(data_dir, prefix, torch):
    """Images as float32 [N, 1, 28, 28] scaled to [0, 1] (p / 255), labels as int64 [N]."""
    images = read_idx(find_idx(data_dir, f"{prefix}-images-idx3-ubyte"), torch)
    labels = read_idx(find_idx(data_dir, f"{prefix}-labels-idx1-ubyte"), torch)
    if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{data_dir}: {prefix} images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    x = images.to(torch.float32).div_(255.0).unsqueeze(1).contiguous()
    return x, labels.to(torch.int64)


def evaluate(model, x, y, torch, F):
    """Mean cross-entropy over every example and the share predicted right."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            logits = model(x[i:i + EVAL_BATCH])
            target = y[i:i + EVAL_BATCH]
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    model.train()
    n = x.shape[0]
    return loss_sum / n, correct / n


def main(argv):
    args = parse_args(argv)
    try:
        import torch
        from torch import nn
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install
        print(f"torch_reference.py: cannot import torch with {sys.executable}: {e}", file=sys.stderr)
        return 77

    # Before any tensor work: the thread pools are fixed at first use.
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    if args.info:
        torch.ones(2, 2) @ torch.ones(2, 2)  # loads the BLAS
        print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                          "blas": loaded_blas(), "python": sys.executable}))
        return 0

    default_epochs, step_size, default_data = RECIPES[args.recipe]
    epochs = args.epochs if args.epochs is not None else default_epochs
    data_dir = args.data or default_data
    try:
        train_x, train_y = load_split(data_dir, "train", torch)
        test_x, test_y = load_split(data_dir, "t10k", torch)
    except (OSError, ValueError) as e:
        print(f"torch_reference.py: cannot read the data: {e}", file=sys.stderr)
        return 1

    torch.manual_seed(args.seed)  # the initialization
    model = build_model(args.recipe, nn)
    loss_fn = nn.CrossEntropyLoss()  # mean over the batch (over the examples it has, for the last one)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=GAMMA) if step_size else None
    # The shuffling has its own generator, as DataLoader(shuffle=True, generator=g) would.
    shuffle_gen = torch.Generator().manual_seed(args.seed)

    n = train_x.shape[0]
    print(f"torch_reference.py: recipe {args.recipe}, {n:,} training and {test_x.shape[0]:,} test images "
          f"from {data_dir}, {epochs} epochs, seed {args.seed}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}", file=sys.stderr)
    model.train()
    for epoch in range(epochs):
        lr = opt.param_groups[0]["lr"]
        start = time.perf_counter()
        # DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, drop_last=False), without
        # its per-example collation: a permutation per epoch, consecutive slices of 64 of it.
        order = torch.randperm(n, generator=shuffle_gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            xb, yb = train_x[idx], train_y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            # As nnc reports them: the batch mean weighted by the batch's size, and the
            # predictions of the forward pass that computed it (before the step).
            loss_sum += loss.item() * idx.shape[0]
            correct += (logits.detach().argmax(1) == yb).sum().item()
        seconds = time.perf_counter() - start
        if sched is not None:
            sched.step()
        test_loss, test_acc = evaluate(model, test_x, test_y, torch, F)
        print(json.dumps({
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "val_loss": None,
            "val_acc": None,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": lr,
            "seconds": seconds,
            "images_per_s": n / seconds,
        }), flush=True)
        print(f"epoch {epoch + 1}/{epochs}  train loss {loss_sum / n:.4f} acc {100 * correct / n:.2f}%  "
              f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  lr {lr:g}  {seconds:.2f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
