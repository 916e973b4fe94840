"""The reference interpreter's kernels against PyTorch, in float64.

For each case, a one-layer .nn program is checked by nnc's interpreter
(tests/tools/interp_dump, which prints the input, the parameters and the
output it computed) and the same layer is computed with torch.nn.functional
from the same input and parameters. Every case must agree to 1e-10.
Exit status 77 means PyTorch is not installed (CTest: skipped).

    /usr/bin/python3 tests/torch/kernels.py build/tests/interp_dump
"""
import json
import os
import subprocess
import sys
import tempfile

from common import tensor, torch  # skips (exit 77) without PyTorch
import torch.nn.functional as F

# (input shape per example, the layer as written in .nn, the same in PyTorch
# given the input x and the parameters p of the layer named `l`, train mode)
CASES = [
    ([5], "dense(3)", lambda x, p: F.linear(x, p["l.weight"], p["l.bias"]), False),
    ([5], "dense(3, bias=false)", lambda x, p: F.linear(x, p["l.weight"]), False),
    ([2, 3, 4], "flatten", lambda x, p: x.flatten(1), False),
    ([2, 7, 6], "conv2d(4, 3)", lambda x, p: F.conv2d(x, p["l.weight"], p["l.bias"]), False),
    ([3, 9, 8], "conv2d(2, [3, 2], stride=[2, 1], padding=[1, 2])",
     lambda x, p: F.conv2d(x, p["l.weight"], p["l.bias"], stride=(2, 1), padding=(1, 2)), False),
    ([1, 6, 6], "conv2d(3, 5, stride=2, padding=2, bias=false)",
     lambda x, p: F.conv2d(x, p["l.weight"], stride=2, padding=2), False),
    ([2, 7, 7], "maxpool2d(2)", lambda x, p: F.max_pool2d(x, 2), False),
    ([2, 7, 8], "maxpool2d(3, stride=2, padding=1)",
     lambda x, p: F.max_pool2d(x, 3, stride=2, padding=1), False),
    ([2, 7, 7], "avgpool2d(2)", lambda x, p: F.avg_pool2d(x, 2), False),
    ([2, 6, 7], "avgpool2d([3, 2], stride=1, padding=1)",
     lambda x, p: F.avg_pool2d(x, (3, 2), stride=1, padding=1), False),
    ([3, 4, 5], "batchnorm", lambda x, p: F.batch_norm(
        x, p["l.running_mean"], p["l.running_var"], p["l.weight"], p["l.bias"], False, 0.1, 1e-5),
     False),
    ([3, 4, 5], "batchnorm(eps=0.01)", lambda x, p: F.batch_norm(
        x, p["l.running_mean"].clone(), p["l.running_var"].clone(), p["l.weight"], p["l.bias"],
        True, 0.1, 0.01), True),
    ([6], "batchnorm", lambda x, p: F.batch_norm(
        x, p["l.running_mean"].clone(), p["l.running_var"].clone(), p["l.weight"], p["l.bias"],
        True, 0.1, 1e-5), True),
    ([12], "reshape(3, -1, 2)", lambda x, p: x.reshape(-1, 3, 2, 2), False),
    ([2, 3, 4], "transpose", lambda x, p: x.transpose(-2, -1), False),
    ([2, 3, 4], "transpose(1, 3)", lambda x, p: x.transpose(1, 3), False),
    ([7], "relu", lambda x, p: F.relu(x), False),
    ([7], "sigmoid", lambda x, p: torch.sigmoid(x), False),
    ([7], "tanh", lambda x, p: torch.tanh(x), False),
    ([7], "leaky_relu(0.2)", lambda x, p: F.leaky_relu(x, 0.2), False),
    ([7], "gelu", lambda x, p: F.gelu(x), False),
    ([7], "gelu(\"tanh\")", lambda x, p: F.gelu(x, approximate="tanh"), False),
    ([7], "dropout(0.3)", lambda x, p: x, False),  # evaluation: identity
    ([3, 5], "softmax", lambda x, p: F.softmax(x, -1), False),
    ([3, 5], "softmax(axis=1)", lambda x, p: F.softmax(x, 1), False),
    ([3, 5], "log_softmax", lambda x, p: F.log_softmax(x, -1), False),
    ([4], "neg", lambda x, p: -x, False),
    ([3, 4], "sum", lambda x, p: x.sum(-1), False),
    ([3, 4], "mean(axis=1)", lambda x, p: x.mean(1), False),
]

# Whole expressions over the input x (no parameters).
EXPRESSIONS = [
    ([2, 3], "add(x, x -> relu)", lambda x: x + F.relu(x)),
    ([2, 3], "mul(x, x -> sigmoid)", lambda x: x * torch.sigmoid(x)),
    ([2, 3], "add(x, ones(2, 3))", lambda x: x + 1),
    ([2, 3], "mul(zeros(2, 3), x)", lambda x: x * 0),
    ([2, 3], "concat(x, x -> neg, x, axis=2)", lambda x: torch.cat([x, -x, x], 2)),
    ([2, 3], "concat(x, x -> tanh)", lambda x: torch.cat([x, torch.tanh(x)], 1)),
    ([2, 3], "x @ (x -> transpose)", lambda x: x @ x.transpose(-2, -1)),
    ([5, 4], "x @ ones(4, 2)", lambda x: x @ torch.ones(4, 2)),
]



def main():
    dump = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for shape, layer, reference, train in CASES:
            path = os.path.join(tmp, "case.nn")
            with open(path, "w") as f:
                # flatten: a loss needs [N, classes]; it does not change the values
                f.write(f"model M(x: {shape}) {{ x -> l: {layer} -> flatten }}\n"
                        "loss mse\noptimizer adam\n")
            args = [dump, path, "3", "7"] + (["train"] if train else [])
            failures += not compare(args, layer, shape, train,
                                    lambda values: reference(
                                        tensor(values["x"]),
                                        {k: tensor(v) for k, v in values.items()
                                         if k.startswith("l.")}))
        for shape, expression, reference in EXPRESSIONS:
            path = os.path.join(tmp, "case.nn")
            with open(path, "w") as f:
                f.write(f"model M(x: {shape}) {{ ({expression}) -> flatten }}\n"
                        "loss mse\noptimizer adam\n")
            failures += not compare([dump, path, "3", "7"], expression, shape, False,
                                    lambda values: reference(tensor(values["x"])))
    sys.exit(1 if failures else 0)


def compare(args, what, shape, train, reference):
    """Runs interp_dump and compares its output with `reference(values)`."""
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL {what}: interp_dump failed: {out.stderr}")
        return False
    values = json.loads(out.stdout)
    expected = reference(values).flatten(1)
    got = tensor(values["@output"])
    ok = got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    err = (got - expected).abs().max().item() if got.shape == expected.shape else "shape"
    print(f"{'ok  ' if ok else 'FAIL'} {what} on {shape}{' (training)' if train else ''}:"
          f" max difference {err}")
    return ok


if __name__ == "__main__":
    main()
