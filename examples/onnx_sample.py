"""Sample words from an exported ONNX model with numpy and onnxruntime alone (no makemore, no torch).

    makemore export -o out/mlp --format onnx
    python examples/onnx_sample.py out/mlp/model.onnx
"""

import json
import sys

import numpy as np
import onnxruntime as ort

path = sys.argv[1] if len(sys.argv) > 1 else "out/mlp/model.onnx"
session = ort.InferenceSession(path)
meta = json.loads(session.get_modelmeta().custom_metadata_map["makemore"])
vocab, context, kind = meta["vocab"], meta["context"], meta["kind"]
rng = np.random.default_rng(42)


def next_logits(ids):
    """Logits of the token after a word's tokens ids (characters are 1..V-1; 0 is the boundary)."""
    if kind == "window":  # the last `context` tokens, boundary-padded on the left
        x = ([0] * context + ids)[-context:]
        return session.run(None, {"idx": np.array([x], dtype=np.int64)})[0][0]
    x = ([0] + ids + [0] * context)[:context]  # the boundary, the word, zeros up to the fixed width
    return session.run(None, {"idx": np.array([x], dtype=np.int64)})[0][0, len(ids)]


def sample_word(temperature=1.0, max_length=30):
    ids = []
    while len(ids) < (min(max_length, context - 1) if kind == "sequence" else max_length):
        logits = next_logits(ids) / temperature
        p = np.exp(logits - logits.max())
        token = rng.choice(len(p), p=p / p.sum())
        if token == 0:  # the boundary ends the word
            break
        ids.append(int(token))
    return "".join(vocab[i - 1] for i in ids)


if __name__ == "__main__":
    print([sample_word() for _ in range(10)])
