"""``platewatch eval DIR``: score detection and reading on a labelled folder (edge.eval)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from edge.eval.evaluate import (
    MATCH_IOU,
    detect_format,
    evaluate,
    format_table,
    formats_chooser,
    load_openalpr,
    load_yolo,
    report,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from edge.cli.image import add_filter_arguments, add_second_look_argument
    from edge.detect.models import add_model_arguments

    parser = subparsers.add_parser(
        "eval",
        help="score detection and reading on a labelled folder",
        description="Plate recall (IoU > 0.4), exact and O/0-I/1-folded read rates, false "
        "detections and reader accuracy on ground-truth crops, per region and overall.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="labelled folder")
    parser.add_argument(
        "--format",
        choices=["auto", "openalpr", "yolo"],
        default="auto",
        help="label format (auto: detected from the first label file)",
    )
    parser.add_argument(
        "--plate-class",
        type=int,
        default=None,
        metavar="ID",
        help="yolo: class id of plates (default: every box is a plate)",
    )
    parser.add_argument(
        "--texts",
        type=Path,
        default=None,
        metavar="CSV",
        help="yolo: CSV of file,text rows giving plate texts",
    )
    parser.add_argument(
        "--json",
        dest="json_out",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write the metrics and per-plate details as JSON",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N images (quick checks)",
    )
    parser.add_argument(
        "--region",
        default="auto",
        metavar="REGION",
        help="plate formats that validate/repair reads: 'auto' (each sample's region folder, "
        "when platewatch knows its formats), 'none' (no region chosen, as `platewatch image` "
        "without --region), or a comma list (default auto)",
    )
    add_filter_arguments(parser)
    add_second_look_argument(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from edge.cli.image import filter_from_args, second_look_from_args
    from edge.detect.alpr import Alpr
    from edge.detect.models import models_from_args

    root: Path = args.folder
    if not root.is_dir():
        print(f"platewatch eval: error: {root}: not a folder", file=sys.stderr)
        return 2
    try:
        fmt = detect_format(root) if args.format == "auto" else args.format
        samples = (
            load_openalpr(root)
            if fmt == "openalpr"
            else load_yolo(root, args.plate_class, args.texts)
        )
    except (ValueError, OSError) as exc:
        print(f"platewatch eval: error: {exc}", file=sys.stderr)
        return 2
    if not samples:
        print(f"platewatch eval: error: no labelled images in {root} ({fmt})", file=sys.stderr)
        return 2
    samples = samples[: args.limit] if args.limit else samples
    try:
        formats_for = formats_chooser(args.region)
    except ValueError as exc:
        print(f"platewatch eval: error: {exc}", file=sys.stderr)
        return 2
    detector, reader = models_from_args(args)
    alpr = Alpr(detector, reader, second_look=second_look_from_args(args))
    from edge.app.progress import Progress

    bar = Progress(len(samples), unit="image")
    try:
        keep = filter_from_args(args)
        tallies, details = evaluate(samples, alpr, formats_for, keep, on_sample=bar.update_to)
    except ValueError as exc:
        print(f"platewatch eval: error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
        alpr.close()
    rows = report(tallies)
    print(
        f"{root} ({fmt}, {len(samples)} images, match IoU > {MATCH_IOU}, "
        f"plate formats: {args.region}, "
        + ("every read" if keep is None else f"reads kept: {keep}")
        + ")"
    )
    print(format_table(rows))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(
            json.dumps(
                {
                    "folder": str(root),
                    "format": fmt,
                    "match_iou": MATCH_IOU,
                    "plate_formats": args.region,
                    "read_filter": None if keep is None else dataclasses.asdict(keep),
                    "crop_variants": [dataclasses.asdict(v) for v in alpr.still_variants],
                    "second_look": (
                        None if alpr.second_look is None else dataclasses.asdict(alpr.second_look)
                    ),
                    "detector": str(detector.path),
                    "reader": str(reader.path),
                    "regions": rows,
                    "plates": details,
                },
                indent=2,
            )
        )
    return 0
