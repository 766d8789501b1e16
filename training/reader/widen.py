"""Widen a trained reader checkpoint (Net2Net-style): more channels, the same function to start.

    python -m training.reader.widen --ckpt /work/runs/r03/a/best.pt --width 1.5 \
        --out /work/runs/r04/init_w1.5.pt

then ``python -m training.reader.train --init /work/runs/r04/init_w1.5.pt --width 1.5 ...``.

Training a wider reader from scratch throws away the 8700 CPU steps the shipped one has had;
widening keeps them. Every layer of the wider `LPRNet` holds the old weights in its leading
channels. The new channels start switched off: each new BatchNorm has a small scale and zero
shift, so a new channel's output is tiny, and the weights from new input channels into old
output channels are zero. The wider network therefore computes (almost exactly) what the old
one did; the small scale keeps the new channels trainable (with a zero scale, both their
weights and their scale would get a zero gradient and never move).

Two places need more than the leading-channel copy:
- the classifier reads the concatenation of six feature blocks, each of which grows, so each
  old block's weights go to the start of the matching new block;
- the four pooled stage features are normalised by their mean square over channels. Near-zero
  new channels lower that mean by old/new channels, which scales those features up by
  sqrt(new/old); the classifier weights on them are scaled down by the same factor.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

from . import data as D
from .from_onnx import calibration_crops
from .model import LPRNet

# Scale of each new BatchNorm channel: small enough that the widened network starts within
# ~1e-3 of the old one (measured by the parity check), large enough to train.
NEW_GAMMA = 1e-2


def _widen_conv(old: nn.Conv2d, new: nn.Conv2d) -> None:
    o_out, o_in = old.weight.shape[:2]
    new.weight[:o_out, :o_in] = old.weight
    if new.groups == 1:
        new.weight[:o_out, o_in:] = 0.0  # new inputs do not reach old outputs
    if old.bias is not None and new.bias is not None:
        new.bias[:o_out] = old.bias


def _widen_bn(old: nn.BatchNorm2d, new: nn.BatchNorm2d) -> None:
    n = old.num_features
    assert old.running_mean is not None and old.running_var is not None
    assert new.running_mean is not None and new.running_var is not None
    new.weight.fill_(NEW_GAMMA)
    new.bias.zero_()
    new.running_mean.zero_()
    new.running_var.fill_(1.0)
    new.weight[:n] = old.weight
    new.bias[:n] = old.bias
    new.running_mean[:n] = old.running_mean
    new.running_var[:n] = old.running_var


def _widen_classifier(old: LPRNet, new: LPRNet) -> None:
    w_old, w_new = old.classifier.weight, new.classifier.weight  # (C, sum(blocks), 1, 1)
    w_new.zero_()
    assert new.classifier.bias is not None and old.classifier.bias is not None
    new.classifier.bias.copy_(old.classifier.bias)
    a = b = 0
    pairs = zip(old.context_channels, new.context_channels, strict=True)
    for k, (n_old, n_new) in enumerate(pairs):
        scale = math.sqrt(n_old / n_new) if k < 4 else 1.0  # the 4 normalised stage blocks
        w_new[:, b : b + n_old] = w_old[:, a : a + n_old] * scale
        a, b = a + n_old, b + n_new


def widen(old: LPRNet, width: float, seed: int = 0) -> LPRNet:
    """A wider copy of ``old`` (see the module doc); ``old`` is left unchanged."""
    torch.manual_seed(seed)  # the new channels' random weights
    new = LPRNet(width=width)
    old_mods = dict(old.named_modules())
    with torch.no_grad():
        for name, m in new.named_modules():
            if name == "classifier":
                continue
            o = old_mods.get(name)
            if isinstance(m, nn.Conv2d) and isinstance(o, nn.Conv2d):
                _widen_conv(o, m)
            elif isinstance(m, nn.BatchNorm2d) and isinstance(o, nn.BatchNorm2d):
                _widen_bn(o, m)
        _widen_classifier(old, new)
    return new


def max_prob_diff(a: nn.Module, b: nn.Module, images: torch.Tensor) -> float:
    """Largest |softmax difference| between two readers in eval mode."""
    with torch.no_grad():
        pa = torch.softmax(a.eval()(images), -1)
        pb = torch.softmax(b.eval()(images), -1)
    return float((pa - pb).abs().max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True, help="a training checkpoint (.pt)")
    ap.add_argument("--width", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=None, help="crops for the parity check")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    old = LPRNet(width=float(ck["width"]))
    old.load_state_dict(ck["model"])
    if args.width <= float(ck["width"]):
        print(f"widen: --width {args.width} is not wider than {ck['width']}", file=sys.stderr)
        return 2
    new = widen(old, args.width)
    images = torch.from_numpy(calibration_crops(args.data_root or D.default_data_root(), 256))
    diff = max_prob_diff(old, new, images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": new.state_dict(),
            "step": int(ck.get("step", 0)),
            "base_step": int(ck.get("base_step", 0)),
            "width": args.width,
            "widened_from": str(args.ckpt),
        },
        args.out,
    )
    print(f"widen: {args.ckpt} (width {ck['width']}) -> {args.out} (width {args.width}); "
          f"max |prob diff| on 256 real crops {diff:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
