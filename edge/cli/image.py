"""``platewatch image``: read the plates in still images (files or folders).

One JSON line per image on stdout (or CSV with ``--csv``); problems with single files go to
stderr and do not stop the run; the exit code is 1 if any image failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from typing import Any, TextIO

from edge.detect.images import IMAGE_EXTENSIONS, ImageError, iter_images, read_image
from edge.types import FrameResult, Plate

CSV_HEADER = [
    "image",
    "plate",
    "text",
    "confidence",
    "x1",
    "y1",
    "x2",
    "y2",
    "vehicle_x1",
    "vehicle_y1",
    "vehicle_x2",
    "vehicle_y2",
    "char_confidences",
    "ms",
    "error",
]


def plate_record(p: Plate) -> dict[str, object]:
    """The ``platewatch image`` JSON object for one plate (rounded for humans)."""
    return {
        "text": p.read.text,
        "confidence": round(float(p.read.confidence), 3),
        "box": [round(float(v), 1) for v in p.box],
        "char_confidences": [round(float(c), 3) for c in p.read.char_confidences],
        "vehicle_box": (
            None if p.vehicle_box is None else [round(float(v), 1) for v in p.vehicle_box]
        ),
    }


def result_record(path: str, result: FrameResult, ms: float) -> dict[str, Any]:
    return {"image": path, "plates": [plate_record(p) for p in result.plates], "ms": round(ms, 1)}


def csv_rows(record: dict[str, Any]) -> list[list[Any]]:
    """One row per plate; an image without plates (or with an error) still gets one row."""
    base = [record["image"]]
    if "error" in record:
        return [base + [""] * 12 + ["", record["error"]]]
    ms = record["ms"]
    if not record["plates"]:
        return [base + [""] * 12 + [ms, ""]]
    rows = []
    for i, p in enumerate(record["plates"]):
        vb = p["vehicle_box"] or ["", "", "", ""]
        chars = " ".join(f"{c:.3f}" for c in p["char_confidences"])
        rows.append(base + [i, p["text"], p["confidence"], *p["box"], *vb, chars, ms, ""])
    return rows


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from edge.detect.models import add_model_arguments

    parser = subparsers.add_parser(
        "image",
        help="read plates in still images",
        description="Detect and read plates in images (files or folders, searched recursively"
        " for " + ", ".join(sorted(IMAGE_EXTENSIONS)) + "). Prints one JSON line per image.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="one JSON object per image per line (default)",
    )
    fmt.add_argument(
        "--csv",
        dest="format",
        action="store_const",
        const="csv",
        help="CSV: a header, then one row per plate",
    )
    parser.add_argument(
        "--region",
        action="append",
        default=None,
        metavar="REGION",
        help="validate and repair reads with this region's plate formats (O/0, I/1 by "
        "position), e.g. us, eu, br, de, fr, uk; repeatable (default: none)",
    )
    parser.set_defaults(format="json", func=run)
    add_model_arguments(parser)
    return parser


def process_images(
    paths: list[str],
    alpr: Any,
    fmt: str = "json",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``alpr`` on every image; returns the number of inputs that failed."""
    out = out or sys.stdout  # looked up per call: tests and wrappers swap sys.stdout
    err = err or sys.stderr
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    failed = 0
    for path, problem in iter_images(paths):
        try:
            if problem:
                raise ImageError(problem)
            image = read_image(path)
            t0 = time.perf_counter()
            result = alpr.process(image)
            record = result_record(path, result, (time.perf_counter() - t0) * 1e3)
        except ImageError as exc:
            failed += 1
            print(f"platewatch image: {path}: {exc}", file=err)
            record = {"image": path, "plates": [], "error": str(exc)}
        if writer is not None:
            writer.writerows(csv_rows(record))
        else:
            out.write(json.dumps(record) + "\n")
        out.flush()
    return failed


def run(args: argparse.Namespace) -> int:
    from edge.detect.alpr import PROTECT_CONFIDENCE, Alpr
    from edge.detect.models import models_from_args
    from edge.vote.formats import PlateFormats

    try:
        formats = (
            PlateFormats.default(args.region, protect_confidence=PROTECT_CONFIDENCE)
            if args.region
            else None
        )
    except ValueError as exc:
        print(f"platewatch image: error: {exc}", file=sys.stderr)
        return 2
    detector, reader = models_from_args(args)
    alpr = Alpr(detector, reader, formats=formats)
    try:
        failed = process_images(args.paths, alpr, args.format)
    finally:
        alpr.close()
    return 1 if failed else 0
