"""``platewatch image``: read the plates in still images (files or folders).

One JSON line per image on stdout (or CSV with ``--csv``); problems with single files go to
stderr and do not stop the run; the exit code is 1 if any image failed. Each plate is read on a
few crop variants and one read kept (edge.detect.stills); reads that are no plate (an empty
read, a badge's letter) are left out unless ``--all``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO

from edge.detect.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    DecodedImage,
    ImageError,
    decode_image,
    iter_images,
)
from edge.detect.second_look import DEFAULT_SECOND_LOOK, SecondLook
from edge.detect.stills import ReadFilter, StillPlate, StillResult

# Version of the JSON lines / CSV rows below; bumped on any incompatible change.
SCHEMA_VERSION = "1.0"

CSV_HEADER = [
    "schema_version",
    "image",
    "plate",
    "text",
    "confidence",
    "format",
    "region",
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
_PLATE_COLUMNS = len(CSV_HEADER) - 4  # between "image" and "ms"
DEFAULT_FILTER = ReadFilter()


def _int_box(box: tuple[float, ...], scale: float, width: int, height: int) -> list[int]:
    """A box in the file's pixels, as integers (the decoded image may be ``scale`` smaller)."""
    lim = (width, height, width, height)
    return [min(max(0, int(round(v * scale))), m) for v, m in zip(box, lim, strict=True)]


def plate_record(p: StillPlate, image: DecodedImage) -> dict[str, object]:
    """The ``platewatch image`` JSON object for one plate (rounded for humans)."""
    read, vbox = p.plate.read, p.plate.vehicle_box
    return {
        "text": read.text,
        "confidence": round(float(read.confidence), 3),
        "format": p.format,
        "region": p.region,
        "box": _int_box(p.box, image.scale, image.width, image.height),
        "char_confidences": [round(float(c), 3) for c in read.char_confidences],
        "vehicle_box": (
            None if vbox is None else _int_box(vbox, image.scale, image.width, image.height)
        ),
    }


def result_record(
    path: str,
    image: DecodedImage,
    result: StillResult,
    ms: float,
    keep: ReadFilter | None,
    shipped: Any,
) -> dict[str, Any]:
    """One image's JSON object: the plates ``keep`` lets through (None: all of them)."""
    plates = [p for p in result.plates if keep is None or keep.keeps(p.plate.read, shipped)]
    return {
        "schema_version": SCHEMA_VERSION,
        "image": path,
        "width": image.width,
        "height": image.height,
        "plates": [plate_record(p, image) for p in plates],
        "ms": round(ms, 1),
    }


def error_record(path: str, error: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "image": path, "plates": [], "error": error}


def csv_rows(record: dict[str, Any]) -> list[list[Any]]:
    """One row per plate; an image without plates (or with an error) still gets one row."""
    base = [record["schema_version"], record["image"]]
    if "error" in record:
        return [base + [""] * _PLATE_COLUMNS + ["", record["error"]]]
    ms = record["ms"]
    if not record["plates"]:
        return [base + [""] * _PLATE_COLUMNS + [ms, ""]]
    rows = []
    for i, p in enumerate(record["plates"]):
        vb = p["vehicle_box"] or ["", "", "", ""]
        chars = " ".join(f"{c:.3f}" for c in p["char_confidences"])
        fields = [i, p["text"], p["confidence"], p["format"] or "", p["region"] or ""]
        rows.append(base + fields + [*p["box"], *vb, chars, ms, ""])
    return rows


def _pixels(value: str) -> int:
    try:
        n = int(float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of pixels: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return n


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The options deciding which reads are printed (shared with ``platewatch eval``)."""
    defaults = DEFAULT_FILTER
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=defaults.min_confidence,
        metavar="X",
        help="leave out reads whose least sure character is below X (default "
        f"{defaults.min_confidence})",
    )
    parser.add_argument(
        "--min-length",
        type=int,
        default=defaults.min_length,
        metavar="N",
        help="leave out reads shorter than N characters, and reads fitting no plate format "
        f"at all (default {defaults.min_length}, as voting.min_plate_length)",
    )
    parser.add_argument(
        "--all",
        dest="keep_all",
        action="store_true",
        help="keep every plate the detector found, however it read (empty reads included)",
    )


def add_second_look_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-second-look`` (shared with ``platewatch eval``)."""
    parser.add_argument(
        "--no-second-look",
        dest="second_look",
        action="store_false",
        help="skip the detector's second look at vehicles whose plate it did not surely find "
        "(faster; misses more small plates)",
    )


def second_look_from_args(args: argparse.Namespace) -> SecondLook | None:
    return DEFAULT_SECOND_LOOK if args.second_look else None


def filter_from_args(args: argparse.Namespace) -> ReadFilter | None:
    if args.keep_all:
        return None
    return ReadFilter(min_confidence=args.min_confidence, min_length=args.min_length)


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
        "position), e.g. us, eu, br, de, fr, uk; repeatable. Default: no region; a plate is "
        "then only read in a country's format when one of its crops was read so",
    )
    add_filter_arguments(parser)
    add_second_look_argument(parser)
    parser.add_argument(
        "--max-pixels",
        type=_pixels,
        default=MAX_PIXELS,
        metavar="N",
        help="refuse images that would decode to more than N pixels (default "
        f"{MAX_PIXELS:.0e}; large JPEGs decode at 1/2, 1/4 or 1/8 and count at that size)",
    )
    parser.add_argument(
        "--full-resolution",
        action="store_true",
        help="never decode a large JPEG reduced (by default one keeps at least 10x the "
        "detector's input size on its long side)",
    )
    parser.set_defaults(format="json", func=run)
    add_model_arguments(parser)
    return parser


def _load(
    path: str, problem: str | None, max_pixels: int, min_long_side: int | None
) -> DecodedImage:
    if problem:
        raise ImageError(problem)
    return decode_image(path, max_pixels, min_long_side)


def decoded_images(
    paths: list[str],
    max_pixels: int = MAX_PIXELS,
    min_long_side: int | None = None,
    prefetch: bool = True,
) -> Iterator[tuple[str, DecodedImage | ImageError]]:
    """(path, decoded image or the reason it is not) for every input, in order. ``prefetch``:
    the next file is read and decoded in a worker thread while the caller works on this one
    (file reads and OpenCV decoding release the GIL, so the models' thread loses nothing);
    at most two decoded images are alive at a time."""
    items = iter_images(paths)
    if not prefetch:
        for path, problem in items:
            try:
                yield path, _load(path, problem, max_pixels, min_long_side)
            except ImageError as exc:
                yield path, exc
        return
    with ThreadPoolExecutor(1, thread_name_prefix="image-decode") as pool:
        pending: deque[tuple[str, Future[DecodedImage]]] = deque()
        for path, problem in items:
            pending.append((path, pool.submit(_load, path, problem, max_pixels, min_long_side)))
            if len(pending) > 1:
                yield _outcome(*pending.popleft())
        while pending:
            yield _outcome(*pending.popleft())


def _outcome(path: str, future: Future[DecodedImage]) -> tuple[str, DecodedImage | ImageError]:
    try:
        return path, future.result()
    except ImageError as exc:
        return path, exc


def process_images(
    paths: list[str],
    alpr: Any,
    fmt: str = "json",
    out: TextIO | None = None,
    err: TextIO | None = None,
    keep: ReadFilter | None = DEFAULT_FILTER,
    max_pixels: int = MAX_PIXELS,
    min_long_side: int | None = None,
    prefetch: bool = True,
) -> int:
    """Run ``alpr`` on every image; returns the number of inputs that failed."""
    out = out or sys.stdout  # looked up per call: tests and wrappers swap sys.stdout
    err = err or sys.stderr
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    failed = 0
    for path, decoded in decoded_images(paths, max_pixels, min_long_side, prefetch):
        try:
            if isinstance(decoded, ImageError):
                raise decoded
            t0 = time.perf_counter()
            result = alpr.process_still(decoded.image)
            ms = (time.perf_counter() - t0) * 1e3
            record = result_record(path, decoded, result, ms, keep, alpr.shipped_formats)
        except ImageError as exc:
            failed += 1
            print(f"platewatch image: {path}: {exc}", file=err)
            record = error_record(path, str(exc))
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
    alpr = Alpr(detector, reader, formats=formats, second_look=second_look_from_args(args))
    # Plates stay readable in a reduced decode while a plate the detector can find (~12 px of
    # its input) keeps about the reader's width (~120 px): 10x the detector input.
    min_long_side = None if args.full_resolution else 10 * max(detector.spec.input_size)
    try:
        failed = process_images(
            args.paths,
            alpr,
            args.format,
            keep=filter_from_args(args),
            max_pixels=args.max_pixels,
            min_long_side=min_long_side,
        )
    finally:
        alpr.close()
    return 1 if failed else 0
