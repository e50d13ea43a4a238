#!/usr/bin/env python3
"""Builds the quickstarts' evaluation set from data that Debian packages ship (see make.sh, which installs them).

Every set is written under OUT/<name>/ in the layout a user would hand to `zoo quickstart images|text`, in several
formats so every reader is exercised. Seeds are fixed: the same package versions give the same files.

Image sets
  glyphs16        26 letters rendered from every installed font with Latin capitals, 16-bit grey PNG, 28-40 px,
                  one folder per class (image-folder)
  letters-13k     a-z lower case from the same fonts, three renderings each, 8-bit grey 28 px PNG (image-folder, ~13k)
  icons-rgba      RGBA PNG icons of five Debian icon themes, by context (actions, apps, devices, ...), each icon at one
                  of its sizes (16-256 px); train/ and test/ folders; naturally imbalanced
  sk-digits       scikit-learn's 8x8 digits upscaled to 32 px, grey PNG, listed in labels.csv (image-csv)
  digits-imbalanced  digits 0-9 in colour on coloured backgrounds, 48 px RGB PNG bytes in a Parquet file (Hugging Face
                  layout), class sizes from 600 down to 12 (50:1)
  wallpaper-crops crops of the Plasma wallpapers (photos and renderings, 5120x2880), one class per wallpaper, saved as
                  JPEG with a long side of 600-4000 px
Text sets
  debian-sections one-line package summaries -> Debian section (30 sections, 200 each), CSV
  fortunes-en     English fortune cookies by category (14), JSON Lines
  fortunes-de     German fortune cookies by category (20), Parquet
  fortunes-es     Spanish sayings: refranes vs sabiduria (2 classes), TSV
  manpages        manual pages (roff stripped, up to 30,000 characters) -> section 1/2/3/5/7/8, JSON Lines

Parquet files are written by ToParquet.cs (Parquet.Net, as the readers use) from a JSON Lines staging file.
"""
import argparse
import csv
import gzip
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SEED = 18


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------------------- fonts
FONT_DIRS = ["/usr/share/fonts", "/usr/share/texmf/fonts/opentype", "/usr/share/texlive/texmf-dist/fonts/opentype"]


def fonts_with(chars):
    """Font files (sorted) whose cmap has every character of `chars`, first face of collections."""
    from fontTools.ttLib import TTFont
    found = []
    for root in FONT_DIRS:
        for p in sorted(Path(root).rglob("*")) if os.path.isdir(root) else []:
            if p.suffix.lower() not in (".ttf", ".otf"):
                continue
            try:
                f = TTFont(str(p), lazy=True, fontNumber=0)
                cmap = f.getBestCmap() or {}
                f.close()
            except Exception:
                continue
            if all(ord(c) in cmap for c in chars):
                found.append(str(p))
    return sorted(set(found))


def render_glyph(font_path, ch, side, rng, bits16=False):
    """One glyph on a `side`-px canvas: random size (55-90 % of the side), offset, rotation (+-10 deg), contrast and noise."""
    big = side * 4
    img = Image.new("L", (big, big), 0)
    size = int(big * rng.uniform(0.55, 0.9))
    font = ImageFont.truetype(font_path, size)
    d = ImageDraw.Draw(img)
    l, t, r, b = d.textbbox((0, 0), ch, font=font)
    w, h = r - l, b - t
    scale = min(1.0, big * 0.92 / max(w, h, 1))
    if scale < 1:
        font = ImageFont.truetype(font_path, max(4, int(size * scale)))
        l, t, r, b = d.textbbox((0, 0), ch, font=font)
        w, h = r - l, b - t
    slack_x, slack_y = max(0, big - w), max(0, big - h)
    x = int(slack_x * rng.uniform(0.2, 0.8)) - l
    y = int(slack_y * rng.uniform(0.2, 0.8)) - t
    d.text((x, y), ch, fill=255, font=font)
    img = img.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR)
    img = img.resize((side, side), Image.LANCZOS)
    a = np.asarray(img, dtype=np.float64) / 255.0
    bg, fg = rng.uniform(0.65, 1.0), rng.uniform(0.0, 0.35)
    if rng.random() < 0.3:
        bg, fg = fg, bg  # light on dark
    v = bg + (fg - bg) * a + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 0.03, a.shape)
    v = np.clip(v, 0, 1)
    if bits16:
        return Image.fromarray((v * 65535).round().astype(np.uint16))  # mode I;16
    return Image.fromarray((v * 255).round().astype(np.uint8), "L")


def make_glyphs16(out, fonts_per_class=None):
    rng = random.Random(SEED)
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    fonts = fonts_with(chars)
    if fonts_per_class:
        fonts = sorted(rng.sample(fonts, min(fonts_per_class, len(fonts))))
    n = 0
    for ch in chars:
        folder = out / ch
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(fonts):
            side = rng.randint(28, 40)
            render_glyph(f, ch, side, rng, bits16=True).save(folder / f"{i:03d}.png")
            n += 1
    log(f"glyphs16: {n} 16-bit grey PNGs, 26 classes, {len(fonts)} fonts")


def make_letters(out, variants=3):
    rng = random.Random(SEED + 1)
    chars = "abcdefghijklmnopqrstuvwxyz"
    fonts = fonts_with(chars)
    n = 0
    for ch in chars:
        folder = out / ch
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(fonts):
            for v in range(variants):
                render_glyph(f, ch, 28, rng).save(folder / f"{i:03d}-{v}.png")
                n += 1
    log(f"letters-13k: {n} grey 28 px PNGs, 26 classes, {len(fonts)} fonts x {variants}")


# ---------------------------------------------------------------------------------------------------------- icons
ICON_THEMES = ["/usr/share/icons/Adwaita", "/usr/share/icons/mate", "/usr/share/icons/Tango", "/usr/share/icons/gnome", "/usr/share/icons/oxygen/base"]
ICON_CONTEXTS = ["actions", "apps", "categories", "devices", "emblems", "emotes", "mimetypes", "places", "status"]


def make_icons(out, cap=500, test_fraction=0.2):
    rng = random.Random(SEED + 2)
    # (theme, context, name) -> the PNG files of its sizes (>= 16 px)
    icons = {}
    for theme in ICON_THEMES:
        for p in sorted(Path(theme).rglob("*.png")):
            parts = p.relative_to(theme).parts
            if len(parts) != 3:
                continue
            size, ctx, name = parts
            m = re.match(r"(\d+)x\1", size)
            if ctx not in ICON_CONTEXTS or not m or int(m.group(1)) < 16 or name.endswith("-symbolic.png"):
                continue
            icons.setdefault((Path(theme).name if Path(theme).name != "base" else "oxygen", ctx, name), []).append(p)
    per_ctx = {}
    for key in sorted(icons):
        per_ctx.setdefault(key[1], []).append(key)
    n = {"train": 0, "test": 0}
    for ctx in ICON_CONTEXTS:
        keys = per_ctx.get(ctx, [])
        rng.shuffle(keys)
        keys = keys[:cap]
        n_test = max(1, round(len(keys) * test_fraction))
        for i, key in enumerate(keys):
            part = "test" if i < n_test else "train"
            src = rng.choice(sorted(icons[key]))
            img = Image.open(src).convert("RGBA")
            folder = out / part / ctx
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{key[0]}-{Path(key[2]).stem}.png")
            n[part] += 1
    log(f"icons-rgba: {n['train']} train + {n['test']} test RGBA PNGs, {len(ICON_CONTEXTS)} classes")


# ---------------------------------------------------------------------------------------------------------- digits
def make_sk_digits(out):
    from sklearn.datasets import load_digits
    d = load_digits()
    (out / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (x, y) in enumerate(zip(d.images, d.target)):
        img = Image.fromarray((x / 16.0 * 255).round().astype(np.uint8), "L").resize((32, 32), Image.BILINEAR)
        name = f"img/{i:04d}.png"
        img.save(out / name)
        rows.append((name, f"digit-{y}"))
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    log(f"sk-digits: {len(rows)} grey 32 px PNGs listed in labels.csv, 10 classes")


def make_digits_imbalanced(out, staging):
    rng = random.Random(SEED + 3)
    fonts = fonts_with("0123456789")
    counts = [round(600 * (12 / 600) ** (k / 9)) for k in range(10)]  # 600 ... 12, geometric
    rows = []
    for k, c in enumerate(counts):
        for _ in range(c):
            f = rng.choice(fonts)
            g = np.asarray(render_glyph(f, str(k), 48, rng), dtype=np.float64) / 255.0  # 1 = background level
            fg = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64)
            bg = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64)
            while np.abs(fg - bg).sum() < 200:
                bg = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64)
            rgb = (g[..., None] * bg + (1 - g[..., None]) * fg).clip(0, 255).round().astype(np.uint8)
            import io
            buf = io.BytesIO()
            Image.fromarray(rgb, "RGB").save(buf, "PNG")
            rows.append({"bytes": buf.getvalue().hex(), "label": k})
    rng.shuffle(rows)
    staging.parent.mkdir(parents=True, exist_ok=True)
    with open(staging, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    log(f"digits-imbalanced: {len(rows)} RGB 48 px PNGs staged for Parquet, class sizes {counts}")


# ---------------------------------------------------------------------------------------------------------- photos
def make_wallpapers(out, classes=12, per_class=20):
    rng = random.Random(SEED + 4)
    walls = []
    for meta in sorted(Path("/usr/share/wallpapers").glob("*/contents/images")):
        files = sorted(meta.glob("*.*"), key=lambda p: -p.stat().st_size)
        big = [p for p in files if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
        if big:
            walls.append((meta.parent.parent.name, big[0]))
    walls = sorted(rng.sample(walls, min(classes, len(walls))))
    n = 0
    for name, src in walls:
        img = Image.open(src).convert("RGB")
        W, H = img.size
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            frac = rng.uniform(0.3, 0.7)
            aspect = rng.uniform(0.6, 1.6)
            w = min(W, int(W * frac * aspect ** 0.5))
            h = min(H, int(H * frac / aspect ** 0.5))
            x, y = rng.randint(0, W - w), rng.randint(0, H - h)
            crop = img.crop((x, y, x + w, y + h))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            long_side = rng.randint(600, 4000)
            s = long_side / max(w, h)
            crop = crop.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
            crop.save(folder / f"{i:02d}.jpg", quality=88)
            n += 1
    log(f"wallpaper-crops: {n} JPEG crops of {len(walls)} wallpapers, long side 600-4000 px")


# ---------------------------------------------------------------------------------------------------------- text
def read_fortunes(path):
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    items = [t.strip("\n") for t in re.split(r"\n%\n", "\n" + text + "\n")]
    return [t for t in items if t.strip()]


def capped(items_by_class, cap, rng):
    rows = []
    for label in sorted(items_by_class):
        items = sorted(set(items_by_class[label]))
        rng.shuffle(items)
        rows += [(t, label) for t in items[:cap]]
    rng.shuffle(rows)
    return rows


def make_fortunes_en(out):
    rng = random.Random(SEED + 5)
    cats = ["people", "definitions", "computers", "songs-poems", "politics", "work", "science", "men-women", "zippy",
            "platitudes", "art", "wisdom", "linux", "startrek"]
    by = {c: read_fortunes(f"/usr/share/games/fortunes/{c}") for c in cats}
    rows = capped(by, 300, rng)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "fortunes-en.jsonl", rows)
    log(f"fortunes-en: {len(rows)} texts, {len(cats)} classes (JSON Lines)")


def write_jsonl(path, rows):
    """(text, label) rows as JSON Lines with "text" and "label" keys."""
    with open(path, "w") as f:
        for t, l in rows:
            f.write(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n")


def make_fortunes_de(staging):
    rng = random.Random(SEED + 6)
    root = Path("/usr/share/games/fortunes/de")
    by = {}
    for p in sorted(root.glob("*.u8")):
        items = read_fortunes(p)
        if len(items) >= 80 and p.stem != "channel-debian.fortunes":
            by[p.stem] = items
    rows = capped(by, 250, rng)
    staging.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(staging, rows)
    log(f"fortunes-de: {len(rows)} texts, {len(by)} classes (staged for Parquet)")


def make_fortunes_es(out):
    rng = random.Random(SEED + 7)
    root = Path("/usr/share/games/fortunes/es")
    # Every "sabiduria" item ends in an attribution ("-- Author") and no "refranes" item does: cut them, or the two
    # classes are told apart by that line alone.
    def cut(t):
        return re.sub(r"\s*(\n|\s--)\s*--?\s.*\Z|\s*\n\s*--.*\Z", "", t.rstrip(), flags=re.S).strip()
    by = {k: [c for c in (cut(t) for t in read_fortunes(root / f"{k}.fortunes.u8")) if c] for k in ("refranes", "sabiduria")}
    rows = [(t, "refranes") for t in sorted(set(by["refranes"]))]
    rng.shuffle(rows)
    rows = rows[:1200] + [(t, "sabiduria") for t in sorted(set(by["sabiduria"]))]
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "fortunes-es.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["text", "label"])
        w.writerows(rows)
    log(f"fortunes-es: {len(rows)} texts, 2 classes (TSV)")


def make_debian_sections(out, classes=30, cap=200):
    rng = random.Random(SEED + 8)
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    by = {}
    for stanza in dump.split("\n\n"):
        fields, cur = {}, None
        for line in stanza.split("\n"):
            if line.startswith(" ") and cur:
                fields[cur] += "\n" + line[1:]
            elif ":" in line:
                cur, _, v = line.partition(":")
                fields[cur] = v.strip()
        desc, section = fields.get("Description"), fields.get("Section")
        if not desc or not section:
            continue
        section = section.split("/")[-1]
        lines = [("" if l.strip() == "." else l) for l in desc.split("\n")]
        by.setdefault(section, []).append("\n".join(lines).strip())
    top = sorted(by, key=lambda s: (-len(set(by[s])), s))[:classes]
    rows = capped({s: by[s] for s in top}, cap, rng)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "debian-sections.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    log(f"debian-sections: {len(rows)} descriptions, {len(top)} sections (CSV)")


ROFF_ESCAPES = [(r"\\f(\[[^\]]*\]|\(..|.)", ""), (r"\\\*(\[[^\]]*\]|\(..|.)", ""), (r"\\\((em|en|hy)", "-"), (r"\\\(.." , ""),
                (r"\\\[[^\]]*\]", ""), (r"\\[-e]", lambda m: "-" if m.group(0) == "\\-" else "\\"), (r"\\&|\\\^|\\\||\\0|\\c", ""),
                (r"\\s[+-]?\d", ""), (r"\\ ", " ")]


def strip_roff(src):
    out = []
    skip = False
    for line in src.split("\n"):
        if skip:
            if line.startswith(".."):
                skip = False
            continue
        if line.startswith((".\\\"", "'\\\"", "\\\"")):
            continue
        if line.startswith((".de", ".ig")):
            skip = True
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.']\s*(\S+)\s*(.*)", line)
            if not m:
                continue
            macro, rest = m.groups()
            if macro in ("SH", "SS", "B", "I", "BI", "IB", "BR", "RB", "IR", "RI", "IP", "TP", "Nm", "Nd", "Sh", "Ss", "Fn", "Fa", "Ar", "Op", "Xr", "Pa", "Dv", "Er", "Cm", "Fl", "It", "Em"):
                out.append(rest.replace('"', ""))
            continue
        out.append(line)
    text = "\n".join(out)
    for pat, rep in ROFF_ESCAPES:
        text = re.sub(pat, rep, text)
    text = re.sub(r"\\(.)", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def make_manpages(out, cap=250, max_chars=30000):
    rng = random.Random(SEED + 9)
    by = {}
    for sec in ["1", "2", "3", "5", "7", "8"]:
        files = sorted(p for p in Path(f"/usr/share/man/man{sec}").glob("*.gz") if not p.is_symlink())
        rng.shuffle(files)
        texts = []
        for p in files:
            if len(texts) >= cap:
                break
            src = gzip.open(p).read().decode("utf-8", errors="replace")
            if src.lstrip().startswith(".so "):
                continue  # a redirect to another page
            t = strip_roff(src)
            if len(t) < 200:
                continue
            texts.append(t[:max_chars])
        by[f"man{sec}"] = texts
    rows = capped(by, cap, rng)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "manpages.jsonl", rows)
    lengths = sorted(len(t) for t, _ in rows)
    log(f"manpages: {len(rows)} pages, {len(by)} sections, median {lengths[len(lengths) // 2]} characters (JSON Lines)")


SETS = ["glyphs16", "letters-13k", "icons-rgba", "sk-digits", "digits-imbalanced", "wallpaper-crops",
        "debian-sections", "fortunes-en", "fortunes-de", "fortunes-es", "manpages"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="evalset")
    ap.add_argument("--only", nargs="*", choices=SETS, help="build only these sets")
    a = ap.parse_args()
    out = Path(a.out)
    staging = out / ".staging"
    todo = a.only or SETS
    for name in todo:
        target = out / name
        if target.exists():
            log(f"{name}: exists, skipped (delete {target} to rebuild)")
            continue
        tmp = out / (name + ".partial")
        if tmp.exists():
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
        tmp.mkdir(parents=True)
        {
            "glyphs16": lambda: make_glyphs16(tmp, fonts_per_class=120),
            "letters-13k": lambda: make_letters(tmp),
            "icons-rgba": lambda: make_icons(tmp),
            "sk-digits": lambda: make_sk_digits(tmp),
            "digits-imbalanced": lambda: make_digits_imbalanced(tmp, staging / "digits-imbalanced.jsonl"),
            "wallpaper-crops": lambda: make_wallpapers(tmp),
            "debian-sections": lambda: make_debian_sections(tmp),
            "fortunes-en": lambda: make_fortunes_en(tmp),
            "fortunes-de": lambda: make_fortunes_de(staging / "fortunes-de.jsonl"),
            "fortunes-es": lambda: make_fortunes_es(tmp),
            "manpages": lambda: make_manpages(tmp),
        }[name]()
        tmp.rename(target)


if __name__ == "__main__":
    sys.exit(main())
