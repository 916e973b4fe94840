"""nnc's safetensors files against an independent reader and writer.

python3-safetensors is not installable here, so the reader and the writer
are written from the format's description with the json module, struct and
torch.frombuffer, sharing nothing with runtime/Checkpoint.cpp.

    /usr/bin/python3 tests/torch/checkpoint.py WRITTEN_BY_NNC TO_WRITE

Reads WRITTEN_BY_NNC (written by the test "Checkpoint: an independent
reader and writer ..." in tests/unit/CheckpointTest.cpp; the expected values
below must stay in step with it), checks its layout against the reference
writer's and its values, then writes TO_WRITE with a layout of its own
(tensors in name order and unaligned, \\u escapes, metadata last) for the
test to read. Exit status 77 means PyTorch is not installed (skipped).
"""
import json
import math
import struct
import sys

from common import torch  # skips (exit 77) without PyTorch

DTYPES = {  # name: (torch dtype, bytes per element)
    "F32": (torch.float32, 4),
    "F64": (torch.float64, 8),
    "I32": (torch.int32, 4),
    "I64": (torch.int64, 8),
    "U8": (torch.uint8, 1),
}


def fail(message):
    print(f"checkpoint.py: {message}")
    sys.exit(1)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail(f"duplicate keys in {keys}")
    return dict(pairs)  # in order


def read(path):
    """(header JSON text, the header as dicts in order, [(name, info)] in
    header order, {name: tensor}, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: too short")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        fail(f"{path}: header size {n} beyond the file")
    text = data[8:8 + n].decode("utf-8")
    top = json.loads(text, object_pairs_hook=no_duplicates)
    metadata = {}
    entries = []
    for key, value in top.items():
        if key == "__metadata__":
            metadata = dict(value)
        else:
            entries.append((key, dict(value)))
    buffer = data[8 + n:]
    tensors = {}
    end = 0
    for name, info in sorted(entries, key=lambda e: e[1]["data_offsets"]):
        if set(info) != {"dtype", "shape", "data_offsets"}:
            fail(f"{name}: keys {sorted(info)}")
        begin, stop = info["data_offsets"]
        if begin != end:
            fail(f"{name}: begins at {begin}, not {end}")
        dtype, size = DTYPES[info["dtype"]]
        count = math.prod(info["shape"])
        if stop - begin != count * size:
            fail(f"{name}: {stop - begin} bytes for shape {info['shape']}")
        if count:
            # bytes in the file are little-endian; so is this machine's order
            t = torch.frombuffer(bytearray(buffer[begin:stop]), dtype=dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
        end = stop
    if end != len(buffer):
        fail(f"{path}: data ends at {end} but {len(buffer)} bytes follow the header")
    return text, top, entries, tensors, metadata


def same_bits(got, expected):
    if got.dtype != expected.dtype or got.shape != expected.shape:
        return False
    if got.dtype == torch.float32:
        return torch.equal(got.view(torch.int32), expected.view(torch.int32))
    if got.dtype == torch.float64:
        return torch.equal(got.view(torch.int64), expected.view(torch.int64))
    return torch.equal(got, expected)


def check_nnc_file(path):
    text, top, entries, tensors, metadata = read(path)
    n = len(text.encode("utf-8"))
    if n % 8:
        fail(f"header of {n} bytes is not padded to a multiple of 8")
    body = text.rstrip(" ")
    if not body.endswith("}") or len(text) - len(body) >= 8:
        fail(f"header padding is not 0-7 trailing spaces: {text[-10:]!r}")
    if not body.startswith('{"__metadata__":{'):
        fail(f"the header does not begin with the metadata: {body[:40]!r}")
    # compact, keys in order, escaped as serde_json escapes (as Python's json
    # does without ensure_ascii: \" \\ \b \f \n \r \t, \u00xx, the rest as is)
    compact = json.dumps(top, separators=(",", ":"), ensure_ascii=False)
    if body != compact:
        fail(f"the header is not the reference writer's JSON:\n{body}\n{compact}")
    order = [name for name, _ in entries]
    # the reference writer's order: I64 before F32, then by name
    if order != ["counts", "step", "empty", "layer.bias", "layer.weight"]:
        fail(f"tensor order {order}")
    expected = {
        "layer.weight": torch.tensor([[0.5, -1.25, 3.0], [0.1, -0.0, 1e30]], dtype=torch.float32),
        "layer.bias": torch.tensor([1.0, -2.0, 0.25], dtype=torch.float32),
        "step": torch.tensor(1234567890123, dtype=torch.int64),
        "counts": torch.tensor([-1, 0, 2**53 + 1, -2**63], dtype=torch.int64),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }
    if sorted(tensors) != sorted(expected):
        fail(f"tensors {sorted(tensors)}")
    for name, want in expected.items():
        if not same_bits(tensors[name], want):
            fail(f"{name}: {tensors[name]} but expected {want}")
    want_metadata = {
        "step": "12",
        "epoch": "3",
        "seed": "42",
        "fingerprint": "sha256:0123abcd",
        "note": "tab\there \"quoted\" back\\slash\nnewline "
                "\u00e9 \u6f22\u5b57 \U0001F600 \x01 \x7f end",
        "k\u00e9y \"with\" escapes\n": "\u2713",
    }
    if metadata != want_metadata:
        fail(f"metadata {metadata!r}")
    print(f"checkpoint.py: {path}: {len(tensors)} tensors and {len(metadata)} metadata as expected")


def write_file(path):
    # (name, dtype, shape, struct format of the little-endian values, values)
    tensors = [
        ("w", "F64", [2, 2], "<4d", [1.5, -2.5, 1e-300, 3.25]),
        ("x", "F32", [], "<f", [0.75]),
        ("ids", "I32", [3], "<3i", [7, -8, 2147483647]),
        ("u", "U8", [5], "<5B", [0, 1, 127, 128, 255]),
        ("i", "I64", [2], "<2q", [-5, 2**40]),
        ("z", "F32", [0], "<0f", []),
    ]
    header = {}
    data = b""
    for name, dtype, shape, fmt, values in sorted(tensors):
        chunk = struct.pack(fmt, *values)
        header[name] = {"shape": shape, "dtype": dtype,
                        "data_offsets": [len(data), len(data) + len(chunk)]}
        data += chunk
    header["__metadata__"] = {"emoji": "\U0001F600 \u00e9 \u2713", "quote": "\"q\"\\ \n",
                              "step": "7"}
    text = json.dumps(header, ensure_ascii=True).encode("ascii") + b"   "
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    if len(sys.argv) != 3:
        fail("usage: checkpoint.py WRITTEN_BY_NNC TO_WRITE")
    check_nnc_file(sys.argv[1])
    write_file(sys.argv[2])


if __name__ == "__main__":
    main()
