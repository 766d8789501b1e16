"""Still-image read rates per region, and the crop variants behind them, in one command.

    python benchmarks/bench_stills.py [DIR] [--models DIR] [--search] [--json OUT]

DIR: a labelled folder in the openalpr layout (region sub-folders; default openalpr-dev under
$PLATEWATCH_DATA or the nearest ``shared/data``). The detector runs once per image (its plate
fragments dropped, as ``platewatch image`` does); every candidate crop variant of every plate it
found is read once, in one reader batch per image. Each configuration is then scored from those
reads with the functions ``platewatch image`` runs (edge.detect.stills.choose_read and the
default ReadFilter), so no configuration costs another pass of the models:

- ``--region auto``: each region folder's formats repair the reads (eval's default);
- ``--region none``: no region chosen (``platewatch image`` without ``--region``).

Printed per region and overall: exact and O/0-I/1-folded read rates of the labelled plates
(end to end: a plate the detector missed, or whose read the filter drops, is not read), for
``single 8%`` (one crop with the usual 8 % margin: the reads before crop variants, and the
video pipeline's; ``every read``: without the filter, as ``platewatch image`` printed them) and
``default`` (`edge.detect.stills.DEFAULT_VARIANTS`). ``--search`` also
scores every variant of a grid alone and grows a set greedily (each step adds the variant that
most raises auto + none exact reads), so the set can be chosen again when the models change.
The reader's cost is about 0.5 ms per crop on one CPU thread (bench_image.py measures it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_image import data_root  # noqa: E402  (this folder: one rule for where data is)

from edge.detect.alpr import drop_fragments  # noqa: E402
from edge.detect.images import read_image  # noqa: E402
from edge.detect.models import load_models  # noqa: E402
from edge.detect.stills import (  # noqa: E402
    DEFAULT_VARIANTS,
    CropVariant,
    ReadFilter,
    choose_read,
    variant_box,
)
from edge.eval.evaluate import fold, formats_chooser, load_openalpr, match_plates  # noqa: E402
from edge.types import PLATE, TextRead  # noqa: E402
from edge.vote.formats import PlateFormats, region_formats  # noqa: E402

USUAL = CropVariant("usual", 0.08, 0.08)
IMAGE_FILTER = ReadFilter()  # what `platewatch image` prints by default
GRID = tuple(
    CropVariant(f"x{mx:g}/y{my:g}", mx, my)
    for mx in (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)
    for my in (-0.1, -0.05, 0.0, 0.04, 0.08)
)


@dataclass
class Case:
    """One labelled plate: its region, text, and the read of every variant (None: missed)."""

    region: str
    text: str
    reads: dict[CropVariant, TextRead] | None


def collect(root: Path, models: Path | None, variants: Sequence[CropVariant]) -> list[Case]:
    detector, reader = load_models(models, threads=1, device="cpu")
    cases: list[Case] = []
    for sample in load_openalpr(root):
        image = read_image(str(sample.image))
        h, w = image.shape[:2]
        dets = drop_fragments(detector.detect(image))
        boxes = dets.boxes[dets.indices_of(PLATE)]
        gt = np.array([p.box for p in sample.plates], np.float32).reshape(-1, 4)
        matches = match_plates(gt, boxes)
        crops = [
            image[y1:y2, x1:x2]
            for b in boxes
            for x1, y1, x2, y2 in (
                variant_box((float(b[0]), float(b[1]), float(b[2]), float(b[3])), w, h, v)
                for v in variants
            )
        ]
        reads = reader.read(crops)
        n = len(variants)
        for plate, m in zip(sample.plates, matches, strict=True):
            if not plate.text:
                continue
            got = (
                None if m is None else dict(zip(variants, reads[m * n : (m + 1) * n], strict=True))
            )
            cases.append(Case(sample.region, plate.text, got))
    detector.close()
    reader.close()
    return cases


Scores = dict[str, dict[str, tuple[int, int, int]]]  # mode -> region -> (exact, folded, n)


def score(
    cases: list[Case], variants: Sequence[CropVariant], keep: ReadFilter | None = IMAGE_FILTER
) -> Scores:
    shipped = PlateFormats.default(None)
    by_region = region_formats(shipped)
    out: Scores = {}
    for mode in ("auto", "none"):
        formats_for: Callable[[str], PlateFormats | None] = formats_chooser(mode) or (
            lambda region: None
        )
        rows: dict[str, list[int]] = {}
        for c in cases:
            row = rows.setdefault(c.region, [0, 0, 0])
            row[2] += 1
            if c.reads is None:
                continue
            choice = choose_read(
                [c.reads[v] for v in variants], formats_for(c.region), shipped, by_region
            )
            if keep is None or keep.keeps(choice.read, shipped):
                row[0] += choice.read.text == c.text
                row[1] += fold(choice.read.text) == fold(c.text)
        total = [sum(r[i] for r in rows.values()) for i in range(3)]
        out[mode] = {r: (v[0], v[1], v[2]) for r, v in sorted(rows.items())}
        out[mode]["overall"] = (total[0], total[1], total[2])
    return out


def exact_reads(s: Scores) -> int:
    return s["auto"]["overall"][0] + s["none"]["overall"][0]


def show(name: str, s: Scores) -> str:
    cells = []
    for mode in ("auto", "none"):
        parts = [
            f"{r} {100 * e / n:5.1f}/{100 * f / n:5.1f}" for r, (e, f, n) in s[mode].items() if n
        ]
        cells.append(f"{mode}: " + "  ".join(parts))
    return f"{name:28} " + "   |   ".join(cells)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("folder", type=Path, nargs="?", default=None)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--search", action="store_true", help="score a grid of variants too")
    ap.add_argument("--max-set", type=int, default=6, help="--search: largest set grown")
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    args = ap.parse_args()

    root = args.folder or data_root() / "openalpr-dev"
    candidates = list(dict.fromkeys([USUAL, *DEFAULT_VARIANTS, *(GRID if args.search else ())]))
    cases = collect(root, args.models, candidates)
    print(f"{root}: {len(cases)} labelled plates; exact/folded % per region (read filter on)")
    results = {
        "single 8%, every read": score(cases, [USUAL], None),
        "single 8%": score(cases, [USUAL]),
        "default": score(cases, DEFAULT_VARIANTS),
    }
    for name, s in results.items():
        print(show(name, s))
    if args.search:
        singles = {v: score(cases, [v]) for v in GRID}
        print("each variant alone (x: side margins, y: top/bottom margins, of the box size):")
        for v, s in sorted(singles.items(), key=lambda kv: -exact_reads(kv[1])):
            print(show(f"  {v.name}", s))
        chosen: list[CropVariant] = []
        print("grown greedily (auto + none exact reads):")
        while len(chosen) < min(args.max_set, len(GRID)):
            best = max(
                (v for v in GRID if v not in chosen),
                key=lambda v: exact_reads(score(cases, [*chosen, v])),
            )
            chosen.append(best)
            s = score(cases, chosen)
            results["+".join(v.name for v in chosen)] = s
            print(show(f"  + {best.name}", s))
    if args.json_out:
        args.json_out.write_text(json.dumps({"folder": str(root), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
