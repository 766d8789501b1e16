"""Export a reader checkpoint to ONNX, prove it matches PyTorch, write the metadata JSON.

    python -m training.reader.export --ckpt /work/runs/reader/best.pt --out models/reader.onnx

The graph: input ``images`` float32 (B, 3, 32, 128) (``edge.detect.plate_input.prepare_batch``),
output ``probs`` (B, T, C) softmax, dynamic batch axis, opset 17 (TorchScript exporter).

Parity: the same random batch and the same batch of held-out real crops go through PyTorch and
ONNX Runtime; the export fails (exit 1, message names the batch) if any probability differs by
more than ``--tol`` (1e-4) or any decoded string differs. Then the held-out accuracies are
measured on the ONNX file and written with its sha256 into ``<out>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge.detect.ctc import greedy_decode_batch
from edge.detect.plate_input import prepare_batch

from . import data as D
from .evaluate import evaluate_model, session
from .model import (
    ALPHABET,
    BLANK_INDEX,
    INPUT_HEIGHT,
    INPUT_WIDTH,
    LPRNet,
    ReaderExport,
    count_params,
)

OPSET = 17


class ParityError(RuntimeError):
    """ONNX Runtime and PyTorch disagree on the exported graph."""


@dataclass(frozen=True)
class Parity:
    name: str
    max_abs_diff: float
    strings_equal: bool


def export_onnx(net: torch.nn.Module, out: Path) -> None:
    wrapper = ReaderExport(net).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH)
    torch.onnx.export(
        wrapper,
        (dummy,),
        str(out),
        input_names=["images"],
        output_names=["probs"],
        dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )


def check_parity(
    net: torch.nn.Module, onnx_path: Path, batches: dict[str, np.ndarray], tol: float = 1e-4
) -> list[Parity]:
    """Raise ParityError on the first batch whose probabilities or decoded strings differ."""
    wrapper = ReaderExport(net).eval()
    sess = session(onnx_path)
    results = []
    for name, x in batches.items():
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(x)).numpy()
        got = sess.run(["probs"], {"images": x})[0]
        if got.shape != ref.shape:
            raise ParityError(
                f"{onnx_path}: {name} batch: ONNX probs shape {got.shape} != torch {ref.shape}"
            )
        diff = float(np.abs(got - ref).max())
        same = [d.text for d in greedy_decode_batch(got, ALPHABET)] == [
            d.text for d in greedy_decode_batch(ref, ALPHABET)
        ]
        results.append(Parity(name, diff, same))
        if diff > tol or not same:
            raise ParityError(
                f"{onnx_path}: {name} batch: max |probs diff| {diff:.3g} (tolerance {tol:g}),"
                f" decoded strings {'equal' if same else 'DIFFER'}"
            )
    return results


def parity_batches(data_root: Path | None, n_real: int = 32) -> dict[str, np.ndarray]:
    """A random batch, plus held-out real crops (BR and US mixed) when the data is present."""
    rng = np.random.default_rng(0)
    batches = {"random": rng.uniform(-1, 1, (8, 3, INPUT_HEIGHT, INPUT_WIDTH)).astype(np.float32)}
    if data_root is not None:
        crops = D.split(D.load_br(data_root), "val")[: n_real // 2]
        crops += D.split(D.load_us(data_root), "val")[: n_real - len(crops)]
        batches["real"] = prepare_batch([D.read_bgr(c.path) for c in crops], D.SPEC)
    return batches


def load_checkpoint(path: Path) -> tuple[LPRNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck.get("alphabet", ALPHABET) != ALPHABET:
        raise ValueError(f"{path}: checkpoint alphabet {ck['alphabet']!r} != {ALPHABET!r}")
    net = LPRNet(width=ck["width"])
    net.load_state_dict(ck["model"])
    return net.eval(), ck


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("models/reader.onnx"))
    ap.add_argument("--data-root", type=Path, default=D.default_data_root())
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    net, ck = load_checkpoint(args.ckpt)
    export_onnx(net, args.out)
    try:
        for p in check_parity(net, args.out, parity_batches(args.data_root), args.tol):
            print(f"parity {p.name}: max |diff| {p.max_abs_diff:.2e}, strings equal")
    except ParityError as exc:
        print(f"error: export parity check failed: {exc}", file=sys.stderr)
        return 1
    acc = evaluate_model(args.out, args.data_root, alphabet=ALPHABET)
    meta = {
        "kind": "reader",
        "alphabet": ALPHABET,
        "blank_index": BLANK_INDEX,
        "input": {
            "height": D.SPEC.height,
            "width": D.SPEC.width,
            "two_line_max_aspect": D.SPEC.two_line_max_aspect,
        },
        "output": "probs",
        "time_steps": int(ReaderExport(net)(torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH)).shape[1]),
        "version": args.version,
        "onnx_sha256": sha256(args.out),
        "architecture": f"LPRNet-style CTC, width {ck['width']}, {count_params(net)} params",
        # a fine-tuned checkpoint counts the steps of the one it started from (--init)
        "train_steps": int(ck["step"]) + int(ck.get("base_step", 0)),
        "val_accuracy": {
            k: {
                "crops": v["n"],
                "exact": round(v["exact"], 4),
                "folded_O0_I1": round(v["folded"], 4),
            }
            for k, v in acc.items()
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["val_accuracy"]))
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and "
        f"{args.out.with_suffix('.json')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
