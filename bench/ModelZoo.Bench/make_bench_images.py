#!/usr/bin/python3
"""Writes the decode benchmark's JPEGs (quality 90, 4:2:0) from real photos shipped in Debian's python3-skimage
(CC0 / public domain: chelsea, coffee, rocket, astronaut, motorcycle_left, hubble_deep_field, retina).
  small/: each photo resized (LANCZOS) to 500x375 (portrait/landscape kept)   -- like ImageNet's typical 500x375
  large/: each photo resized (LANCZOS) to 1920x1280 -- most sources are smaller, so these are upscaled and carry less
          fine detail than camera originals of that size.
Usage: make_bench_images.py <skimage data dir> <out dir>"""
import os, sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg"]
for sub, size in (("small", (500, 375)), ("large", (1920, 1280))):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    for n in names:
        p = os.path.join(src, n)
        try:
            im = Image.open(p).convert("RGB")
        except OSError as e:
            print("skip", n, e, file=sys.stderr)
            continue
        w, h = size if im.width >= im.height else (size[1], size[0])
        im.resize((w, h), Image.LANCZOS).save(os.path.join(out, sub, os.path.splitext(n)[0] + ".jpg"), quality=90)
print("ok")
