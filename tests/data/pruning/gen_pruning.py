#!/usr/bin/env python3
"""Golden values for sparselab's pruning-at-initialization scores, from PyTorch (float64).

Tiny MLP 6 -> 5 -> 5 -> 3, ReLU after each hidden layer, biases on every layer,
torch Linear layout W_l [out, in]:
    W_l[o][i] = 0.5 * sin(1.0 + 0.7*l + 0.31*o + 0.17*i),  b_l[o] = 0.5 + 0.1 * cos(0.5*l + 0.3*o),
    l = 1, 2, 3; o, i 0-based. Data: x[n][i] = cos(0.4*n + 0.9*i), n < 8, i < 6; y[n] = n % 3.
    Loss: mean cross-entropy. Everything in float64.
    The +0.5 bias offset keeps the network non-degenerate: every hidden ReLU unit is active on at
    least one example (in fact on >= 5 of 8), no snip/grasp/synflow score is exactly 0, and every
    min_relative_margin_* is >= 1e-3 (all asserted below), so there are no exact ties.

Scores (per weight layer, flattened row-major [out, in]; biases never scored):
  snip      |dL/dW * W|
  grasp     -W * Hg, with L_T = CE(logits / 200), g = dL_T/dW detached, Hg = d(sum_l <g_l, dL_T/dW_l>)/dW
            by double backward (as ganguli-lab/Synaptic-Flow pruners.py GraSP, un-normalised)
  synflow   |dR/dW * W| with every parameter (weights and biases) replaced by its abs,
            input = ones [1, 6], R = sum(logits)
Masks (largest scores kept; k = floor(x + 0.5), not round-half-even; inactive entries never revived):
  synflow_masks_global / _layer   iterative SynFlow, 100 rounds, density_r = 0.2 ** (r / 100), weights masked
                                  (W * m, abs), biases unmasked (abs); global k = floor(d_r*70 + .5),
                                  layer k_l = max(1, floor(d_r*n_l + .5))
  snip_masks_layer_0.4            layer scope, density 0.4, largest snip kept
  grasp_masks_global_0.4          global, k = 28, largest W*Hg (= smallest grasp score) kept
min_relative_margin_* = min over rounds (and layers) of (s_k - s_{k+1}) / max(|s_k|, 1e-30) on the
sorted-descending scores used for selection (only when a (k+1)-th active candidate exists), so a
float32 implementation can tell whether it may flip a tie. Ties (if any) are broken by lowest
flattened index (stable sort); the zero-margin selections are listed in "ties", and
"tie_break_sensitive" says which final masks change if ties are broken the other way. The script also checks SNIP, Hg and SynFlow by finite differences.
Writes pruning.json beside this file.
Run: ~/.cache/sparselab/torch-2.11.0/bin/python tests/data/pruning/gen_pruning.py
"""
import json, math, os
import torch

DT = torch.float64
SIZES = [6, 5, 5, 3]
N_EX = 8


def weights():
    Ws, bs = [], []
    for l in (1, 2, 3):
        out_f, in_f = SIZES[l], SIZES[l - 1]
        Ws.append(torch.tensor([[0.5 * math.sin(1.0 + 0.7 * l + 0.31 * o + 0.17 * i) for i in range(in_f)]
                                for o in range(out_f)], dtype=DT))
        bs.append(torch.tensor([0.5 + 0.1 * math.cos(0.5 * l + 0.3 * o) for o in range(out_f)], dtype=DT))
    return Ws, bs


X = torch.tensor([[math.cos(0.4 * n + 0.9 * i) for i in range(SIZES[0])] for n in range(N_EX)], dtype=DT)
Y = torch.tensor([n % 3 for n in range(N_EX)])


def forward(Ws, bs, x):
    h = x
    for l, (w, b) in enumerate(zip(Ws, bs)):
        h = h @ w.T + b
        if l < len(Ws) - 1:
            h = torch.relu(h)
    return h


def loss_fn(Ws, bs, T=1.0):
    return torch.nn.functional.cross_entropy(forward(Ws, bs, X) / T, Y)


def grads(Ws, bs, T=1.0, create_graph=False):
    return torch.autograd.grad(loss_fn(Ws, bs, T), Ws, create_graph=create_graph)


def snip_scores(W0, b0):
    Ws = [w.clone().requires_grad_(True) for w in W0]
    g = grads(Ws, b0)
    return [(gi * w).abs() for gi, w in zip(g, W0)]


def grasp_parts(W0, b0, T=200.0):
    Ws = [w.clone().requires_grad_(True) for w in W0]
    g = [gi.detach() for gi in grads(Ws, b0, T)]           # "stopped" gradients
    g2 = grads(Ws, b0, T, create_graph=True)
    z = sum((gs * gi).sum() for gs, gi in zip(g, g2))
    Hg = torch.autograd.grad(z, Ws)
    return g, Hg


def synflow_scores(W0, b0, masks=None):
    if masks is None:
        masks = [torch.ones_like(w) for w in W0]
    Ws = [(w * m).abs().requires_grad_(True) for w, m in zip(W0, masks)]
    bs = [b.abs() for b in b0]
    R = forward(Ws, bs, torch.ones(1, SIZES[0], dtype=DT)).sum()
    gW = torch.autograd.grad(R, Ws)
    return [(gi * w).abs().detach() for gi, w in zip(gW, Ws)]


TIE_BREAK = {"reverse": False}   # False: ties kept by lowest flattened index; True: by highest (diagnostic)
TIES = []                         # (selection, round, layer, tied value) for every zero-margin selection
WHERE = {"sel": None, "round": None}


def keep_top(flat_scores, active, k, layer=None):
    """Keep k largest among active; returns (new active bool mask, relative margin or None)."""
    s = torch.where(active, flat_scores, torch.full_like(flat_scores, -math.inf))
    if TIE_BREAK["reverse"]:
        vals, idx = torch.sort(s.flip(0), descending=True, stable=True)
        idx = s.numel() - 1 - idx
    else:
        vals, idx = torch.sort(s, descending=True, stable=True)
    assert k <= int(active.sum()), (k, int(active.sum()))
    new = torch.zeros_like(active)
    new[idx[:k]] = True
    margin = None
    if k < s.numel() and math.isfinite(vals[k].item()):
        sk, sk1 = vals[k - 1].item(), vals[k].item()
        margin = (sk - sk1) / max(abs(sk), 1e-30)
        if margin == 0 and not TIE_BREAK["reverse"]:
            TIES.append({"selection": WHERE["sel"], "round": WHERE["round"], "layer": layer, "value": sk})
    return new, margin


def k_of(d, n):
    return max(1, math.floor(d * n + 0.5))


def mask_global(scores, active, density):
    flat = torch.cat([s.flatten() for s in scores])
    act = torch.cat([a.flatten() for a in active])
    new, margin = keep_top(flat, act, math.floor(density * flat.numel() + 0.5))
    out, off = [], 0
    for s in scores:
        out.append(new[off:off + s.numel()].view_as(s)); off += s.numel()
    return out, margin


def mask_layer(scores, active, density):
    out, margins = [], []
    for l, (s, a) in enumerate(zip(scores, active)):
        new, m = keep_top(s.flatten(), a.flatten(), k_of(density, s.numel()), layer=l)
        out.append(new.view_as(s))
        if m is not None:
            margins.append(m)
    return out, (min(margins) if margins else None)


def synflow_iterative(W0, b0, d=0.2, rounds=100, scope="global"):
    active = [torch.ones_like(w, dtype=torch.bool) for w in W0]
    margins = []
    for r in range(1, rounds + 1):
        WHERE["sel"], WHERE["round"] = "synflow_masks_" + scope, r
        dr = d ** (r / rounds)
        sc = synflow_scores(W0, b0, [a.to(DT) for a in active])
        for s, a in zip(sc, active):
            assert (s[~a] == 0).all()
        active, m = (mask_global if scope == "global" else mask_layer)(sc, active, dr)
        margins.append(m)
    return active, margins


def min_or_none(ms):
    ms = [m for m in ms if m is not None]
    return min(ms) if ms else None


def fd_checks(W0, b0):
    eps = 1e-6
    # SNIP: dL/dW at one entry by central differences.
    Ws = [w.clone().requires_grad_(True) for w in W0]
    g = grads(Ws, b0)
    for (l, o, i) in [(0, 2, 3), (1, 4, 1), (2, 1, 4)]:
        Wp = [w.clone() for w in W0]; Wm = [w.clone() for w in W0]
        Wp[l][o, i] += eps; Wm[l][o, i] -= eps
        fd = (loss_fn(Wp, b0) - loss_fn(Wm, b0)).item() / (2 * eps)
        assert abs(fd - g[l][o, i].item()) < 1e-8, ("snip fd", l, o, i, fd, g[l][o, i].item())
    # Hg: directional difference of dL_T/dW along g.
    gT, Hg = grasp_parts(W0, b0)
    e = 1e-4
    gp = grads([(w + e * gi).requires_grad_(True) for w, gi in zip(W0, gT)], b0, 200.0)
    gm = grads([(w - e * gi).requires_grad_(True) for w, gi in zip(W0, gT)], b0, 200.0)
    for l in range(3):
        fd = (gp[l] - gm[l]) / (2 * e)
        scale = Hg[l].abs().max().item()
        assert (fd - Hg[l]).abs().max().item() < 1e-6 * scale, ("Hg fd", l)
    # SynFlow: dR/dW at one entry (abs network, ones input).
    sf = synflow_scores(W0, b0)
    Wa = [w.abs() for w in W0]; ba = [b.abs() for b in b0]
    one = torch.ones(1, SIZES[0], dtype=DT)
    for (l, o, i) in [(0, 1, 5), (1, 3, 3), (2, 2, 0)]:
        Wp = [w.clone() for w in Wa]; Wm = [w.clone() for w in Wa]
        Wp[l][o, i] += eps; Wm[l][o, i] -= eps
        fd = (forward(Wp, ba, one).sum() - forward(Wm, ba, one).sum()).item() / (2 * eps)
        assert abs(fd * Wa[l][o, i].item() - sf[l][o, i].item()) < 1e-8, ("synflow fd", l, o, i)


def health_checks(W0, b0):
    """No hidden ReLU unit may be dead on every example."""
    h = X
    for l, (w, b) in enumerate(zip(W0, b0)):
        h = h @ w.T + b
        if l < len(W0) - 1:
            alive = (h > 0).sum(0)
            assert (alive > 0).all(), ("dead ReLU unit", l, alive.tolist())
            h = torch.relu(h)


MIN_MARGIN = 1e-3


def flat(ts, conv=float):
    return [[conv(v) for v in t.flatten().tolist()] for t in ts]


def main():
    W0, b0 = weights()
    fd_checks(W0, b0)
    health_checks(W0, b0)
    logits = forward(W0, b0, X)
    loss = loss_fn(W0, b0).item()

    snip = snip_scores(W0, b0)
    _, Hg = grasp_parts(W0, b0)
    grasp = [-w * h for w, h in zip(W0, Hg)]
    synflow = synflow_scores(W0, b0)
    for name, sc in (("snip", snip), ("grasp", grasp), ("synflow", synflow)):
        for l, t in enumerate(sc):
            assert (t != 0).all(), ("zero score", name, l)

    ones = [torch.ones_like(w, dtype=torch.bool) for w in W0]

    def all_masks():
        sf_g, sf_g_m = synflow_iterative(W0, b0, scope="global")
        sf_l, sf_l_m = synflow_iterative(W0, b0, scope="layer")
        WHERE["sel"], WHERE["round"] = "snip_masks_layer_0.4", None
        snip_l, snip_m = mask_layer(snip, ones, 0.4)
        WHERE["sel"] = "grasp_masks_global_0.4"
        grasp_g, grasp_m = mask_global([-s for s in grasp], ones, 0.4)   # keep largest W*Hg
        return sf_g, sf_g_m, sf_l, sf_l_m, snip_l, snip_m, grasp_g, grasp_m

    sf_g, sf_g_m, sf_l, sf_l_m, snip_l, snip_m, grasp_g, grasp_m = all_masks()
    TIE_BREAK["reverse"] = True    # same selections with ties broken the other way
    rev = all_masks()
    TIE_BREAK["reverse"] = False
    names = ["synflow_masks_global", "synflow_masks_layer", "snip_masks_layer_0.4", "grasp_masks_global_0.4"]
    sensitive = {n: any(not torch.equal(a, b) for a, b in zip(m, rm))
                 for n, m, rm in zip(names, (sf_g, sf_l, snip_l, grasp_g), rev[0::2])}

    out = {
        "torch": torch.__version__,
        "network": {
            "description": "MLP 6-5-5-3, ReLU after hidden layers, biases everywhere, float64. "
                           "W_l[o][i] = 0.5*sin(1.0 + 0.7*l + 0.31*o + 0.17*i), b_l[o] = 0.5 + 0.1*cos(0.5*l + 0.3*o), "
                           "l = 1..3; x[n][i] = cos(0.4*n + 0.9*i), n < 8, i < 6; y[n] = n % 3; "
                           "loss = mean cross-entropy. Scores flattened row-major [out, in] per weight layer.",
            "sizes": SIZES,
            "weights": flat(W0), "biases": [b.tolist() for b in b0],
            "x": X.tolist(), "y": Y.tolist(),
            "grasp_temperature": 200.0,
            "synflow_final_density": 0.2, "synflow_rounds": 100,
        },
        "logits": logits.tolist(),
        "loss": loss,
        "snip": flat(snip),
        "grasp": flat(grasp),
        "synflow": flat(synflow),
        "synflow_masks_global": flat(sf_g, int),
        "synflow_masks_layer": flat(sf_l, int),
        "snip_masks_layer_0.4": flat(snip_l, int),
        "grasp_masks_global_0.4": flat(grasp_g, int),
        "synflow_round_margins_global": sf_g_m,
        "synflow_round_margins_layer": sf_l_m,
        "min_relative_margin_synflow_global": min_or_none(sf_g_m),
        "min_relative_margin_synflow_layer": min_or_none(sf_l_m),
        "min_relative_margin_snip_layer_0.4": snip_m,
        "min_relative_margin_grasp_global_0.4": grasp_m,
        "tie_break": "exact ties kept by lowest flattened row-major index (global scope: fc1, fc2, fc3 "
                     "concatenated); every zero-margin selection is listed in 'ties'",
        "ties": TIES,
        "tie_break_sensitive": sensitive,
    }
    for k, v in out.items():
        if k.startswith("min_relative_margin"):
            assert v is not None and v >= MIN_MARGIN, (k, v)
    assert not TIES and not any(sensitive.values()), (TIES, sensitive)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pruning.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({"loss": loss, "snip_fc1_first3": out["snip"][0][:3],
                      "kept": {k: [sum(r) for r in out[k]] for k in
                               ("synflow_masks_global", "synflow_masks_layer",
                                "snip_masks_layer_0.4", "grasp_masks_global_0.4")},
                      **{k: v for k, v in out.items() if k.startswith("min_relative_margin")},
                      "ties": TIES, "tie_break_sensitive": sensitive}, indent=1))


if __name__ == "__main__":
    main()
