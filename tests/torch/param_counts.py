"""Parameter counts of the examples, built in PyTorch, against `nnc --check`.

Each model below is written the way a PyTorch user would write the matching
examples/*.nn file. The test passes when nnc reports the same number of
trainable parameters (and of batchnorm running statistics) as PyTorch for
every example. Exit status 77 means PyTorch is not installed (CTest: skipped).

    /usr/bin/python3 tests/torch/param_counts.py build/nnc examples
"""
import re
import subprocess
import sys

from common import torch  # skips (exit 77) without PyTorch
from torch import nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64),
                         nn.ReLU(), nn.Linear(64, 10))


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def fashion_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(c)
        self.conv_b = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(c)

    def forward(self, x):
        h = self.bn_b(self.conv_b(torch.relu(self.bn_a(self.conv_a(x)))))
        return torch.relu(h + x)


class ResNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.res1 = Residual(16)
        self.widen = nn.Conv2d(16, 32, 1)
        self.res2 = Residual(32)
        self.res3 = Residual(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.stem(x)))
        a = nn.functional.max_pool2d(self.res1(h), 2)
        b = self.res3(self.res2(self.widen(a)))
        return self.fc(nn.functional.avg_pool2d(b, 14).flatten(1))


MODELS = {
    "mnist.nn": mlp, "mnist_augment.nn": mlp, "fashion.nn": mlp,
    "lenet.nn": lenet, "fashion_cnn.nn": fashion_cnn, "resnet_tiny.nn": ResNetTiny,
}


def main():
    nnc, examples = sys.argv[1], sys.argv[2]
    failures = 0
    for name, build in MODELS.items():
        model = build()
        model(torch.zeros(2, 1, 28, 28))  # the shapes work in PyTorch too
        params = sum(p.numel() for p in model.parameters())
        state = sum(b.numel() for n, b in model.named_buffers() if "running_" in n)
        out = subprocess.run([nnc, f"{examples}/{name}", "--check"], capture_output=True,
                             text=True, check=True).stdout
        got = int(re.search(r"Total params: ([\d,]+)", out).group(1).replace(",", ""))
        m = re.search(r"Running statistics: ([\d,]+)", out)
        got_state = int(m.group(1).replace(",", "")) if m else 0
        ok = got == params and got_state == state
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: PyTorch {params:,} parameters, "
              f"{state:,} running statistics; nnc {got:,} and {got_state:,}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
