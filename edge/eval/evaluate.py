"""``platewatch eval``: score the whole pipeline on a labelled folder.

Formats:
- ``openalpr``: the openalpr benchmark layout, ``NAME.txt`` beside ``NAME.jpg`` with
  tab-separated lines ``file x y w h TEXT``; first-level sub-folders (us/eu/br) are regions.
- ``yolo``: ``NAME.txt`` YOLO lines ``class cx cy w h`` (normalised) beside each image or in the
  ``labels/`` twin of its ``images/`` folder (Ultralytics, ``import-labels --to-yolo``); plate
  text optional, from ``NAME.plate.txt`` (one text per plate box, in label order) or
  ``--texts CSV`` (``file,text`` rows, in label order for images with several plates).

Metrics, per region and overall, of the still-image path ``platewatch image`` runs
(``Alpr.process_still``: crop variants, one read kept per plate, then its read filter): plate
recall (a labelled plate counts as found when a predicted plate box overlaps it with IoU > 0.4,
one-to-one; every detected plate counts, read or not), exact read rate (end to end: found, kept
by the filter AND read exactly), O/0-I/1-folded read rate, false detections (kept plates
matching no label; note openalpr-dev labels one plate per image, so other real plates in a
scene count here), filtered (found labelled plates whose read the filter drops), and OCR
accuracy on ground-truth crops (the reader alone on the labelled boxes, the usual 8 % crop).

Labels are read by edge.eval.labels (the same parsers the training importers use), so
evaluation runs on a runtime-only install without the training package.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.alpr import PROTECT_CONFIDENCE, apply_formats
from edge.detect.images import ImageError, read_image
from edge.detect.plate_input import expand_box
from edge.detect.stills import ReadFilter
from edge.detect.vision import box_iou
from edge.eval.labels import (
    IMAGE_SUFFIXES,
    is_openalpr_line,
    parse_openalpr_line,
    parse_yolo_line,
    yolo_label_for,
)
from edge.vote.text import fold_confusables

MATCH_IOU = 0.4
ALL = "all"


@dataclass
class LabelledPlate:
    box: tuple[float, float, float, float]  # xyxy pixels
    text: str | None


@dataclass
class Sample:
    image: Path
    region: str
    plates: list[LabelledPlate] = field(default_factory=list)


def fold(text: str) -> str:
    """Collapse the confusions a plate font makes ambiguous (O/0, I/1)."""
    return fold_confusables(text.upper())


def _region_of(path: Path, root: Path) -> str:
    """The first sub-folder names the region (openalpr's us/eu/br); the folders of a YOLO
    dataset (images/, labels/) are no region."""
    rel = path.relative_to(root)
    if len(rel.parts) <= 1 or rel.parts[0] in ("images", "labels"):
        return ALL
    return rel.parts[0]


def load_openalpr(root: Path) -> list[Sample]:
    samples: dict[Path, Sample] = {}
    for txt in sorted(root.rglob("*.txt")):
        if txt.name.endswith(".plate.txt"):
            continue
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                label = parse_openalpr_line(line)
            except ValueError as exc:
                raise ValueError(f"{txt}:{lineno}: {exc}") from exc
            image = txt.parent / label.file
            sample = samples.setdefault(image, Sample(image, _region_of(txt, root)))
            sample.plates.append(LabelledPlate(label.box, label.text))
    return list(samples.values())


def _read_texts_csv(path: Path) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 2 or row[0].strip().lower() in ("file", "image", "filename"):
                continue
            key = Path(row[0].strip()).name
            texts.setdefault(key, []).append(row[1].strip().upper())
    return texts


def load_yolo(
    root: Path, plate_class: int | None = None, texts_csv: Path | None = None
) -> list[Sample]:
    """Images with a YOLO label beside them or in the ``labels/`` twin of their ``images/``
    folder (what ``platewatch import-labels --to-yolo`` writes, and Ultralytics sets)."""
    import cv2

    texts = _read_texts_csv(texts_csv) if texts_csv else {}
    samples = []
    for image in sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES):
        label = yolo_label_for(image)
        if label is None:
            continue
        pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)  # YOLO boxes are normalised
        if pixels is None:
            raise ValueError(f"{image}: unreadable image")
        height, width = pixels.shape[:2]
        boxes = []
        for lineno, line in enumerate(label.read_text().splitlines(), 1):
            try:
                parsed = parse_yolo_line(line)
            except ValueError as exc:
                raise ValueError(f"{label}:{lineno}: {exc}") from exc
            if parsed is None or (plate_class is not None and parsed.class_id != plate_class):
                continue
            boxes.append(parsed.in_pixels(width, height))
        side = image.with_name(image.stem + ".plate.txt")
        plate_texts = (
            [t.strip().upper() for t in side.read_text().splitlines() if t.strip()]
            if side.is_file()
            else texts.get(image.name, [])
        )
        plates = [
            LabelledPlate(b, plate_texts[i] if i < len(plate_texts) else None)
            for i, b in enumerate(boxes)
        ]
        samples.append(Sample(image, _region_of(image, root), plates))
    return samples


def detect_format(root: Path) -> str:
    """openalpr if some label line has the six-field TSV shape, else yolo."""
    for txt in root.rglob("*.txt"):
        if txt.name.endswith(".plate.txt"):
            continue
        first = next((ln for ln in txt.read_text(errors="replace").splitlines() if ln.strip()), "")
        if is_openalpr_line(first):
            return "openalpr"
        if first.split():
            return "yolo"
    raise ValueError(f"{root}: no label files (*.txt) found")


def match_plates(gt: np.ndarray, pred: np.ndarray, min_iou: float = MATCH_IOU) -> list[int | None]:
    """One-to-one greedy matching, highest IoU first: for each GT box, a pred index or None."""
    out: list[int | None] = [None] * len(gt)
    if len(gt) == 0 or len(pred) == 0:
        return out
    iou = box_iou(gt, pred)
    used: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        g, p = divmod(int(flat), iou.shape[1])
        if iou[g, p] <= min_iou:
            break
        if out[g] is None and p not in used:
            out[g] = p
            used.add(p)
    return out


@dataclass
class Tally:
    images: int = 0
    plates: int = 0
    found: int = 0
    with_text: int = 0
    exact: int = 0
    folded: int = 0
    false_detections: int = 0
    filtered: int = 0
    gt_crops: int = 0
    ocr_exact: int = 0
    ocr_folded: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in (
            "images",
            "plates",
            "found",
            "with_text",
            "exact",
            "folded",
            "false_detections",
            "filtered",
            "gt_crops",
            "ocr_exact",
            "ocr_folded",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ms.extend(other.ms)

    def summary(self) -> dict[str, Any]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        return {
            "images": self.images,
            "plates": self.plates,
            "recall": rate(self.found, self.plates),
            "exact_read_rate": rate(self.exact, self.with_text),
            "folded_read_rate": rate(self.folded, self.with_text),
            "false_detections": self.false_detections,
            "filtered": self.filtered,
            "ocr_gt_crops_exact": rate(self.ocr_exact, self.gt_crops),
            "ocr_gt_crops_folded": rate(self.ocr_folded, self.gt_crops),
            "median_ms": round(statistics.median(self.ms), 1) if self.ms else None,
        }


def evaluate(
    samples: Iterable[Sample],
    alpr: Any,
    formats_for: Any = None,
    keep: ReadFilter | None = None,
    on_sample: Callable[[int], None] | None = None,
) -> tuple[dict[str, Tally], list[dict[str, Any]]]:
    """Run the still-image path (``Alpr.process_still``, as ``platewatch image``) on every
    sample; per-region tallies and a per-plate detail list.

    ``formats_for(region)`` gives the plate formats that validate the reads of a sample's region
    (None: no region chosen), as OpenALPR's benchmark runs each country with its own
    configuration. ``keep``: the reads ``platewatch image`` prints (None: every read). Recall
    counts every detected plate; read rates and false detections only the plates kept, so a
    labelled plate whose read the filter drops counts as not read (and in ``filtered``)."""
    tallies: dict[str, Tally] = {}
    details: list[dict[str, Any]] = []
    for done, sample in enumerate(samples, 1):
        if on_sample is not None:
            on_sample(done)
        t = tallies.setdefault(sample.region, Tally())
        try:
            image = read_image(str(sample.image))
        except ImageError as exc:
            raise ValueError(f"{sample.image}: {exc}") from exc
        t0 = time.perf_counter()
        formats = formats_for(sample.region) if formats_for is not None else None
        results = alpr.process_still(image, formats).plates
        t.ms.append((time.perf_counter() - t0) * 1e3)
        t.images += 1
        kept = [keep is None or keep.keeps(r.plate.read, alpr.shipped_formats) for r in results]
        gt = np.array([p.box for p in sample.plates], dtype=np.float32).reshape(-1, 4)
        pred = np.array([r.box for r in results], dtype=np.float32).reshape(-1, 4)
        matches = match_plates(gt, pred)
        t.false_detections += sum(kept) - sum(m is not None and kept[m] for m in matches)
        h, w = image.shape[:2]
        crops = [
            image[y1:y2, x1:x2]
            for x1, y1, x2, y2 in (expand_box(p.box, w, h) for p in sample.plates)
        ]
        gt_reads = [apply_formats(r, formats) for r in alpr.reader.read(crops)]
        iou = box_iou(gt, pred) if len(pred) else np.zeros((len(gt), 0), np.float32)
        for g, (plate, m, gt_read) in enumerate(zip(sample.plates, matches, gt_reads, strict=True)):
            t.plates += 1
            t.found += m is not None
            t.filtered += m is not None and not kept[m]
            pred_text = results[m].text if m is not None and kept[m] else None
            if plate.text:
                t.with_text += 1
                t.exact += pred_text == plate.text
                t.folded += pred_text is not None and fold(pred_text) == fold(plate.text)
                t.gt_crops += 1
                t.ocr_exact += gt_read.text == plate.text
                t.ocr_folded += fold(gt_read.text) == fold(plate.text)
            details.append(
                {
                    "image": str(sample.image),
                    "region": sample.region,
                    "text": plate.text,
                    "found": m is not None,
                    "read": pred_text,
                    "read_before_filter": None if m is None else results[m].text,
                    "confidence": None if m is None else round(results[m].confidence, 3),
                    "format": None if m is None else results[m].format,
                    "variant": None if m is None else results[m].variant,
                    "gt_crop_read": gt_read.text,
                    "iou": None if m is None else round(float(iou[g, m]), 3),
                }
            )
    return tallies, details


def report(tallies: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    """Per-region summaries plus the overall row (always last)."""
    total = Tally()
    rows = {}
    for region in sorted(tallies):
        rows[region] = tallies[region].summary()
        total.add(tallies[region])
    if list(rows) != [ALL]:
        rows["overall"] = total.summary()
    return rows


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    cols = [
        ("region", 8),
        ("images", 6),
        ("plates", 6),
        ("recall", 7),
        ("exact", 7),
        ("folded", 7),
        ("false_det", 9),
        ("filtered", 8),
        ("ocr_gt", 7),
        ("ocr_gt_fold", 11),
        ("ms_med", 7),
    ]
    keys = [
        "images",
        "plates",
        "recall",
        "exact_read_rate",
        "folded_read_rate",
        "false_detections",
        "filtered",
        "ocr_gt_crops_exact",
        "ocr_gt_crops_folded",
        "median_ms",
    ]

    def fmt(key: str, v: Any) -> str:
        if v is None:
            return "-"
        if key in (
            "recall",
            "exact_read_rate",
            "folded_read_rate",
            "ocr_gt_crops_exact",
            "ocr_gt_crops_folded",
        ):
            return f"{100 * v:.1f}%"
        return str(v)

    lines = ["  ".join(name.rjust(w) for name, w in cols)]
    for region, row in rows.items():
        cells = [region] + [fmt(k, row[k]) for k in keys]
        lines.append("  ".join(c.rjust(w) for c, (_, w) in zip(cells, cols, strict=True)))
    return "\n".join(lines)


def formats_chooser(spec: str) -> Any:
    """``--region`` -> a function region -> PlateFormats | None (cached per region)."""
    from edge.vote.formats import PlateFormats

    if spec == "none":
        return None
    if spec != "auto":
        fixed = PlateFormats.default(
            [r.strip() for r in spec.split(",") if r.strip()],
            protect_confidence=PROTECT_CONFIDENCE,
        )
        return lambda region: fixed
    cache: dict[str, Any] = {}

    def choose(region: str) -> Any:
        if region not in cache:
            try:
                cache[region] = PlateFormats.default(
                    [region], protect_confidence=PROTECT_CONFIDENCE
                )
            except ValueError:  # a folder name platewatch has no formats for
                cache[region] = None
        return cache[region]

    return choose
