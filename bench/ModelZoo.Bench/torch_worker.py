#!/usr/bin/python3
"""Python PyTorch side of the side-by-side benchmarks (ModelZoo.Bench train/infer/soak).

Worker mode (default): reads one JSON command per line on stdin, answers one JSON line on stdout, so the C# harness
can alternate its own arms with this process round by round:
  {"op": "init", "threads": 2}                                   -> versions and thread settings
  {"op": "setup", "key": k, "model": "resnet18"|"resnet50"|"minilm", "mode": "train"|"infer", "batch": 16,
   "size": 224, "seq": 128, "lr": 0.001}                         -> parameter count
  {"op": "run", "key": k, "steps": n}                            -> {"times": [seconds of each step]}
  {"op": "drop", "key": k}, {"op": "quit"}
Soak mode: torch_worker.py soak <threads> <size> <batch> <steps> <every> [model]  (train steps, RSS every N steps).

Models: torchvision's resnet18/resnet50 (random init, 1000 classes); "minilm" is a BERT encoder written here in plain
torch.nn with all-MiniLM-L6-v2's dimensions (transformers is not installed): the same modules and operations as the
zoo's BertModel (embeddings + LayerNorm, 6 layers of q/k/v attention, GELU FFN, post-LayerNorm, dropout 0.1),
mean pooling over the mask, a 2-class linear head. Train step = forward, cross-entropy, zero_grad, backward,
AdamW(lr, weight_decay=0.01) step, loss.item(); inference = eval mode under no_grad."""
import json
import os, math, resource, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class Embeddings(nn.Module):
    def __init__(s, vocab, hidden, positions):
        super().__init__()
        s.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        s.position_embeddings = nn.Embedding(positions, hidden)
        s.token_type_embeddings = nn.Embedding(2, hidden)
        s.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        s.dropout = nn.Dropout(0.1)

    def forward(s, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        e = s.word_embeddings(ids) + s.token_type_embeddings(torch.zeros_like(ids)) + s.position_embeddings(pos)
        return s.dropout(s.LayerNorm(e))


class Layer(nn.Module):
    def __init__(s, hidden, heads, ffn):
        super().__init__()
        s.heads = heads
        s.query, s.key, s.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        s.attn_dropout = nn.Dropout(0.1)
        s.attn_out, s.attn_ln, s.attn_out_dropout = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12), nn.Dropout(0.1)
        s.intermediate = nn.Linear(hidden, ffn)
        s.out, s.out_ln, s.out_dropout = nn.Linear(ffn, hidden), nn.LayerNorm(hidden, eps=1e-12), nn.Dropout(0.1)

    def forward(s, x, mask):
        b, t, h = x.shape
        d = h // s.heads
        split = lambda y: y.view(b, -1, s.heads, d).transpose(1, 2)
        scores = split(s.query(x)).matmul(split(s.key(x)).transpose(-1, -2)).div_(math.sqrt(d)).add_(mask)
        ctx = s.attn_dropout(scores.softmax(-1)).matmul(split(s.value(x))).transpose(1, 2).reshape(b, t, h)
        a = s.attn_ln(s.attn_out_dropout(s.attn_out(ctx)) + x)
        return s.out_ln(s.out_dropout(s.out(F.gelu(s.intermediate(a)))) + a)


class MiniLM(nn.Module):
    def __init__(s, vocab=30522, hidden=384, layers=6, heads=12, ffn=1536, positions=512, classes=2):
        super().__init__()
        s.embeddings = Embeddings(vocab, hidden, positions)
        s.layers = nn.ModuleList([Layer(hidden, heads, ffn) for _ in range(layers)])
        s.dropout = nn.Dropout(0.1)
        s.classifier = nn.Linear(hidden, classes)
        for m in s.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, 0.02)
                if isinstance(m, nn.Linear): nn.init.zeros_(m.bias)

    def forward(s, ids):
        keep = ids.ne(0).to(torch.float32)
        mask = (1.0 - keep)[:, None, None, :] * torch.finfo(torch.float32).min
        x = s.embeddings(ids)
        for layer in s.layers: x = layer(x, mask)
        m = keep.unsqueeze(-1)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return s.classifier(s.dropout(pooled))


def build(cmd):
    torch.manual_seed(0)
    name, batch = cmd["model"], cmd["batch"]
    if name == "minilm":
        model = MiniLM()
        x = torch.randint(1000, 30000, (batch, cmd.get("seq", 128)))
        y = torch.randint(0, 2, (batch,))
    else:
        model = getattr(torchvision.models, name)()
        size = cmd.get("size", 224)
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 1000, (batch,))
    if cmd["mode"] == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cmd.get("lr", 1e-3), weight_decay=0.01)

        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x).sum().item()
    return model, step


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024.0
    return float("nan")


def soak(threads, size, batch, steps, every, model="resnet18"):
    """Same run as the C# soak: a torchvision model (10 classes), a fresh random batch every step, AdamW, RSS every N steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, model)(num_classes=10)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    rows, t0 = [], time.perf_counter()
    for i in range(1, steps + 1):
        x = torch.randn(batch, 3, size, size, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if i % every == 0 or i == 1:
            rows.append({"step": i, "rss_mb": round(rss_mb(), 1), "s": round(time.perf_counter() - t0, 2)})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"rows": rows, "peak_rss_mb": round(peak, 1), "torch": torch.__version__}))


def loaded_blas():
    """The BLAS library this process actually mapped (Debian's torch resolves libblas.so.3 at load time)."""
    torch.ones(4, 4) @ torch.ones(4, 4)
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1]})
    return ", ".join(os.path.basename(os.path.dirname(l)) + "/" + os.path.basename(l) for l in libs) or "none found"


def serve():
    arms = {}
    out = sys.stdout
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "init":
            torch.set_num_threads(cmd["threads"])
            ans = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": sys.version.split()[0],
                   "threads": torch.get_num_threads(), "mkl": torch.backends.mkl.is_available(),
                   "mkldnn": torch.backends.mkldnn.is_available(), "blas": loaded_blas()}
        elif op == "setup":
            model, step = build(cmd)
            arms[cmd["key"]] = step
            ans = {"params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
        elif op == "run":
            step, times = arms[cmd["key"]], []
            for _ in range(cmd["steps"]):
                t = time.perf_counter()
                step()
                times.append(time.perf_counter() - t)
            ans = {"times": times, "rss_mb": rss_mb()}
        elif op == "drop":
            arms.pop(cmd["key"], None)
            ans = {}
        elif op == "quit":
            break
        else:
            ans = {"error": "unknown op " + op}
        out.write(json.dumps(ans) + "\n")
        out.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "soak":
        soak(*[int(a) for a in sys.argv[2:7]], *sys.argv[7:8])
    else:
        serve()
