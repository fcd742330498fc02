#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzing harnesses (Tests/Fuzz/corpus/HARNESS/), from the project's small
fixtures and from inputs made here (Python standard library only). Run from the repository root; rerunning
rewrites the seeds (findings saved by scripts/fuzz.sh live in Tests/Fuzz/regressions/, which this leaves alone).
"""
import io, json, os, shutil, struct, tarfile

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "Tests", "Fuzz", "corpus")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
REF = os.path.join(ROOT, "..", "shared", "reference")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs += raw
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blobs


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    # safetensors
    put("safetensors", "state_dict.safetensors", read(os.path.join(FIX, "torch_state_dict.safetensors")))
    put("safetensors", "interpolate.safetensors", read(os.path.join(FIX, "interpolate.safetensors")))
    put("safetensors", "mixed.safetensors", safetensors({
        "a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("F16", [3], b"\x00\x3c" * 3),
        "c": ("I64", [2], struct.pack("<2q", 7, -1)), "d": ("BF16", [1], b"\x80\x3f"), "e": ("U8", [0], b""),
        "f": ("BOOL", [2], b"\x01\x00")}, {"format": "pt"}))
    # torch
    for name in ["torch_state_dict.bin", "torch_malicious.bin"]:
        put("torch", name, read(os.path.join(FIX, name)))
    # tar: two samples, 512-byte records
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for key, caption in [("sample0", "a red circle"), ("sample1", "two blue squares")]:
            for ext, payload in [("txt", caption.encode()), ("json", json.dumps({"caption": caption}).encode()),
                                 ("png", read(os.path.join(FIX, "decode", "bilevel.png")))]:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                t.addfile(info, io.BytesIO(payload))
        long = tarfile.TarInfo("d/" + "x" * 120 + ".txt")
        long.size = 3
        t.addfile(long, io.BytesIO(b"abc"))
    put("tar", "shard.tar", buf.getvalue())
    # images
    for name in ["bilevel.png", "gray16.png", "palette.png", "palette_trns.png", "gray.jpg", "progressive.jpg", "cmyk.jpg"]:
        put("image", name, read(os.path.join(FIX, "decode", name)))
    put("image", "shapes.png", read(os.path.join(REF, "images", "shapes_300x300.png")))
    # config.json
    put("config", "tiny.json", read(os.path.join(REF, "flava_tiny", "config.json")))
    put("config", "micro.json", read(os.path.join(FIX, "flava_micro_bin", "config.json")))
    small = {"image_config": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32, "num_hidden_layers": 1,
                              "image_size": 16, "patch_size": 8, "vocab_size": 32},
             "text_config": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32, "num_hidden_layers": 1,
                             "vocab_size": 64, "max_position_embeddings": 8},
             "multimodal_config": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32, "num_hidden_layers": 1},
             "image_codebook_config": {"hidden_size": 4, "num_blocks_per_group": 1, "vocab_size": 32},
             "hidden_size": 16, "projection_dim": 8, "text_config_dict": {"hidden_act": "gelu"}}
    put("config", "runnable.json", json.dumps(small))
    # settings: selector byte, then JSON
    put("settings", "preprocessor.json", b"\x00" + json.dumps({"size": {"height": 224, "width": 224}, "crop_size": 224,
        "resample": 3, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "codebook_size": 112, "codebook_resample": 1}).encode())
    put("settings", "tokenizer_config.json", b"\x01" + json.dumps({"do_lower_case": True, "strip_accents": None,
        "mask_token": {"content": "[MASK]", "lstrip": False}, "additional_special_tokens": ["[UNK]"], "split_special_tokens": False}).encode())
    put("settings", "pretrain.json", b"\x02" + json.dumps({"steps": 10, "batchSize": 4, "probabilities": [0.7, 0.15, 0.15],
        "data": {"imageSize": 64, "patchSize": 8, "maxTextLength": 32, "maskRatio": 0.38, "mlmProbability": 0.15,
                 "itmNegativeProbability": 0.1, "augment": True}}).encode())
    put("settings", "codebook.json", b"\x03" + json.dumps({"codebook": {"vocab_size": 64, "hidden_size": 8},
        "image_size": 32, "steps": 5, "kmeans_images": 16}).encode())
    put("settings", "decoder.json", b"\x04" + json.dumps({"vocab_size": 64, "hidden_size": 16, "init_size": 32,
        "num_blocks_per_group": 1, "reconstruction": "mse", "post_gain": None}).encode())
    # tokenizer: selector byte (options), then text
    texts = ["a photo of a [MASK] cat", "x \u0301 y", "Caf\u00e9 \u4e2d\u6587 \u0915 \u093f", "[CLS]a[SEP]b [mask]",
             "line\r\nbreak\ttab\u2028sep", "\U0001F44D\U0001F3FD ok \u200d", "a" * 120]
    for i, t in enumerate(texts):
        put("tokenizer", f"text{i}", bytes([i * 37 % 256]) + t.encode("utf-8"))
    put("tokenizer", "invalid_utf8", b"\x05\xff\xfe a \xc3")
    # vocab.txt
    put("vocab", "vocab.txt", "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "a", "photo"]) + "\n")
    put("vocab", "crlf.txt", "\r\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x"]))
    # manifests: selector 0 jsonl, 1 csv, 2 tsv
    put("manifest", "pairs.jsonl", b"\x00" + b'{"image": "a.png", "caption": "a red circle"}\n{"image": "b.jpg", "text": "x", "label": 2}\n')
    put("manifest", "pairs.csv", b"\x01" + b'image,caption\na.png,"a ""quoted"", caption"\nb.png,"two\nlines"\n')
    put("manifest", "pairs.tsv", b"\x02" + b"image\ttext\tlabel\na.png\tred\t1\n")
    # evaluation formats
    put("eval_formats", "karpathy.json", b"\x00" + json.dumps({"images": [{"filename": "a.jpg", "split": "test",
        "sentences": [{"raw": "a cat"}, {"raw": "a dog"}]}]}).encode())
    put("eval_formats", "coco.json", b"\x01" + json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"image_id": 1, "caption": "a cat"}]}).encode())
    put("eval_formats", "vqa.json", b"\x02" + json.dumps({"questions": [{"question_id": 1, "image_id": 1, "question": "what?"}]}).encode()
        + b"\x00" + json.dumps({"annotations": [{"question_id": 1, "image_id": 1, "answers": [{"answer": "yes"}] * 10,
                                                  "multiple_choice_answer": "yes"}]}).encode())
    put("eval_formats", "snli_ve.jsonl", b"\x03" + b'{"Flickr30K_ID": "1", "sentence2": "a man", "gold_label": "entailment"}\n')
    put("eval_formats", "memes.jsonl", b"\x04" + b'{"id": 1, "img": "img/1.png", "text": "hello", "label": 0}\n')
    put("eval_formats", "glue.tsv", b"\x05\x06" + b"sentence\tlabel\nit is good\t1\n")
    # tensorboard: selector 0 reads TFRecords, 1 writes from tags
    def crc32c(data):
        c = 0xFFFFFFFF
        for b in data:
            c ^= b
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        return c ^ 0xFFFFFFFF
    def masked(data):
        c = crc32c(data)
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    def record(payload):
        n = struct.pack("<Q", len(payload))
        return n + struct.pack("<I", masked(n)) + payload + struct.pack("<I", masked(payload))
    put("tensorboard", "events.bin", b"\x00" + record(b"\x09" + struct.pack("<d", 1.0) + b"\x1a\x0dbrain.Event:2")
        + record(b"\x10\x07\x2a\x0c\x0a\x0a\x0a\x04loss\x15" + struct.pack("<f", 2.5)))
    put("tensorboard", "write.bin", b"\x01" + b"\x05" + struct.pack("<d", 2.5) + b"loss/" + b"\x03" + struct.pack("<d", 0.25) + b"R@1")
    put("tensorboard", "empty.bin", b"\x00")


if __name__ == "__main__":
    main()
