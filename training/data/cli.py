"""``platewatch`` data subcommands: import-labels, extract-frames, crop-plates.

``add_subparsers(subparsers)`` registers them on the CLI's subparsers object; each sets
``func`` (``args -> int`` exit status) with ``set_defaults``, so the main CLI only calls
``args.func(args)``. ``python -m training.data.cli ...`` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from training.data.records import PLATE, VEHICLE


def parse_class_map(spec: str | None) -> dict[int, str | None] | str | None:
    """``"15=plate,2=vehicle,7=-"`` -> {15: plate, 2: vehicle, 7: None}; ``"plate"`` -> every id
    is a plate; None -> importer default (classes.txt, else every id a plate)."""
    if not spec:
        return None
    names = {"plate": PLATE, "vehicle": VEHICLE, "-": None, "none": None}
    if "=" not in spec:
        if spec not in names or names[spec] is None:
            raise argparse.ArgumentTypeError(f"--class-map: {spec!r} is not plate or vehicle")
        return names[spec]
    out: dict[int, str | None] = {}
    for part in spec.split(","):
        cid, _, name = part.partition("=")
        try:
            out[int(cid)] = names[name.strip().lower()]
        except (ValueError, KeyError):
            raise argparse.ArgumentTypeError(
                f"--class-map: {part!r} is not ID=plate|vehicle|-"
            ) from None
    return out


def cmd_import_labels(args: argparse.Namespace) -> int:
    from training.data.importers import scan_path

    result = scan_path(args.path, args.format, class_map=parse_class_map(args.class_map))
    summary = result.summary()
    if args.to_yolo:
        from training.data.dataset import write_yolo_dataset

        ds = write_yolo_dataset(
            _with_progress(result.records, "image"),
            args.to_yolo,
            val_fraction=args.val_fraction,
            copy=args.copy,
            overwrite=args.overwrite,
        )
        summary["yolo_dataset"] = {
            "data_yaml": str(ds.data_yaml),
            "images": ds.images,
            "boxes": ds.boxes,
            "dropped_boxes": ds.dropped_boxes,
            "renamed": ds.renamed,
        }
    if args.json:
        summary["problems"] = [str(p) for p in result.problems]
        summary["unlabelled"] = [str(p) for p in result.unlabelled_images]
        summary["orphans"] = [str(p) for p in result.orphan_labels]
        print(json.dumps(summary, indent=2))
        return 0 if not summary["errors"] else 1
    print(
        f"{summary['root']}: {summary['images']} images, {summary['labelled_images']} "
        f"labelled, {summary['boxes']} boxes ({summary['plates']} plates, "
        f"{summary['vehicles']} vehicles)"
    )
    for fmt, c in sorted(result.by_format().items()):
        print(f"  {fmt:13s} {c['images']:6d} images {c['boxes']:7d} boxes")
    print(
        f"  unlabelled images: {summary['unlabelled_images']}, label files without image: "
        f"{summary['orphan_labels']}, degenerate boxes: {summary['degenerate_boxes']}, "
        f"errors: {summary['errors']}, warnings: {summary['warnings']}"
    )
    shown = [str(p) for p in result.problems]
    shown += [f"no image for label: {p}" for p in result.orphan_labels]
    shown += [f"no label for image: {p}" for p in result.unlabelled_images]
    for line in shown[: args.show]:
        print(f"    {line}")
    if len(shown) > args.show:
        print(f"    ... {len(shown) - args.show} more (--show N)")
    if args.to_yolo:
        d = summary["yolo_dataset"]
        print(
            f"wrote {d['data_yaml']}: images {d['images']}, boxes {d['boxes']}, "
            f"dropped degenerate {d['dropped_boxes']}"
        )
    return 0 if not summary["errors"] else 1


def cmd_extract_frames(args: argparse.Namespace) -> int:
    from training.data.frames import extract_frames

    paths = extract_frames(
        args.video, args.out, every=args.every, min_diff=args.min_diff, max_frames=args.max_frames
    )
    print(f"wrote {len(paths)} frames to {args.out}")
    return 0 if paths else 1


def cmd_crop_plates(args: argparse.Namespace) -> int:
    from training.data.crops import crop_plates
    from training.data.importers import scan_path

    result = scan_path(args.path, args.format, class_map=parse_class_map(args.class_map))
    crops = crop_plates(
        _with_progress(result.records, "image"),
        args.out,
        margin=args.margin,
        include_unread=args.include_unread,
        labels_csv=args.csv,
    )
    read = sum(c.text is not None for c in crops)
    print(f"wrote {len(crops)} crops ({read} with text) to {args.out}")
    return 0


def _add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="label folder (mixed formats) or one label file")
    p.add_argument(
        "--format",
        default="auto",
        help="auto, or comma list of voc,yolo,createml,coco,imglab,openalpr,openalpr-csv,filename",
    )
    p.add_argument(
        "--class-map",
        default=None,
        help="YOLO ids: '15=plate,2=vehicle' or 'plate' (every id); default: "
        "classes.txt, else every id is a plate",
    )


def _with_progress(items: list, unit: str):  # type: ignore[no-untyped-def]
    """``items``, drawing a progress bar on stderr (a terminal only) while they are consumed."""
    from edge.app.progress import Progress

    bar = Progress(len(items), unit=unit)
    try:
        for n, item in enumerate(items, 1):
            yield item
            bar.update_to(n)
    finally:
        bar.close()


def _reporting(func):  # type: ignore[no-untyped-def]
    """A data command's failure is one clear line and exit 2 (never a traceback): an existing
    output folder, an unreadable video, a label folder that is not one."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except (OSError, ValueError) as exc:
            print(f"platewatch {args.command}: error: {exc}", file=sys.stderr)
            return 2

    return run


def add_subparsers(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "import-labels",
        help="read labels in any supported format, summarise them, optionally write a YOLO dataset",
        description="Read a folder of plate/vehicle labels in mixed formats (Pascal VOC, YOLO, "
        "COCO, CreateML, imglab, openalpr TSV/CSV, text in file names), report what was found "
        "and every problem, and optionally write an Ultralytics YOLO dataset. Exit 1 when a "
        "label file had errors, 2 when the command could not run.",
        formatter_class=fmt,
    )
    _add_import_args(p)
    p.add_argument("--to-yolo", type=Path, metavar="OUT", help="write an Ultralytics dataset")
    p.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of images in the val split"
    )
    p.add_argument("--copy", action="store_true", help="copy images instead of symlinking")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the images/labels of an existing OUT"
    )
    p.add_argument("--show", type=int, default=10, help="problems to list")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_reporting(cmd_import_labels))

    p = subparsers.add_parser(
        "extract-frames",
        help="every Nth video frame, minus duplicates",
        description="Write every Nth frame of a video as a JPEG (NAME_FRAME.jpg), skipping "
        "frames that hardly differ from the last one kept: frames to label for training. "
        "Exit 2 when the video cannot be read.",
        formatter_class=fmt,
    )
    p.add_argument("video", type=Path, help="video file")
    p.add_argument("out", type=Path, help="folder for the JPEG frames (created)")
    p.add_argument("--every", type=int, default=10, help="look at every Nth frame")
    p.add_argument(
        "--min-diff",
        type=float,
        default=2.0,
        help="skip frames whose mean grey difference to the last kept is below this (0: keep all)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.set_defaults(func=_reporting(cmd_extract_frames))

    p = subparsers.add_parser(
        "crop-plates",
        help="cut plate crops (NNNNN_TEXT.jpg) from labels",
        description="Cut every labelled plate out of its image (grown by --margin), named "
        "NNNNN_TEXT.jpg like the reader's training crops, or NNNNN.jpg with --csv.",
        formatter_class=fmt,
    )
    _add_import_args(p)
    p.add_argument("out", type=Path, help="folder for the crops (created)")
    p.add_argument("--margin", type=float, default=0.08, help="grow each box by this share")
    p.add_argument("--include-unread", action="store_true", help="also plates without text")
    p.add_argument(
        "--csv", action="store_true", help="name crops NNNNN.jpg and write text to labels.csv"
    )
    p.set_defaults(func=_reporting(cmd_crop_plates))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="platewatch-data")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
