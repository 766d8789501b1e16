"""Recover a trainable reader checkpoint from a shipped ``reader.onnx``: fine-tune without the
original ``.pt``.

    python -m training.reader.from_onnx --onnx models/reader.onnx --out /work/runs/reader.pt \
        [--data-root ../shared/data]

then ``python -m training.reader.train --init /work/runs/reader.pt ...``.

The exporter folds every BatchNorm into the convolution before it, so the ONNX file holds one
weight and one bias per conv+BN pair. Loading those back with an identity BatchNorm would give
the same function in eval mode, but training mode normalises with batch statistics, so the
first training step would see a different network. Instead each BatchNorm is *re-calibrated*:
its running mean and variance are set to the statistics of its conv's output on real training
crops, and its affine part is chosen so that the eval-mode function is unchanged
(``w = sqrt(var + eps)``, ``b = mean + folded_bias``). Batch statistics then start close to the
running ones, and training picks up from the shipped model rather than from a perturbed one.
The recovered model is checked against ONNX Runtime before it is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from . import data as D
from .model import LPRNet

PARITY_TOL = 1e-4


def _execution_order(model: nn.Module, x: torch.Tensor) -> list[nn.Conv2d]:
    """Conv modules in the order the forward pass runs them (= the ONNX graph's node order)."""
    order: list[nn.Conv2d] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return order


def _bn_after(model: nn.Module) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each conv that a BatchNorm follows directly, in its Sequential, with that BatchNorm."""
    pairs = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            mods = list(seq)
            for a, b in zip(mods, mods[1:], strict=False):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    pairs[a] = b
    return pairs


def _running(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The running statistics buffers (LPRNet's BatchNorms always track them)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics cannot hold folded weights")
    return bn.running_mean, bn.running_var


def recover(onnx_path: Path, calibration: np.ndarray, width: float = 1.0) -> LPRNet:
    """An ``LPRNet`` whose eval-mode output equals ``onnx_path``'s logits (before the softmax),
    with BatchNorm statistics measured on ``calibration`` (N, 3, H, W) prepared crops."""
    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: np.array(numpy_helper.to_array(i)) for i in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    model = LPRNet(width=width)
    order = _execution_order(model, torch.from_numpy(calibration[:2]))
    if len(order) != len(onnx_convs):
        raise ValueError(
            f"{onnx_path}: {len(onnx_convs)} Conv nodes, the width-{width} LPRNet has {len(order)}"
        )
    bn_of = _bn_after(model)
    folded_bias: dict[nn.BatchNorm2d, np.ndarray] = {}
    with torch.no_grad():
        for conv, node in zip(order, onnx_convs, strict=True):
            w = inits[node.input[1]]
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(
                    f"{onnx_path}: Conv {node.name} weight {w.shape} != {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(w))
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            if conv in bn_of:
                bn = bn_of[conv]
                folded_bias[bn] = b
                # identity for now: eval output = conv(x) + b, exactly the folded conv
                running_mean, running_var = _running(bn)
                running_mean.zero_()
                running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b))
            elif np.any(b):
                raise ValueError(f"{onnx_path}: Conv {node.name} has a bias the model cannot hold")

        # Re-calibrate: measure each BN's input statistics; keep the eval function unchanged.
        stats: dict[nn.BatchNorm2d, list[torch.Tensor]] = {bn: [] for bn in folded_bias}
        hooks = [
            bn.register_forward_hook(lambda mod, inp, _o: stats[mod].append(inp[0].detach()))
            for bn in folded_bias
        ]
        model.eval()
        for s in range(0, len(calibration), 128):
            model(torch.from_numpy(calibration[s : s + 128]))
        for h in hooks:
            h.remove()
        for bn, chunks in stats.items():
            x = torch.cat([c.transpose(0, 1).reshape(c.shape[1], -1) for c in chunks], dim=1)
            mean, var = x.mean(dim=1), x.var(dim=1)
            running_mean, running_var = _running(bn)
            running_mean.copy_(mean)
            running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt())
            bn.bias.copy_(mean + torch.from_numpy(folded_bias[bn]))
    return model.eval()


def parity(model: LPRNet, onnx_path: Path, images: np.ndarray) -> float:
    """Largest |softmax difference| between the model (eval) and ONNX Runtime on ``images``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    want = sess.run(None, {name: images})[0]
    with torch.no_grad():
        got = torch.softmax(model.eval()(torch.from_numpy(images)), -1).numpy()
    return float(np.abs(want - got).max())


def calibration_crops(data_root: Path, n: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` prepared training-split crops (BR and US), the data the reader was trained on."""
    crops = D.split(D.load_br(data_root), "train") + D.split(D.load_us(data_root), "train")
    if not crops:
        raise FileNotFoundError(f"no reader training crops under {data_root}")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(crops), size=min(n, len(crops)), replace=False)
    images, _, _ = D.make_batch(
        [D.read_bgr(crops[i].path) for i in pick], [crops[i].text for i in pick]
    )
    return images


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--onnx", type=Path, default=Path("models/reader.onnx"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=D.default_data_root())
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--calibration", type=int, default=512, help="crops for the BN statistics")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    images = calibration_crops(args.data_root, args.calibration)
    model = recover(args.onnx, images, args.width)
    diff = parity(model, args.onnx, images[:64])
    if diff > PARITY_TOL:
        print(f"from_onnx: recovered model differs from {args.onnx} by {diff:.2e}", file=sys.stderr)
        return 1
    meta_path = args.onnx.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model.state_dict(),
            "step": int(meta.get("train_steps", 0)),
            "base_step": 0,
            "width": args.width,
            "from_onnx": str(args.onnx),
            "version": meta.get("version"),
        },
        args.out,
    )
    print(f"from_onnx: {args.onnx} -> {args.out} (max |prob diff| vs ONNX {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
