"""Render models/detector.md (the model card) from measured figures only: detector.json's
metrics (written by evaluate), the Ultralytics run folder (args.yaml, results.csv) and the
dataset manifest written by build_data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml


def _run_summary(run_dir: Path) -> dict:
    args = (
        yaml.safe_load((run_dir / "args.yaml").read_text())
        if (run_dir / "args.yaml").exists()
        else {}
    )
    rows: list[dict] = []
    if (run_dir / "results.csv").exists():
        with (run_dir / "results.csv").open() as f:
            rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    last = rows[-1] if rows else {}
    return {
        "imgsz": args.get("imgsz"),
        "batch": args.get("batch"),
        "time_budget_h": args.get("time"),
        "epochs_done": len(rows),
        "train_seconds": float(last.get("time", 0) or 0),
        "val_map50": last.get("metrics/mAP50(B)"),
    }


def render_card(meta: dict, run_dir: Path, manifest_path: Path, onnx_path: Path) -> str:
    m = meta.get("metrics", {})
    run = _run_summary(run_dir)
    counts = json.loads(manifest_path.read_text())["counts"] if manifest_path.exists() else {}
    size_mb = onnx_path.stat().st_size / 1e6 if onnx_path.exists() else float("nan")
    h, w = meta["input_size"]
    lines = [
        "# platewatch detector (vehicle + plate)",
        "",
        f"- File: `detector.onnx` ({size_mb:.1f} MB), sha256 `{meta['onnx_sha256']}`",
        f"- Architecture: Ultralytics `yolov5n.yaml` (anchor-free head), classes "
        f"{meta['classes']}, input {h}x{w} RGB [0,1] letterboxed (pad 114), output "
        f"`{meta.get('output_shape')}` raw Ultralytics head, decoded by "
        f"`edge.detect.vision.decode_yolo` "
        f"(conf {meta['conf_threshold']}, IoU {meta['iou_threshold']}).",
        "- Initialisation: backbone + neck (layers 0-23, 342 tensors) of the official COCO "
        "YOLOv5n checkpoint, read with a permissive unpickler (`training/detector/checkpoint.py`);"
        " head trained from scratch.",
        f"- Export parity (PyTorch vs ONNX Runtime, same letterboxed image): max abs diff "
        f"{meta.get('parity_max_abs_diff', float('nan')):.2e}.",
        "",
        "## Training data (never openalpr-dev or uc3m-lp-val)",
        "",
        f"- car-plates-mixed real photos: {counts.get('real_train', '?')} train / "
        f"{counts.get('real_val', '?')} val; plate boxes from the labels, vehicle boxes from the "
        "COCO YOLOv5n teacher (car, motorcycle, bus, truck; conf >= 0.3).",
        f"- {counts.get('scene', '?')} scenes: a car-plates-mixed photo shrunk into a plate-free "
        "background (small plates in context).",
        f"- {counts.get('paste', '?')} composites: real plate crops (eu-plate-crops, "
        "br-plate-crops, openalpr-us-crops) perspective-warped onto teacher vehicles or "
        "anywhere in backgrounds.",
        f"- {counts.get('neg', '?')} plate-free backgrounds (hard negatives; teacher vehicles "
        "only).",
        f"- {counts.get('team_synth', 0)} rendered synthetic plates from `training.synth`.",
        "",
        "## Training",
        "",
        f"- imgsz {run['imgsz']}, batch {run['batch']}, {run['epochs_done']} epochs in "
        f"{run['train_seconds'] / 60:.0f} min on a shared 2-core CPU (1 thread; time budget "
        f"{run['time_budget_h']} h), AdamW (Ultralytics auto), mosaic, no horizontal flip. "
        f"Final val mAP50 (internal val split): {run['val_map50']}.",
        "- Commands:",
        "",
        "```",
        f"python -m training.detector.build_data --n-synth {counts.get('team_synth', 0)}",
        f"python -m training.detector.train --imgsz {run['imgsz']} --hours {run['time_budget_h']}",
        "python -m training.detector.train --resume   # after an interruption",
        f"python -m training.detector.export --imgsz {h}",
        "python -m training.detector.evaluate --write",
        "```",
        "",
        "## Measured (python -m training.detector.evaluate, ONNX Runtime, 1 thread)",
        "",
    ]
    if m:
        lines += [
            f"Plates: IoU > {m['plate_iou']}; vehicles: IoU > {m['vehicle_iou']} against the COCO "
            f"teacher's labels (not human labels). conf {m['conf_threshold']}. openalpr-dev labels "
            "one plate per image, so other visible plates count as false positives: precision is "
            "a lower bound.",
            "",
            "| set | class | images | truths | recall | precision |",
            "|---|---|---|---|---|---|",
        ]
        for name, d in m["sets"].items():
            for cls, c in d.items():
                lines.append(
                    f"| {name} | {cls} | {c['n_images']} | {c['n_truth']} | "
                    f"{c['recall']:.3f} | {c['precision']:.3f} |"
                )
        lines += [
            "",
            f"Latency: median {m['onnx_ms_1thread_median']} ms per frame "
            f"(ONNX Runtime, 1 thread, {h}x{w}, on the shared dev CPU, over the eval frames).",
        ]
    else:
        lines.append("Not measured yet: run `python -m training.detector.evaluate --write`.")
    lines += [
        "",
        "## Limits",
        "",
        "- Vehicle labels are the COCO teacher's, so vehicle recall is agreement with the teacher.",
        "- Plates below ~10 px high at the input size are often missed (US 1280x720 frames at "
        f"{w} px give plates of ~10-14 px).",
        "- Licence: AGPL-3.0 (Ultralytics, AGPL-3.0 training data).",
        "",
    ]
    return "\n".join(lines)
