"""What a wider reader costs: ms per crop at batch 8 (ONNX Runtime, 1 thread) per LPRNet width.

    python benchmarks/reader_capacity.py [--widths 0.5,1.0,1.5,2.0] [--batch 8]

Each width is exported untrained (the cost does not depend on the weights) and timed with the
same ``latency_ms`` as the model card. The reader's budget (issue 11) is 3 ms per crop at
batch 8 on 1 thread. Accuracy per width needs a training run per width; this prints the cost
side of that choice, and the shipped model's own figure beside it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--widths", default="0.5,1.0,1.5,2.0")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    import torch

    from training.reader.evaluate import latency_ms
    from training.reader.export import export_onnx
    from training.reader.model import LPRNet, count_params

    torch.set_num_threads(1)
    print(f"| reader | params | ms per crop at batch {args.batch} (1 thread) |")
    print("|---|---|---|")
    shipped = REPO / "models" / "reader.onnx"
    if shipped.is_file():
        ms = latency_ms(shipped, args.batch) / args.batch
        print(f"| shipped models/reader.onnx | - | {ms:.2f} |")
    with tempfile.TemporaryDirectory() as tmp:
        for w in (float(x) for x in args.widths.split(",") if x):
            net = LPRNet(width=w).eval()
            path = Path(tmp) / f"reader-w{w}.onnx"
            export_onnx(net, path)
            ms = latency_ms(path, args.batch) / args.batch
            print(f"| LPRNet width {w} | {count_params(net):,} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
