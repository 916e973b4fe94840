"""An nnc checkpoint loaded into PyTorch predicts what `nnc --predict` does.

    /usr/bin/python3 tests/torch/predict.py NNC SOURCE_DIR WORK_DIR

Trains examples/mnist.nn for one epoch on the committed slice of digits
(tests/data/mnist-slice) with --save, loads the checkpoint into the same
model written in PyTorch with load_state_dict(strict=True) — so the names
and layouts must be PyTorch's — and checks that the softmax of its output
matches `nnc --predict --json` on test images within 1e-5. The checkpoint
is read with safetensors.torch.load_file where that package is installed,
else with the independent reader of tests/torch/checkpoint.py. Exit status
77 means PyTorch is not installed (skipped).
"""
import gzip
import json
import os
import struct
import subprocess
import sys

from common import torch  # skips (exit 77) without PyTorch

try:
    from safetensors.torch import load_file
except ImportError:
    from checkpoint import read

    def load_file(path):
        return read(path)[3]


class Net(torch.nn.Module):
    """examples/mnist.nn."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 64)
        self.fc2 = torch.nn.Linear(64, 64)
        self.fc3 = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def fail(message):
    print(f"predict.py: {message}")
    sys.exit(1)


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def main():
    nnc, source, work = sys.argv[1:4]
    example = os.path.join(source, "examples", "mnist.nn")
    data = os.path.join(source, "tests", "data", "mnist-slice")
    weights = os.path.join(work, "predict.st")
    run([nnc, example, "--train", "--epochs", "1", "--data", data, "--save", weights])

    model = Net().float()
    model.load_state_dict(load_file(weights), strict=True)  # the file as it is
    model.eval()

    with gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    _, count, rows, cols = struct.unpack(">IIII", raw[:16])
    worst = 0.0
    for i in range(5):
        pixels = raw[16 + i * rows * cols:16 + (i + 1) * rows * cols]
        image = os.path.join(work, f"digit{i}.pgm")
        with open(image, "wb") as f:
            f.write(f"P5\n{cols} {rows}\n255\n".encode() + pixels)
        got = json.loads(run([nnc, example, "--predict", image, "--weights", weights, "--json"]))
        x = torch.tensor(list(pixels), dtype=torch.float32).reshape(1, 1, rows, cols) / 255
        with torch.no_grad():
            want = torch.softmax(model(x).double(), dim=1)[0]
        diff = max(abs(a - b) for a, b in zip(got["probabilities"], want.tolist()))
        worst = max(worst, diff)
        if got["class"] != int(want.argmax()):
            fail(f"image {i}: nnc says class {got['class']}, PyTorch {int(want.argmax())}")
    if worst > 1e-5:
        fail(f"probabilities differ by up to {worst:.3g} (more than 1e-5)")
    print(f"predict.py: 5 images, probabilities agree within {worst:.3g}")


if __name__ == "__main__":
    main()
