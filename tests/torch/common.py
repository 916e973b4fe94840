"""What the PyTorch cross-checks share: importing torch or skipping (exit
status 77, which CTest reports as skipped), and tensors from the JSON the
test tools print."""
import sys

try:
    import torch
except ImportError:
    print("skipped: PyTorch is not installed (Debian: apt-get install python3-torch)")
    sys.exit(77)

torch.set_default_dtype(torch.float64)


def tensor(entry):
    """{"dims": [...], "data": [...]} as a float64 tensor."""
    return torch.tensor(entry["data"], dtype=torch.float64).reshape(entry["dims"])
