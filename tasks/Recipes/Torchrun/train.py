#!/usr/bin/env python3
"""Distributed training of a model-zoo run with PyTorch DistributedDataParallel.

Written by `zoo export RUN_OR_RECIPE --to torchrun OUT/`. Everything run-specific (architecture, surgery, head, data,
transforms, loss, optimizer, schedule, epochs) is in config.json next to this file; the starting weights are
weights.pth. Works with PyTorch 1.13 (Debian 12's python3-torch) and PyTorch 2.x, torchvision 0.14 and later.

  torchrun --nproc_per_node=2 train.py                   # one machine, 2 processes (gloo on CPU, NCCL on GPUs)
  python3 train.py --check                               # rebuilt model vs the zoo's logits (check.pth), then exit
  python3 train.py --probe in.pth out.pth [--weights W]  # logits of the model on in.pth's "input", saved as "logits"

Rank 0 writes checkpoints/epoch-N.pth and checkpoints/last.pth (plain state dicts that load with strict=True into the
rebuilt model; `zoo import checkpoints/last.pth --like RUN/` brings them back), checkpoints/train-state.pt (optimizer,
schedule position; `--resume` continues from it) and metrics.jsonl: one line per epoch (train_loss, train_items,
items_per_second, processes and, with a validation split, valid_loss, valid_accuracy, valid_items) and, when there is
a test split, a last line with phase "test" (test_loss, test_accuracy, test_items). Validation and test count every
item exactly once whatever the number of processes.
"""
import argparse
import csv
import gzip
import json
import math
import os
import random
import struct
import sys
import time
from collections import OrderedDict

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision import transforms as T

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


def load_tensors(path):
    """torch.load of a file of tensors, safe on every supported version (weights_only where it exists)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # PyTorch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


def load_own(path):
    """torch.load of train-state.pt, which this script wrote itself (optimizer state needs the full unpickler on 1.13)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:
        return torch.load(path, map_location="cpu")


# ----- model: torchvision architecture, the run's surgery, the head -----

def surgery_module(spec):
    s = spec.strip().lower()
    simple = {"identity": nn.Identity, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if s in simple:
        return simple[s]()
    for name, cls in (("dropout2d(", nn.Dropout2d), ("dropout(", nn.Dropout)):
        if s.startswith(name) and s.endswith(")"):
            return cls(float(s[len(name):-1]))
    raise ValueError(f"surgery module '{spec}' has no PyTorch counterpart in this script")


def parent_of(model, path):
    parts = path.split(".")
    parent = model
    for i, part in enumerate(parts[:-1]):
        if part not in parent._modules:
            raise KeyError(f"surgery path '{path}': '{'.'.join(parts[:i]) or '<model>'}' has no child '{part}' in the torchvision model")
        parent = parent._modules[part]
    if parts[-1] not in parent._modules:
        raise KeyError(f"surgery path '{path}': no module '{parts[-1]}' there; children: {', '.join(parent._modules)}")
    return parent, parts[-1]


def insert(model, anchor_path, name, module, after):
    """Runs `module` right after (or before) the module at anchor_path, as the zoo's InsertAfter/InsertBefore do."""
    parent, anchor = parent_of(model, anchor_path)
    if isinstance(parent, nn.Sequential):
        items = []
        for key, child in parent._modules.items():
            if key == anchor and not after:
                items.append((name, module))
            items.append((key, child))
            if key == anchor and after:
                items.append((name, module))
        parent._modules = OrderedDict(items)
        return
    # Not a sequence: the parent's forward calls the anchor by attribute, so the new module runs from a hook on the
    # anchor. It is registered as a child of the parent (train/eval mode reaches it); it has no parameters, so the
    # state dict keys stay those of the reference architecture.
    parent.add_module(name, module)
    target = parent._modules[anchor]
    if after:
        target.register_forward_hook(lambda m, inputs, output: parent._modules[name](output))
    else:
        target.register_forward_pre_hook(lambda m, inputs: (parent._modules[name](inputs[0]),) + tuple(inputs[1:]))


def apply_surgery(model, steps):
    for s in steps:
        op, path = s["op"], s["path"]
        if op == "replace":
            parent, name = parent_of(model, path)
            setattr(parent, name, surgery_module(s["with"]))
        elif op == "remove":
            parent, name = parent_of(model, path)
            if not isinstance(parent, nn.Sequential):
                raise ValueError(f"surgery: cannot remove '{path}': its parent is not a sequence in the torchvision model")
            del parent._modules[name]
        elif op in ("insert_after", "insert_before"):
            insert(model, path, s["name"], surgery_module(s["with"]), after=op == "insert_after")
        else:
            raise ValueError(f"unknown surgery op '{op}'")


def build_model(cfg):
    m = cfg["model"]
    b = m["builder"]
    if b["kind"] == "resnet":
        from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck
        block = BasicBlock if b["block"] == "basic" else Bottleneck
        model = ResNet(block, b["layers"], groups=b["groups"], width_per_group=b["width_per_group"])
    elif b["kind"] == "torchvision":
        model = getattr(torchvision.models, b["name"])(weights=None, **b.get("kwargs", {}))
    else:
        raise ValueError(f"unknown builder {b['kind']}")
    if m["in_chans"] != 3:
        parent, name = parent_of(model, m["stem_conv"])
        c = parent._modules[name]
        setattr(parent, name, nn.Conv2d(m["in_chans"], c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups, c.bias is not None))
    apply_surgery(model, m["surgery"])
    head = m["head"]
    parent, name = parent_of(model, m["head_path"])
    if head["type"] == "linear":
        new_head = nn.Linear(head["in"], head["out"], bias=head["bias"])
    else:
        new_head = nn.Conv2d(head["in"], head["out"], head["kernel"], bias=head["bias"])
    setattr(parent, name, new_head)
    apply_surgery(model, m.get("after_head", []))
    return model


def load_weights(model, path):
    state = load_tensors(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if getattr(state, "_metadata", None) is None:
        # Files written by the zoo carry no per-module versions; they are in the current layout, which some modules
        # (MNASNet) insist on being told.
        state = OrderedDict(state)
        state._metadata = model.state_dict()._metadata
    model.load_state_dict(state, strict=True)


# ----- data -----

class Items(torch.utils.data.Dataset):
    """(loader, label) pairs with a transform; loaders open one image each."""

    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        load, label = self.items[i]
        return self.transform(load()), label


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def fashion_mnist(folder, split):
    def find(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(folder, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{folder} has no {stem}(.gz); point data.path at the Fashion-MNIST IDX files")
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    from PIL import Image
    return [((lambda a=x[i].numpy(): Image.fromarray(a)), int(y[i])) for i in range(len(y))]


def image_folder(root, classes):
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for cls in sorted(d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d))):
        if cls not in index:
            raise ValueError(f"{root}: class folder '{cls}' is not one of the run's classes {classes}")
        folder = os.path.join(root, cls)
        files = [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        for f in sorted(files):  # every image below the class folder, as the zoo's ImageFolder reads them
            items.append((opener(f), index[cls]))
    return items


def image_csv(path, image_column, label_column, classes):
    index = {c: i for i, c in enumerate(classes)}
    root = os.path.dirname(os.path.abspath(path))
    items = []
    with open(path, newline="", encoding="utf-8") as f:
        for row_no, row in enumerate(csv.DictReader(f), start=2):
            label = row[label_column].strip()
            if label not in index:
                raise ValueError(f"{path} line {row_no}: label '{label}' is not one of the run's classes {classes}")
            p = row[image_column]
            items.append((opener(p if os.path.isabs(p) else os.path.join(root, p)), index[label]))
    return items


def opener(path):
    from PIL import Image
    return lambda: Image.open(path)


def open_source(d, path, split, classes):
    if d["source"] == "fashion-mnist":
        return fashion_mnist(path, split)
    if d["source"] == "image-folder":
        return image_folder(path, classes)
    if d["source"] == "image-csv":
        return image_csv(path, d["image_column"], d["label_column"], classes)
    raise ValueError(f"data source {d['source']} is not supported by this script")


def stratified_split(labels, fraction, seed):
    """Indices (kept, held out): each class gives round(fraction x count) items, at least one when it has two."""
    rng = random.Random(seed)
    by_class = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    kept, part = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        n = int(math.floor(fraction * len(idx) + 0.5))
        if n == 0 and len(idx) >= 2 and fraction > 0:
            n = 1
        if n == len(idx) and len(idx) >= 2:
            n = len(idx) - 1
        part += idx[:n]
        kept += idx[n:]
    return sorted(kept), sorted(part)


class ToModelInput:
    """PIL image -> tensor as the zoo prepares it: value range, channel order, mean/std (grayscale when in_chans=1)."""

    def __init__(self, p, in_chans):
        self.p, self.in_chans = p, in_chans
        self.to_tensor = T.ToTensor()

    def __call__(self, img):
        p = self.p
        img = img.convert("L" if self.in_chans == 1 else "RGB")
        x = self.to_tensor(img) * p["value_range"]
        if self.in_chans == 3 and p["channel_order"] == "bgr":
            x = x.flip(0)
        mean = torch.tensor(p["mean"]).view(-1, 1, 1)
        std = torch.tensor(p["std"]).view(-1, 1, 1)
        if self.in_chans == 1:
            mean, std = mean.mean().view(1, 1, 1), std.mean().view(1, 1, 1)
        return (x - mean) / std


def pipelines(cfg):
    p, d = cfg["input"], cfg["data"]
    interp = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[p["interpolation"]]
    crop = p["crop"]
    if d["source"] == "fashion-mnist":
        # The zoo feeds Fashion-MNIST from tensors: a square bilinear resize to the image size, no crop.
        geometry = [] if crop == 28 else [T.Resize((crop, crop), interpolation=T.InterpolationMode.BILINEAR)]
    elif p["resize"] > 0:
        geometry = [T.Resize(p["resize"], interpolation=interp), T.CenterCrop(crop)]
    else:
        geometry = [T.Resize((crop, crop), interpolation=interp)]
    to_input = ToModelInput(p, cfg["model"]["in_chans"])
    evaluate = T.Compose(geometry + [to_input])
    aug = d["augment"]
    steps = []
    if "random-resized-crop" in aug:
        steps.append(T.RandomResizedCrop(crop, interpolation=interp))
    elif "random-crop" in aug:
        steps.append(T.RandomResizedCrop(crop, scale=(0.64, 1.0), ratio=(1.0, 1.0), interpolation=interp))
    else:
        steps += geometry
    if "hflip" in aug:
        steps.append(T.RandomHorizontalFlip())
    if "vflip" in aug:
        steps.append(T.RandomVerticalFlip())
    if "color-jitter" in aug:
        steps.append(T.ColorJitter(0.4, 0.4, 0.4, 0))
    if "trivial-augment" in aug:
        steps.append(T.TrivialAugmentWide())
    if "rand-augment" in aug:
        steps.append(T.RandAugment())
    steps.append(to_input)
    if "random-erasing" in aug:
        steps.append(T.RandomErasing(0.25))
    return T.Compose(steps), evaluate


def datasets(cfg):
    d, classes, seed = cfg["data"], cfg["classes"], cfg["train"]["seed"]
    train_tf, eval_tf = pipelines(cfg)
    items = open_source(d, d["path"], "train", classes)
    idx = list(range(len(items)))
    labels = [y for _, y in items]
    if 0 < d["limit"] < len(items):
        _, idx = stratified_split(labels, d["limit"] / len(items), seed)
    if d["val_path"]:
        train_idx, val_items = idx, open_source(d, d["val_path"], "test", classes)
    elif d["val_split"] > 0:
        kept, part = stratified_split([labels[i] for i in idx], d["val_split"], seed)
        train_idx, val_items = [idx[i] for i in kept], [items[idx[i]] for i in part]
    else:
        train_idx, val_items = idx, []
    test_items = []
    if d["test_path"]:
        test_items = open_source(d, d["test_path"], "test", classes)
    elif d["source"] == "fashion-mnist":
        test_items = open_source(d, d["path"], "test", classes)
    train = Items([items[i] for i in train_idx], train_tf)
    return train, Items(val_items, eval_tf), Items(test_items, eval_tf)


# ----- optimizer and schedule, as the zoo's Learner does them -----

def cosine_anneal(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class Schedule:
    """Learning-rate factor (and momentum) by optimizer step: one-cycle, cosine, step, plateau, constant."""

    def __init__(self, kind, total_steps, steps_per_epoch, epochs, pct_start=0.3, div=25.0, final_div=1e4, warmup=0.25):
        self.kind, self.total, self.per_epoch, self.epochs = kind, max(1, total_steps), max(1, steps_per_epoch), epochs
        self.pct_start, self.div, self.final_div, self.warmup = pct_start, div, final_div, warmup
        self.plateau_factor, self.best, self.bad = 1.0, None, 0

    def _where(self, step):
        end1, end2 = self.pct_start * self.total - 1, self.total - 1
        step = min(step, self.total - 1)
        if step <= end1:
            return (1.0 if end1 <= 0 else step / end1), True
        span = end2 - end1
        return (1.0 if span <= 0 else (step - end1) / span), False

    def factor(self, step):
        if self.kind == "one-cycle":
            initial = 1 / self.div
            pct, rising = self._where(step)
            return cosine_anneal(initial, 1, pct) if rising else cosine_anneal(1, initial / self.final_div, pct)
        if self.kind == "cosine":
            warm = int(round(self.warmup * self.total))
            if step < warm:
                return (step + 1) / warm
            rest = max(1, self.total - warm)
            return cosine_anneal(1, 0.0, min(1.0, (step - warm) / rest))
        if self.kind == "step":
            return 0.1 ** (step // self.per_epoch // max(1, self.epochs // 3))
        if self.kind == "plateau":
            return self.plateau_factor
        return 1.0

    def momentum(self, step):
        if self.kind != "one-cycle":
            return None
        pct, rising = self._where(step)
        return cosine_anneal(0.95, 0.85, pct) if rising else cosine_anneal(0.85, 0.95, pct)

    def epoch_ended(self, valid_loss):
        if self.kind != "plateau" or valid_loss is None:
            return
        if self.best is None or valid_loss < self.best * (1 - 1e-4):
            self.best, self.bad = valid_loss, 0
        else:
            self.bad += 1
            if self.bad > 2:
                self.plateau_factor, self.bad = self.plateau_factor * 0.1, 0


def param_groups(model, cfg, peaks):
    """The zoo's groups (stem ... head), each split into decayed weights and undecayed norms/biases; frozen ones left out."""
    named = dict(model.named_parameters())
    groups = []
    for gi, (gname, names) in enumerate(cfg["model"]["param_groups"]):
        decay = [named[n] for n in names if n in named and named[n].requires_grad and named[n].dim() > 1]
        no_decay = [named[n] for n in names if n in named and named[n].requires_grad and named[n].dim() <= 1]
        if decay:
            groups.append({"params": decay, "weight_decay": cfg["train"]["weight_decay"], "peak": peaks[gi], "name": gname})
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0, "peak": peaks[gi], "name": gname + ".no_decay"})
    return groups


def spread(kind, lo, hi, n):
    if kind == "single":
        return [hi] * n
    if kind == "slice-hi":  # fastai slice(hi): the head at hi, the rest at hi/10
        return [hi if i == n - 1 else hi / 10 for i in range(n)]
    if n == 1:
        return [hi]
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]


def make_optimizer(groups, t):
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=1e-3, momentum=t["momentum"])
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def set_trainable(model, cfg, head_only):
    head = cfg["model"]["head_path"]
    for name, p in model.named_parameters():
        p.requires_grad = (not head_only) or name == head or name.startswith(head + ".")


def frozen_norms_eval(model):
    """Frozen BatchNorm layers keep their running statistics (the zoo's FreezeStats policy)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters())
            if ps and all(not p.requires_grad for p in ps):
                m.eval()


def phases(cfg):
    """The fits the recipe's train.mode makes: (name, epochs, head_only, schedule kind, lr spread, lo, hi, one-cycle args)."""
    t = cfg["train"]
    lr, mode = t["lr"], t["mode"]
    if mode == "linear-probe":
        return [("linear-probe", t["epochs"], True, t["schedule"], "single", lr, lr, dict(pct_start=max(t["warmup"], 1e-3)))]
    if mode == "fine-tune":
        kind = "slice" if t["lr_spread"] > 1 else "single"
        return [("fine-tune", t["epochs"], False, t["schedule"], kind, lr / t["lr_spread"], lr, dict(pct_start=max(t["warmup"], 1e-3)))]
    out = []
    if t["freeze_epochs"] > 0:
        out.append(("frozen", t["freeze_epochs"], True, "one-cycle", "slice-hi", lr, lr, dict(pct_start=0.99, div=25, final_div=1e5)))
    half = lr / 2
    out.append(("unfrozen", t["epochs"], False, "one-cycle", "slice", half / t["lr_spread"], half, dict(pct_start=max(t["warmup"], 1e-3), div=5, final_div=1e5)))
    return out


# ----- distributed loop -----

def setup_distributed():
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world, local = dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, world, local = 0, 1, 0
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world, device


def all_sum(values, device, world):
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(t)
    return t.tolist()


def shard(n, world, rank):
    """Indices rank, rank + world, ... of n items: every item on exactly one rank, none repeated (DistributedSampler
    pads the last shard with repeated items so that all ranks have as many, which would count those twice)."""
    return list(range(rank, n, world))


def evaluate(model, data, batch, device, world, rank, loss_fn):
    """Mean cross-entropy and accuracy over every item of `data` counted once: each rank evaluates its own shard (the
    shards may differ in size by one) and the sums of loss, correct and count are all-reduced; items is that count."""
    if len(data) == 0:
        return None
    part = torch.utils.data.Subset(data, shard(len(data), world, rank)) if world > 1 else data
    # The unwrapped model, not the DDP wrapper: ranks with fewer batches must not wait in a collective of DDP's forward.
    loader = torch.utils.data.DataLoader(part, batch_size=batch, shuffle=False, num_workers=0)
    model.eval()
    loss_sum = correct = count = 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(1) == y).sum())
            count += len(y)
    loss_sum, correct, count = all_sum([loss_sum, correct, count], device, world)
    return {"loss": loss_sum / max(count, 1), "accuracy": correct / max(count, 1), "items": int(count)}


def make_loss(t, train_set, num_classes, device):
    """Cross-entropy as the zoo's Loss: label smoothing, optional class weights, the plain mean of the items' losses."""
    weight = None
    if t.get("class_weights", "none") == "balanced":
        counts = [0] * num_classes
        for _, label in train_set.items:
            counts[label] += 1
        n = sum(counts)
        weight = torch.tensor([n / (num_classes * c) if c > 0 else 0.0 for c in counts], dtype=torch.float32, device=device)
    per_item = nn.CrossEntropyLoss(weight=weight, label_smoothing=t["label_smoothing"], reduction="none")
    return lambda logits, y: per_item(logits, y).mean()


def train(cfg, args):
    rank, world, device = setup_distributed()
    torch.manual_seed(cfg["train"]["seed"])
    t = cfg["train"]
    epochs_override = args.epochs
    model = build_model(cfg)
    load_weights(model, args.weights)
    model.to(device)
    train_set, val_set, test_set = datasets(cfg)
    global_batch = args.batch_size or cfg["data"]["batch_size"]
    batch = max(1, global_batch // world)
    loss_fn = make_loss(t, train_set, len(cfg["classes"]), device)
    out = os.path.abspath(args.output)
    ckpt_dir = os.path.join(out, "checkpoints")
    if rank == 0:
        os.makedirs(ckpt_dir, exist_ok=True)
        print(f"train.py: {cfg['model']['catalog']} on {device}, {world} process(es), global batch {batch * world} ({batch} per process), "
              f"{len(train_set)} train / {len(val_set)} validation / {len(test_set)} test items", flush=True)
    sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=t["seed"], drop_last=True) if world > 1 else None
    generator = torch.Generator()
    generator.manual_seed(t["seed"])
    drop_last = len(train_set) > global_batch
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, sampler=sampler, shuffle=sampler is None, generator=generator if sampler is None else None,
                                         num_workers=args.workers, drop_last=drop_last, persistent_workers=args.workers > 0)
    resume = load_own(os.path.join(ckpt_dir, "train-state.pt")) if args.resume and os.path.exists(os.path.join(ckpt_dir, "train-state.pt")) else None
    if resume is not None:
        model.load_state_dict(resume["model"], strict=True)
    metrics = open(os.path.join(out, "metrics.jsonl"), "a" if resume is not None else "w") if rank == 0 else None
    global_epoch = 0
    for phase_no, (phase, epochs, head_only, kind, lr_kind, lo, hi, oc) in enumerate(phases(cfg)):
        if epochs_override is not None:
            epochs = epochs_override
        if resume is not None and phase_no < resume["phase"]:
            global_epoch += epochs
            continue
        set_trainable(model, cfg, head_only)
        peaks = spread(lr_kind, lo, hi, len(cfg["model"]["param_groups"]))
        groups = param_groups(model, cfg, peaks)
        optimizer = make_optimizer(groups, t)
        # A new DDP wrapper per phase: DDP fixes the set of trainable parameters when it is built.
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model
        steps_per_epoch = len(loader)
        schedule = Schedule(kind, steps_per_epoch * epochs, steps_per_epoch, epochs, warmup=t["warmup"], **oc)
        step, start_epoch = 0, 0
        if resume is not None and phase_no == resume["phase"]:
            optimizer.load_state_dict(resume["optimizer"])
            step, start_epoch = resume["step"], resume["epoch"]
            schedule.plateau_factor = resume.get("plateau_factor", 1.0)
            resume = None
        for epoch in range(start_epoch, epochs):
            if sampler is not None:
                sampler.set_epoch(global_epoch + epoch)
            net.train()
            if head_only:
                frozen_norms_eval(model)
            started = time.time()
            loss_sum = items = 0.0
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                factor = schedule.factor(step)
                mom = schedule.momentum(step)
                for g in optimizer.param_groups:
                    g["lr"] = g["peak"] * factor
                    if mom is not None:
                        if "betas" in g:
                            g["betas"] = (mom, g["betas"][1])
                        elif t["momentum"] > 0:
                            g["momentum"] = mom
                loss = loss_fn(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t["clip_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], t["clip_grad_norm"])
                optimizer.step()
                step += 1
                loss_sum += float(loss) * len(y)
                items += len(y)
            loss_sum, items = all_sum([loss_sum, items], device, world)
            seconds = time.time() - started
            val = evaluate(model, val_set, batch, device, world, rank, loss_fn)
            schedule.epoch_ended(val["loss"] if val else None)
            record = {"phase": phase, "epoch": global_epoch + epoch + 1, "train_loss": loss_sum / max(items, 1), "train_items": int(items),
                      "seconds": round(seconds, 3), "items_per_second": round(items / max(seconds, 1e-9), 2), "processes": world}
            if val:
                record.update({"valid_loss": val["loss"], "valid_accuracy": val["accuracy"], "valid_items": val["items"]})
            if rank == 0:
                state = model.state_dict()
                torch.save(state, os.path.join(ckpt_dir, f"epoch-{global_epoch + epoch + 1}.pth"))
                torch.save(state, os.path.join(ckpt_dir, "last.pth"))
                torch.save({"model": state, "optimizer": optimizer.state_dict(), "phase": phase_no, "epoch": epoch + 1, "step": step,
                            "plateau_factor": schedule.plateau_factor}, os.path.join(ckpt_dir, "train-state.pt"))
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                print(json.dumps(record), flush=True)
        global_epoch += epochs
        del net
    test = evaluate(model, test_set, batch, device, world, rank, loss_fn)
    if rank == 0:
        if test:
            record = {"phase": "test", "test_loss": test["loss"], "test_accuracy": test["accuracy"], "test_items": test["items"], "processes": world}
            metrics.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        metrics.close()
        print(f"train.py: checkpoints in {ckpt_dir}; bring them back with: zoo import {os.path.join(ckpt_dir, 'last.pth')} --like {HERE}", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def logits_of(cfg, weights, x):
    model = build_model(cfg)
    load_weights(model, weights)
    model.eval()
    with torch.no_grad():
        return model(x)


def main():
    ap = argparse.ArgumentParser(description="DDP training of an exported model-zoo run (see README.md).")
    ap.add_argument("--config", default=os.path.join(HERE, "config.json"))
    ap.add_argument("--weights", default=os.path.join(HERE, "weights.pth"), help="starting weights (a state dict)")
    ap.add_argument("--output", default=HERE, help="folder for checkpoints/ and metrics.jsonl")
    ap.add_argument("--epochs", type=int, default=None, help="override the epochs of every training phase")
    ap.add_argument("--batch-size", type=int, default=None, help="override the global batch (split across processes)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per training process")
    ap.add_argument("--resume", action="store_true", help="continue from checkpoints/train-state.pt")
    ap.add_argument("--check", action="store_true", help="compare the rebuilt model's logits with the zoo's (check.pth) and exit")
    ap.add_argument("--probe", nargs=2, metavar=("IN", "OUT"), help="save the logits of IN's 'input' tensor to OUT and exit")
    args = ap.parse_args()
    with open(args.config, encoding="utf-8") as f:
        cfg = json.load(f)
    if args.probe:
        x = load_tensors(args.probe[0])["input"]
        torch.save({"logits": logits_of(cfg, args.weights, x).contiguous()}, args.probe[1])
        return 0
    if args.check:
        ref = load_tensors(os.path.join(HERE, "check.pth"))
        got = logits_of(cfg, args.weights, ref["input"])
        diff = float((got - ref["logits"]).abs().max())
        scale = max(1.0, float(ref["logits"].abs().max()))
        ok = diff <= 1e-4 * scale
        print(f"check: max |PyTorch - zoo| logit difference {diff:.3g} (tolerance {1e-4 * scale:.3g}): {'OK' if ok else 'MISMATCH'}")
        if float((ref["logits"] - ref["logits"][:1]).abs().max()) < 1e-6:
            print("check: note: the zoo's logits are the same for every input of the batch (random or degenerate weights), so this check proves little")
        return 0 if ok else 1
    train(cfg, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
