#!/usr/bin/env python3
"""Builds the bundled Fashion-MNIST subset that sparselab embeds (stdlib only).

Takes the first 600 training and first 100 test images of each of the 10 classes,
in file order (so the subset is class-balanced and reproducible), from the
official IDX files (Debian's `dataset-fashion-mnist` installs them under
/usr/share/datasets/fashion-mnist), and writes the same IDX format, gzipped.
Usage: python3 data/make_bundled_subset.py [SRC_DIR]
"""
import gzip, os, struct, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-mnist-subset")
PER_CLASS = {"train": 600, "t10k": 100}

def read(path):
    with gzip.open(path, "rb") as f:
        return f.read()

for split, per in PER_CLASS.items():
    imgs = read(f"{src}/{split}-images-idx3-ubyte.gz")
    labs = read(f"{src}/{split}-labels-idx1-ubyte.gz")
    magic, n, rows, cols = struct.unpack(">IIII", imgs[:16])
    assert magic == 2051, magic
    assert struct.unpack(">II", labs[:8]) == (2049, n)
    keep, count = [], [0] * 10
    for i in range(n):
        c = labs[8 + i]
        if count[c] < per:
            count[c] += 1
            keep.append(i)
    size = rows * cols
    out_imgs = struct.pack(">IIII", 2051, len(keep), rows, cols) + b"".join(
        imgs[16 + i * size: 16 + (i + 1) * size] for i in keep)
    out_labs = struct.pack(">II", 2049, len(keep)) + bytes(labs[8 + i] for i in keep)
    # mtime=0 makes the gzip bytes reproducible.
    with open(f"{dst}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(out_imgs, 9, mtime=0))
    with open(f"{dst}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(gzip.compress(out_labs, 9, mtime=0))
    print(split, len(keep), count)
