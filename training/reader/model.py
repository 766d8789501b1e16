"""The plate reader network: an LPRNet-style fully convolutional CTC recogniser.

Owns the architecture, the alphabet/label encoding and the export wrapper (softmax head).

Input: (B, 3, 32, 128) float32 from ``edge.detect.plate_input.prepare_batch`` (RGB, [-1, 1]).
Output of ``forward``: raw logits (B, T, C) with T = 32 time steps (one per 4 input columns)
and C = 37 (CTC blank first, then ``ALPHABET``). ``ReaderExport`` appends the softmax that the
shipped ONNX graph ends with (output ``probs``).

Differences from the LPRNet paper (Zherzdev & Gruzdev 2018), and why:
- Input 32x128 (contract) instead of 24x94, and the time axis is kept at 32 steps (>= 2x the
  longest plate, 10 characters) so repeated characters ("999") always have room for a blank.
- The wide 1x13 head convolution is depthwise-separable: same horizontal receptive field for
  a fraction of the parameters and CPU time (the full conv alone would be ~0.85 M parameters).
- Global context is LPRNet's: features of every stage are pooled to the (1, T) output grid,
  normalised by their mean square and concatenated before the 1x1 classifier; in addition a
  global average of the last feature map is broadcast along T, so every time step sees the
  whole plate (style, lighting) and not only its neighbourhood.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK_INDEX = 0
NUM_CLASSES = len(ALPHABET) + 1
INPUT_HEIGHT = 32
INPUT_WIDTH = 128
TIME_STEPS = 32


def encode_text(text: str) -> list[int]:
    """Plate text -> class indices (blank is 0, so ALPHABET[i] is class i + 1)."""
    try:
        return [ALPHABET.index(ch) + 1 for ch in text]
    except ValueError as exc:
        raise ValueError(f"plate text {text!r} has a character outside {ALPHABET!r}") from exc


def conv_bn_relu(c_in: int, c_out: int, k: tuple[int, int], p: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=p, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class SmallBasicBlock(nn.Module):
    """LPRNet's small basic block: 1x1 squeeze, 3x1 and 1x3 convs, 1x1 expand (+ BN, ReLU).

    A residual 1x1 projection is added (not in the paper) so the deeper stacks train quickly
    from scratch on a few thousand real crops."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_out // 4
        self.body = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, (3, 1), padding=(1, 0), bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, (1, 3), padding=(0, 1), bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


def _context(x: torch.Tensor) -> torch.Tensor:
    """Pool a stage's features to the (1, T) output grid and normalise them by their mean
    square (LPRNet's global-context trick: stages with large activations must not drown the
    others in the concatenation)."""
    x = F.adaptive_avg_pool2d(x, (1, TIME_STEPS))
    return x / (x.pow(2).mean(dim=(1, 2, 3), keepdim=True) + 1e-6).sqrt()


class LPRNet(nn.Module):
    """LPRNet-style reader. ``width`` scales every channel count (1.0 ~ 0.5 M parameters)."""

    def __init__(self, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return max(8, int(round(c * width / 8)) * 8)

        c1, c2, c3, c4 = ch(32), ch(64), ch(128), ch(192)
        self.stage1 = nn.Sequential(conv_bn_relu(3, c1, (3, 3), (1, 1)))  # 32x128
        self.stage2 = nn.Sequential(  # 16x64
            nn.MaxPool2d(2), SmallBasicBlock(c1, c2)
        )
        self.stage3 = nn.Sequential(  # 8x32
            nn.MaxPool2d(2), SmallBasicBlock(c2, c3), SmallBasicBlock(c3, c3)
        )
        self.stage4 = nn.Sequential(  # 4x32: only the height shrinks from here on
            nn.MaxPool2d((2, 1)), SmallBasicBlock(c3, c4), SmallBasicBlock(c4, c4)
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            # Collapse the remaining 4 rows into one feature vector per column.
            nn.Conv2d(c4, c4, (4, 1), bias=False),
            nn.BatchNorm2d(c4),
            nn.ReLU(),
            # Horizontal context over 13 time steps (~1.5 characters each side), separable.
            nn.Conv2d(c4, c4, (1, 13), padding=(0, 6), groups=c4, bias=False),
            nn.Conv2d(c4, c4, 1, bias=False),
            nn.BatchNorm2d(c4),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        # the classifier's input blocks, in ``forward``'s concatenation order (widen.py maps them)
        self.context_channels = (c1, c2, c3, c4, c4, c4)
        self.classifier = nn.Conv2d(sum(self.context_channels), NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        f4 = self.stage4(f3)
        h = self.head(f4)  # (B, c4, 1, T)
        g = h.mean(dim=3, keepdim=True).expand_as(h)  # whole-plate context, per time step
        feats = torch.cat([_context(f1), _context(f2), _context(f3), _context(f4), h, g], dim=1)
        logits = self.classifier(feats)  # (B, C, 1, T)
        return logits.squeeze(2).permute(0, 2, 1)  # (B, T, C)


class ReaderExport(nn.Module):
    """What is shipped: the network followed by a softmax over classes -> ``probs`` (B, T, C)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(images), dim=-1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
