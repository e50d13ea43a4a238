#!/usr/bin/python3
"""Pillow side of the decode benchmark: decode + Resize(256, bilinear) + CenterCrop(224) + ToTensor/Normalize (numpy),
one thread, as torchvision's PIL path does it. Prints images/s of one timed pass (after one untimed warm-up pass).
With a process count > 1 the images are spread over a multiprocessing pool (one thread each), as a PyTorch DataLoader
with that many workers would; the pool is started before the clock.
Usage: pil_decode.py <dir> <repeats> [draft|plain] [processes]"""
import glob, os, sys, time
import numpy as np
from PIL import Image
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.jpg")))
repeats = int(sys.argv[2])
draft = len(sys.argv) > 3 and sys.argv[3] == "draft"
datas = [open(f, "rb").read() for f in files]
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
import io
def one(b):
    im = Image.open(io.BytesIO(b))
    if draft:
        im.draft("RGB", (256, 256))
    im = im.convert("RGB")
    w, h = im.size
    if w <= h: nw, nh = 256, int(256 * h / w)
    else: nw, nh = int(256 * w / h), 256
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    im = im.crop((l, t, l + 224, t + 224))
    x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (x - mean) / std
procs = int(sys.argv[4]) if len(sys.argv) > 4 else 1
def shape(b): return one(b).shape
if __name__ == "__main__":
    if procs <= 1:
        for b in datas: one(b)
        t0 = time.perf_counter()
        for _ in range(repeats):
            for b in datas: one(b)
        dt = time.perf_counter() - t0
    else:
        import multiprocessing as mp
        with mp.Pool(procs) as pool:
            pool.map(shape, datas * procs)
            t0 = time.perf_counter()
            pool.map(shape, datas * repeats, chunksize=1)
            dt = time.perf_counter() - t0
    print(f"{repeats * len(datas) / dt:.2f}")
