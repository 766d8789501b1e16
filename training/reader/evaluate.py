"""Score a shipped reader ONNX on the held-out real crops (BR, US) with the runtime's decoder.

    python -m training.reader.evaluate --model models/reader.onnx [--data-root ../shared/data]

BR is scored twice: against the audited labels (``br_label_fixes.tsv``: the published file
names carry systematic errors, see that file) and against the labels as published. Exact-match
accuracy is the metric; the O/0- and I/1-folded rate is printed beside it (some
plates legitimately contain O or I, so folding is never the headline). Also measures ONNX
Runtime latency on one thread (batch 1 and batch 8).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.detect.ctc import greedy_decode_batch
from edge.detect.plate_input import prepare_batch
from edge.vote.text import fold_confusables

from . import data as D
from .model import ALPHABET


def session(model: Path, threads: int = 1) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def read_texts(
    sess: ort.InferenceSession, crops: list[np.ndarray], alphabet: str, batch: int = 64
) -> list[str]:
    out: list[str] = []
    for s in range(0, len(crops), batch):
        probs = sess.run(["probs"], {"images": prepare_batch(crops[s : s + batch], D.SPEC)})[0]
        out.extend(d.text for d in greedy_decode_batch(probs, alphabet))
    return out


def score(predictions: list[str], truths: list[str]) -> dict[str, float]:
    n = len(truths)
    exact = sum(p == t for p, t in zip(predictions, truths, strict=True))
    folded = sum(
        fold_confusables(p) == fold_confusables(t) for p, t in zip(predictions, truths, strict=True)
    )
    return {"n": n, "exact": exact / n if n else 0.0, "folded": folded / n if n else 0.0}


def evaluate_model(
    model: Path, data_root: Path, alphabet: str | None = None, show_errors: int = 0
) -> dict[str, dict[str, float]]:
    """{"br": {"n", "exact", "folded"}, "br-as-published": ..., "us": ..., "ar": ...} on the
    fixed held-out split ("ar" where ``ar-plate-crops`` is there). "br" scores against the
    audited labels (``br_label_fixes.tsv``), "br-as-published" against the file names as the
    data set ships them."""
    if alphabet is None:
        meta = model.with_suffix(".json")
        alphabet = json.loads(meta.read_text())["alphabet"] if meta.exists() else ALPHABET
    sess = session(model)
    results = {}
    sets = (
        ("br", D.load_br),
        ("br-as-published", lambda root: D.load_br(root, fixes=False)),
        ("us", D.load_us),
    )
    if (Path(data_root) / D.AR_DIR).is_dir():  # optional set: scored where it is there
        sets = (*sets, ("ar", D.load_ar))
    for name, loader in sets:
        crops = D.split(loader(data_root), "val")
        preds = read_texts(sess, [D.read_bgr(c.path) for c in crops], alphabet)
        truths = [c.text for c in crops]
        results[name] = score(preds, truths)
        wrong = [
            (c.path.name, t, p) for c, t, p in zip(crops, truths, preds, strict=True) if p != t
        ]
        for fname, t, p in wrong[:show_errors]:
            print(f"  {name} {fname}: truth {t} read {p}")
    return results


def latency_ms(model: Path, batch: int, repeats: int = 50) -> float:
    """Median wall time of one ``run`` on one thread, in ms."""
    sess = session(model)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, D.SPEC.height, D.SPEC.width))
    x = x.astype(np.float32)
    for _ in range(5):
        sess.run(["probs"], {"images": x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(["probs"], {"images": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/reader.onnx"))
    ap.add_argument("--data-root", type=Path, default=D.default_data_root())
    ap.add_argument("--errors", type=int, default=0, help="print this many misreads per set")
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 2
    res = evaluate_model(args.model, args.data_root, show_errors=args.errors)
    print(f"{'set':<16}{'crops':>7}{'exact':>9}{'O/0,I/1-folded':>17}")
    for name, r in res.items():
        print(f"{name:<16}{r['n']:>7}{r['exact']:>9.3f}{r['folded']:>17.3f}")
    if not args.no_latency:
        b1, b8 = latency_ms(args.model, 1), latency_ms(args.model, 8)
        print(
            f"latency (onnxruntime, 1 thread): batch 1 {b1:.2f} ms; batch 8 {b8:.2f} ms"
            f" ({b8 / 8:.2f} ms/crop)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
