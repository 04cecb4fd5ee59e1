#!/usr/bin/env python3
"""PyTorch eager reference for sparselab's grid benchmark (benches/grid.rs).

One cell of the report's Table A.1 grid (Fashion-MNIST, 4 hidden layers, low learning
rate): an optimizer (adagrad, adam, momentum) and a regularization code (NR, L2, DA,
SC, BN and combinations joined by _), trained exactly as sparselab's `sc_sdc` trains
it for one seed: for each dense-width fraction f, the dense twin 784 -> 4 x w -> 10
(w = round(788 f)) and the sparse twin 784 -> 4 x 788 -> 10 with the dense twin's
active count in every layer (the report's masked MLP: weight * mask in the forward
pass). No biases, ReLU, batch 128, standardised inputs, one evaluation pass over the
test set after the epoch. Per hidden layer: linear -> [BatchNorm1d] -> [+ skip] ->
ReLU, with one residual block around hidden layers 2-3 (SPEC 2). L2 = coupled weight
decay 1e-4 (torch's `weight_decay`, added to the gradient); DA = random crop with
4-pixel zero padding and random horizontal flip per example, on the training batches.

Prints one JSON line per network: {"name", "seconds"} (building the network and its
mask, one epoch and the evaluation), then {"cell", "seconds"} for the cell's total.
"""
import argparse, json, time
import torch
import fashion_idx

p = argparse.ArgumentParser()
p.add_argument("--data", required=True, help="directory with the four IDX .gz files")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--optimizer", required=True, choices=["adagrad", "adam", "momentum"])
p.add_argument("--reg", required=True, help="NR, L2, DA, SC, BN joined by _ (e.g. DA_SC_BN)")
p.add_argument("--lr", type=float, default=0.001)
p.add_argument("--fractions", default="0.1,0.3,0.5,0.7,0.9")
p.add_argument("--train-limit", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
parts = set(a.reg.upper().split("_"))
assert parts <= {"NR", "L2", "DA", "SC", "BN"}, a.reg
l2, augment, skip, bn = 1e-4 if "L2" in parts else 0.0, "DA" in parts, "SC" in parts, "BN" in parts


xtr, ytr, xte, yte = fashion_idx.load(a.data, a.train_limit)


def crop_flip(x, pad=4):
    """[B, 784] -> [B, 784]: each image a random crop of its zero-padded self, flipped with p = 1/2."""
    b = x.shape[0]
    padded = torch.nn.functional.pad(x.view(b, 28, 28), (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    ox = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    flip = torch.randint(0, 2, (b, 1, 1))
    col = torch.arange(28).view(1, 1, 28)
    cols = ox + flip * (27 - col) + (1 - flip) * col
    rows = oy + torch.arange(28).view(1, 28, 1)
    return padded[torch.arange(b).view(b, 1, 1), rows, cols].reshape(b, 784)


class MaskedMLP(torch.nn.Module):
    def __init__(self, sizes, active):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:]))
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(o) for o in sizes[1:-1]) if bn else None
        self.masks = []
        for l, k in zip(self.layers, active):
            n = l.weight.numel()
            if k is None or k >= n:
                self.masks.append(None)
            else:
                mask = torch.zeros(n)
                mask[torch.randperm(n)[:k]] = 1
                self.masks.append(mask.view_as(l.weight))
            torch.nn.init.kaiming_normal_(l.weight)

    def forward(self, x):
        depth = len(self.layers) - 1
        residual = None
        for i in range(depth):
            if skip and i % 2 == 1 and i + 1 < depth:
                residual = x
            w, mk = self.layers[i].weight, self.masks[i]
            z = x @ (w if mk is None else w * mk).T
            if bn:
                z = self.norms[i](z)
            if skip and i % 2 == 0 and i >= 2 and residual is not None:
                z = z + residual
                residual = None
            x = torch.relu(z)
        w, mk = self.layers[depth].weight, self.masks[depth]
        return x @ (w if mk is None else w * mk).T


def optimizer(params):
    if a.optimizer == "momentum":
        return torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=l2)
    if a.optimizer == "adam":
        return torch.optim.Adam(params, lr=a.lr, weight_decay=l2)
    return torch.optim.Adagrad(params, lr=a.lr, weight_decay=l2)


total = 0.0
for f in [float(v) for v in a.fractions.split(",")]:
    w = round(f * 788)
    active = [784 * w, w * w, w * w, w * w, w * 10]
    for name, width, act in [(f"sparse {f}", 788, active), (f"dense {f}", w, [None] * 5)]:
        t0 = time.perf_counter()
        net = MaskedMLP([784] + [width] * 4 + [10], act)
        opt = optimizer(net.parameters())
        net.train()
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), 128):
            idx_b = perm[i:i + 128]
            xb = xtr[idx_b]
            if augment:
                xb = crop_flip(xb)
            loss = torch.nn.functional.cross_entropy(net(xb), ytr[idx_b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            for i in range(0, len(yte), 2048):
                torch.nn.functional.cross_entropy(net(xte[i:i + 2048]), yte[i:i + 2048])
        seconds = time.perf_counter() - t0
        total += seconds
        print(json.dumps({"name": name, "seconds": seconds}), flush=True)
print(json.dumps({"cell": f"{a.optimizer} {a.reg}", "seconds": total}), flush=True)
