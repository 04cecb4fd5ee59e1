#!/usr/bin/env python3
"""PyTorch eager reference for sparselab's epoch benchmark (benches/epoch.rs).

Trains exactly what the Rust bench trains: Fashion-MNIST, 784 -> depth x width -> 10,
ReLU, no bias, batch 128, SGD momentum 0.9, lr 0.001, standardised inputs; one
evaluation pass over the test set per epoch. The sparse variant is the report's
masked MLP (weight * mask in the forward pass) with the given active counts.
Prints one JSON line per workload: {"name", "seconds_per_epoch", "epochs"}.
"""
import argparse, json, math, os, sys, time
import torch
import fashion_idx

p = argparse.ArgumentParser()
p.add_argument("--data", required=True, help="directory with the four IDX .gz files")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--workload", action="append", required=True,
               help="name:width:active1,active2,... (active counts per layer; 'dense' for all)")
p.add_argument("--train-limit", type=int, default=0)
p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: the data lives there, as in sparselab")
a = p.parse_args()
dev = torch.device(a.device)
torch.set_num_threads(a.threads)
torch.manual_seed(0)

xtr, ytr, xte, yte = (t.to(dev) for t in fashion_idx.load(a.data, a.train_limit))

def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()

class MaskedMLP(torch.nn.Module):
    def __init__(self, sizes, active):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:]))
        self.masks = []
        for l, k in zip(self.layers, active):
            n = l.weight.numel()
            if k is None or k >= n:
                self.masks.append(None)
            else:
                mask = torch.zeros(n)
                mask[torch.randperm(n)[:k]] = 1
                self.masks.append(mask.view_as(l.weight).to(dev))
            torch.nn.init.kaiming_normal_(l.weight)

    def forward(self, x):
        for i, (l, m) in enumerate(zip(self.layers, self.masks)):
            w = l.weight if m is None else l.weight * m
            x = x @ w.T
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

for spec in a.workload:
    name, width, active = spec.split(":")
    width = int(width)
    sizes = [784] + [width] * 4 + [10]
    active = [None] * 5 if active == "dense" else [int(k) for k in active.split(",")]
    net = MaskedMLP(sizes, active).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    times = []
    for epoch in range(a.epochs):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(len(ytr), device=dev)
        for i in range(0, len(ytr), 128):
            idx_b = perm[i:i + 128]
            loss = torch.nn.functional.cross_entropy(net(xtr[idx_b]), ytr[idx_b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            for i in range(0, len(yte), 2048):
                torch.nn.functional.cross_entropy(net(xte[i:i + 2048]), yte[i:i + 2048])
        sync()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"name": name, "seconds_per_epoch": sum(times) / len(times), "epochs": a.epochs}), flush=True)
