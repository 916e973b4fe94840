#!/usr/bin/env python3
"""Writes the binary inputs of the bad-input catalogue into inputs/.

The files are committed (a few kB in all); this script says how each was
made and remakes them: python3 make_inputs.py NNC_BINARY. The checkpoints
come from nnc itself (a valid one, then damaged copies).
"""
import gzip, os, shutil, struct, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
inputs = os.path.join(here, "inputs")
nnc = sys.argv[1]


def idx(dims, data=b""):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def write(rel, content):
    path = os.path.join(inputs, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def gz(content):
    return gzip.compress(content, mtime=0)


def split(rel, images, labels, prefix="train"):
    write(f"{rel}/{prefix}-images-idx3-ubyte", images)
    write(f"{rel}/{prefix}-labels-idx1-ubyte", labels)


# A valid set: 4 images of 2×2 in each split, labels 0 1 0 1.
good_images = idx([4, 2, 2], bytes(range(16)))
good_labels = idx([4], bytes([0, 1, 0, 1]))
for s in ("train", "t10k"):
    split("data/good", good_images, good_labels, s)


def bad(name, images=good_images, labels=good_labels, suffix=""):
    write(f"data/{name}/train-images-idx3-ubyte{suffix}", images)
    write(f"data/{name}/train-labels-idx1-ubyte", labels)
    write(f"data/{name}/t10k-images-idx3-ubyte", good_images)
    write(f"data/{name}/t10k-labels-idx1-ubyte", good_labels)


bad("four_billion_images", idx([4000000000, 28, 28]))          # 3.1 TB claimed
bad("four_billion_bytes", idx([4000000000, 1, 1]))             # 4 GB claimed, none there
bad("gzip_claims_too_much", gz(idx([1000, 1000, 1000])), suffix=".gz")
bad("gzip_over_cap", gz(idx([2048, 32, 32], bytes(2048 * 32 * 32))), suffix=".gz")
bad("not_gzip", b"this is not gzip data at all", suffix=".gz")
bad("damaged_gzip", gz(idx([4, 2, 2], bytes(range(0, 160, 10))))[:-12], suffix=".gz")
bad("bad_magic", b"\x01\x02" + good_images[2:])
bad("int_type", bytes([0, 0, 0x0C, 3]) + good_images[4:])
bad("two_dims", idx([4, 4], bytes(16)))
bad("no_images", idx([0, 2, 2]))
bad("zero_rows", idx([4, 0, 2]))
bad("header_cut", good_images[:9])
bad("data_cut", good_images[:-5])
bad("extra_bytes", good_images + b"xyz")
bad("empty_file", b"")
bad("count_mismatch", labels=idx([3], bytes([0, 1, 0])))
bad("label_out_of_range", labels=idx([4], bytes([0, 1, 7, 1])))
bad("wrong_size", idx([4, 3, 3], bytes(36)))
os.makedirs(os.path.join(inputs, "data/images_are_a_directory/train-images-idx3-ubyte"),
            exist_ok=True)
write("data/images_are_a_directory/train-images-idx3-ubyte/.keep", b"")
write("data/images_are_a_directory/train-labels-idx1-ubyte", good_labels)
write("data/no_labels/train-images-idx3-ubyte", good_images)

# Checkpoints: written by nnc, then damaged.
ck = os.path.join(inputs, "ckpt")
os.makedirs(ck, exist_ok=True)
for name, nn, extra in (("tiny", "tiny.nn", []), ("other", "other.nn", []),
                        ("tiny_e2", "tiny.nn", ["--epochs", "2"])):
    subprocess.run([nnc, os.path.join(inputs, nn), "--train", "--data",
                    os.path.join(inputs, "data/good"), "--save",
                    os.path.join(ck, name + ".st")] + extra, check=True,
                   stderr=subprocess.DEVNULL)
tiny = open(os.path.join(ck, "tiny.st"), "rb").read()
write("ckpt/truncated.st", tiny[: len(tiny) // 2])
write("ckpt/truncated.optimizer.st", open(os.path.join(ck, "tiny.optimizer.st"), "rb").read())
write("ckpt/empty.st", b"")
write("ckpt/short.st", tiny[:5])
write("ckpt/huge_header.st", struct.pack("<Q", 1 << 40) + tiny[8:])
header_size = struct.unpack("<Q", tiny[:8])[0]
write("ckpt/bad_json.st", tiny[:8] + b"{" + b"x" * (header_size - 1) + tiny[8 + header_size:])
write("ckpt/text.st", b"these are not the weights you are looking for\n")
# Weights from epoch 2, optimizer state from epoch 1: not saved together.
shutil.copy(os.path.join(ck, "tiny_e2.st"), os.path.join(ck, "mixed.st"))
shutil.copy(os.path.join(ck, "tiny.optimizer.st"), os.path.join(ck, "mixed.optimizer.st"))
# Weights whose optimizer file is missing.
shutil.copy(os.path.join(ck, "tiny.st"), os.path.join(ck, "alone.st"))
for f in ("other.optimizer.st",):
    os.remove(os.path.join(ck, f))
