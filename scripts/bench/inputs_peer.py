#!/usr/bin/env python3
"""The Python side of scripts/bench/inputs_bench.sh: makes the shared test data (--make) and measures
BertTokenizerFast and PIL + FlavaImageProcessor on it (--measure), printing JSON lines."""
import argparse, json, os, time
import numpy as np


def make(work, vocab):
    rng = np.random.default_rng(0)
    words = [w.strip() for w in open(vocab, encoding="utf-8") if w.strip().isalpha()][2000:12000]
    with open(os.path.join(work, "corpus.txt"), "w") as f:
        for i in range(20000):
            n = int(rng.integers(4, 30))
            s = " ".join(rng.choice(words, n))
            if i % 3 == 0: s = s.capitalize() + "."
            if i % 7 == 0: s += ", isn't it? Café résumé naïve."
            f.write(s + "\n")
    from PIL import Image
    for i in range(40):
        y, x = np.mgrid[0:375, 0:500]
        base = np.stack([(x * 255 / 499), (y * 255 / 374), ((x + y) % 256)], -1)
        img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        im = Image.fromarray(img)
        if i % 4 == 3: im.save(os.path.join(work, "images", f"img{i:02d}.png"))
        else: im.save(os.path.join(work, "images", f"img{i:02d}.jpg"), quality=90)


def timed(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.time(); fn(); ts.append(time.time() - t)
    return sorted(ts)[len(ts) // 2]


def measure(work, vocab):
    from transformers import BertTokenizerFast, FlavaImageProcessor
    from PIL import Image
    lines = open(os.path.join(work, "corpus.txt"), encoding="utf-8").read().split("\n")[:-1]
    tok = BertTokenizerFast(vocab)
    for threads in (1, 2):
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        # tokenizers reads RAYON_NUM_THREADS once per process; the parallelism switch below is what applies.
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
        t = timed(lambda: tok(lines, max_length=77, truncation=True, padding="max_length"), 5)
        print(json.dumps({"bench": "tokenizer", "peer": "tokenizers", "threads": threads, "sentences_per_second": len(lines) / t}))
    files = sorted(os.path.join(work, "images", f) for f in os.listdir(os.path.join(work, "images")))
    proc = FlavaImageProcessor()
    def run():
        for f in files:
            proc(Image.open(f).convert("RGB"), return_codebook_pixels=True, return_tensors="np")
    t = timed(run, 3)
    print(json.dumps({"bench": "images", "peer": "pil", "threads": 1, "images_per_second": len(files) / t}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--make"); ap.add_argument("--measure"); ap.add_argument("--vocab", required=True)
    a = ap.parse_args()
    if a.make: make(a.make, a.vocab)
    if a.measure: measure(a.measure, a.vocab)
