#!/usr/bin/env python3
"""Golden values for sparselab's gradient-flow measures (SPEC 5), from PyTorch.

Independent of sparselab's method: here the mask is applied in the forward pass
(the report's way, W_eff = W * m) and G_l is read as the gradient at the product
W_eff (retain_grad), whereas sparselab keeps masked weights at zero and reads the
parameter gradient. Writes gradflow.json beside this file.
Run: ~/.cache/sparselab/torch-2.11.0/bin/python tests/data/gradflow/gen_gradflow.py
"""
import json, math, os
import torch

torch.set_default_dtype(torch.float32)

def case(name, sizes, batch_norm, n):
    # Deterministic, hand-specifiable values: no RNG involved.
    weights, masks = [], []
    for l, (o, i) in enumerate(zip(sizes[1:], sizes[:-1])):
        w = torch.tensor([[math.sin(1.3 * (l + 1) * (r * i + c) + 0.5) for c in range(i)] for r in range(o)]) * 0.6
        m = torch.tensor([[1.0 if (r * 7 + c * 3 + l) % 3 != 0 else 0.0 for c in range(i)] for r in range(o)])
        weights.append(w * m)  # stored weights are zero where masked, as sparselab stores them
        masks.append(m)
    x = torch.tensor([[math.cos(0.7 * (b * sizes[0] + k)) for k in range(sizes[0])] for b in range(n)])
    y = torch.tensor([(3 * b + 1) % sizes[-1] for b in range(n)])
    params = [w.clone().requires_grad_(True) for w in weights]
    h = x
    effs = []
    for l, (w, m) in enumerate(zip(params, masks)):
        eff = w * m
        eff.retain_grad()
        effs.append(eff)
        h = h @ eff.T
        if l < len(params) - 1:
            if batch_norm:  # training-mode batch statistics, scale 1, shift 0
                h = torch.nn.functional.batch_norm(h, None, None, training=True, eps=1e-5)
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, y)
    loss.backward()
    G = [e.grad.double() for e in effs]
    layers = []
    for g, m in zip(G, masks):
        gm = g * m.double()
        layers.append({"l1": g.abs().sum().item(), "l2": g.norm().item(),
                       "masked_l1": gm.abs().sum().item(), "masked_l2": gm.norm().item()})
    flat = torch.cat([g.flatten() for g in G])
    return {
        "name": name, "sizes": sizes, "batch_norm": batch_norm,
        "weights": [w.tolist() for w in weights], "masks": [m.tolist() for m in masks],
        "x": x.tolist(), "y": y.tolist(), "loss": loss.item(),
        "egf1": sum(l["masked_l1"] for l in layers) / len(layers),
        "egf2": sum(l["masked_l2"] for l in layers) / len(layers),
        "gnorm1": flat.abs().sum().item(), "gnorm2": flat.norm().item(),
        "layers": layers,
    }

out = {"torch": torch.__version__,
       "cases": [case("relu_no_bn", [6, 5, 5, 3], False, 8), case("relu_bn", [6, 5, 5, 3], True, 8)]}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradflow.json"), "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps({c["name"]: [c["egf1"], c["egf2"], c["gnorm1"], c["gnorm2"]] for c in out["cases"]}))
