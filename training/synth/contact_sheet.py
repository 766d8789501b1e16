"""Contact sheets of synthetic plates and composited scenes, for eyeballing realism.

    python -m training.synth.contact_sheet --out docs/synth_contact_sheet.png \
        [--composites-out docs/synth_composites.png] [--n 48] [--seed 0] [--clean]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from .layouts import STYLES
from .plates import generate_plate

CELL_W, CELL_H, LABEL_H = 220, 96, 18
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 9]


def plate_sheet(
    rng: np.random.Generator, n: int = 48, cols: int = 6, degrade: bool = True
) -> np.ndarray:
    """Grid of ``n`` plates cycling through every style, each with its label and style."""
    rows = (n + cols - 1) // cols
    sheet = np.full((rows * (CELL_H + LABEL_H), cols * CELL_W, 3), 255, np.uint8)
    for i in range(n):
        p = generate_plate(rng, STYLES[i % len(STYLES)], degrade=degrade)
        img = p.image
        # show at 2x-ish but never larger than the cell, keeping aspect
        scale = min((CELL_W - 8) / img.shape[1], (CELL_H - 6) / img.shape[0], 3.0)
        img = cv2.resize(
            img,
            (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
            interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA,
        )
        r, c = divmod(i, cols)
        y, x = r * (CELL_H + LABEL_H), c * CELL_W
        oy, ox = y + (CELL_H - img.shape[0]) // 2, x + (CELL_W - img.shape[1]) // 2
        sheet[oy : oy + img.shape[0], ox : ox + img.shape[1]] = img
        cv2.putText(
            sheet,
            f"{p.text}  {p.style}",
            (x + 4, y + CELL_H + 13),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.42,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet


def composite_sheet(rng: np.random.Generator, backgrounds: Path, n: int = 6) -> np.ndarray:
    """``n`` composited scenes with their plate boxes drawn, tiled 3 across."""
    from .composite import composite_scene, list_backgrounds

    files = list_backgrounds(backgrounds)
    tiles = []
    for _ in range(n):
        bg = cv2.imread(str(files[int(rng.integers(len(files)))]))
        img, boxes = composite_scene(rng, bg, int(rng.integers(1, 4)))
        for b in boxes:
            cv2.rectangle(
                img,
                (int(b.x1), int(b.y1)),
                (int(np.ceil(b.x2)), int(np.ceil(b.y2))),
                (0, 255, 0),
                1,
            )
            cv2.putText(
                img,
                b.text or "",
                (int(b.x1), max(10, int(b.y1) - 3)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (0, 255, 0),
                1,
                cv2.LINE_AA,
            )
        # letterbox every scene into the same tile so the grid has no ragged gaps
        tw, th = 420, 300
        sc = min(tw / img.shape[1], th / img.shape[0])
        small = cv2.resize(
            img, (round(img.shape[1] * sc), round(img.shape[0] * sc)), interpolation=cv2.INTER_AREA
        )
        tile = np.full((th + 4, tw + 4, 3), 255, np.uint8)
        tile[: small.shape[0], : small.shape[1]] = small
        tiles.append(tile)
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles) - len(tiles) % 3, 3)]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> None:
    from .fonts import data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/synth_contact_sheet.png"))
    ap.add_argument("--composites-out", type=Path, default=None)
    ap.add_argument(
        "--backgrounds",
        type=Path,
        default=None,
        help="folder of plate-free scenes (default: <data root>/backgrounds)",
    )
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean", action="store_true", help="no degradation")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), plate_sheet(rng, args.n, degrade=not args.clean), _PNG)
    print(f"wrote {args.out}")
    if args.composites_out:
        bgs = args.backgrounds or data_root() / "backgrounds"
        args.composites_out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.composites_out), composite_sheet(rng, bgs), _PNG)
        print(f"wrote {args.composites_out}")


if __name__ == "__main__":
    main()
