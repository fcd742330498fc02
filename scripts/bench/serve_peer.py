"""The Python peer of `flava serve` for scripts/bench/serve_bench.sh: the minimal embedding service a Python user
would write, POST /v1/embed with the same JSON ({"images": [base64]} or {"texts": [...]}) answered by
transformers' FlavaModel on the same model folder, projected and L2-normalized as flava serve does
(get_image_features / get_text_features on [CLS]). Flask with threaded=True and one lock around the model
(PyTorch runs its own 2 intra-op threads; unguarded concurrent forwards only oversubscribe the cores); no
batching across requests, as such a service has none.

    python scripts/bench/serve_peer.py MODEL_DIR PORT
"""
import base64, io, sys, threading
import torch
from flask import Flask, request, jsonify
from PIL import Image
from transformers import FlavaModel, FlavaImageProcessor, BertTokenizer

torch.set_num_threads(2)
model_dir, port = sys.argv[1], int(sys.argv[2])
model = FlavaModel.from_pretrained(model_dir).eval()
processor = FlavaImageProcessor()
tokenizer = BertTokenizer(model_dir + "/vocab.txt")
lock = threading.Lock()
app = Flask(__name__)


def first_token(f):
    """The projected [CLS]: transformers 5 returns the projection of every token as pooler_output."""
    f = getattr(f, "pooler_output", f)
    return f[:, 0] if f.dim() == 3 else f


@app.post("/v1/embed")
def embed():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return jsonify(error="the body is not a JSON object"), 400
    out = {}
    with torch.inference_mode():
        if body.get("images"):
            try:
                images = [Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB") for s in body["images"]]
            except Exception as e:
                return jsonify(error=f"image: {e}"), 400
            px = processor(images=images, return_tensors="pt")["pixel_values"]
            with lock:
                f = model.get_image_features(pixel_values=px)
            f = first_token(f)
            out["image_embeddings"] = torch.nn.functional.normalize(f, dim=-1).tolist()
        if body.get("texts"):
            t = tokenizer(body["texts"], padding=True, truncation=True, max_length=77, return_tensors="pt")
            with lock:
                f = model.get_text_features(**t)
            f = first_token(f)
            out["text_embeddings"] = torch.nn.functional.normalize(f, dim=-1).tolist()
    return jsonify(out)


@app.get("/health")
def health():
    return jsonify(status="ok")


if __name__ == "__main__":
    print(f"serve_peer: listening on http://127.0.0.1:{port}", flush=True)
    app.run(host="127.0.0.1", port=port, threaded=True)
