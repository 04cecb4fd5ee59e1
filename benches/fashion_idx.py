"""Fashion-MNIST for the PyTorch reference scripts (benches/pytorch_reference.py,
benches/pytorch_grid.py), loaded as sparselab loads it: the IDX files, pixels / 255,
standardised by the training split's mean and standard deviation."""
import gzip
import torch


def idx(path, images):
    with gzip.open(path, "rb") as f:
        b = f.read()
    t = torch.frombuffer(bytearray(b[16 if images else 8:]), dtype=torch.uint8)
    return t.view(-1, 784).float().div_(255) if images else t.long()


def load(data, train_limit=0):
    """(x_train, y_train, x_test, y_test); the first `train_limit` training examples when > 0."""
    xtr, ytr = idx(f"{data}/train-images-idx3-ubyte.gz", True), idx(f"{data}/train-labels-idx1-ubyte.gz", False)
    xte, yte = idx(f"{data}/t10k-images-idx3-ubyte.gz", True), idx(f"{data}/t10k-labels-idx1-ubyte.gz", False)
    if train_limit:
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    m, s = xtr.mean(), xtr.std()
    return (xtr - m) / s, ytr, (xte - m) / s, yte
