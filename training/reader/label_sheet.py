"""Contact sheet of the BR label corrections, to check them by eye.

    python -m training.reader.label_sheet --out br_label_fixes.png [--data-root ../shared/data]

Each tile is one crop of ``br-plate-crops`` listed in ``br_label_fixes.tsv``, captioned with the
published label and the audited one ("-": dropped). The sheet is written locally and never
committed: the crops are the data set's, not the project's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from . import data as D

TILE_W, TILE_H, CAPTION_H = 240, 80, 22


def tile(image: np.ndarray, caption: str) -> np.ndarray:
    out = np.full((TILE_H + CAPTION_H, TILE_W, 3), 255, np.uint8)
    out[:TILE_H] = cv2.resize(image, (TILE_W, TILE_H), interpolation=cv2.INTER_AREA)
    cv2.putText(
        out, caption, (3, TILE_H + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA
    )
    return out


def sheet(data_root: Path, columns: int = 5) -> np.ndarray:
    fixes = D.load_label_fixes()
    folder = Path(data_root) / D.BR_DIR
    tiles = []
    for name, text in sorted(fixes.items()):
        published = Path(name).stem.split("_", 1)[1]
        tiles.append(tile(D.read_bgr(folder / name), f"{name[:5]} {published} -> {text}"))
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=D.default_data_root())
    a = ap.parse_args(argv)
    image = sheet(a.data_root)
    if not cv2.imwrite(str(a.out), image):
        print(f"error: cannot write {a.out}", file=sys.stderr)
        return 1
    print(f"wrote {a.out} ({image.shape[1]}x{image.shape[0]}, {len(D.load_label_fixes())} crops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
