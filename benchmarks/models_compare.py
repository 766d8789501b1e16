"""Old and new models side by side, in one run: what a model change buys and costs.

    python benchmarks/models_compare.py [--old git:HEAD | --old DIR] [--new models]
        [--data ../shared/data] [--json OUT]

``--old`` is a folder with detector.onnx/reader.onnx (+ .json), or ``git:REF`` for the models
committed at REF (default ``git:HEAD``: the shipped ones, so a freshly trained model in
``models/`` is compared with what it replaces). For each side it prints:

- ``platewatch eval`` on ``openalpr-dev`` (what ``platewatch image`` prints, default filter and
  formats): exact and O/0-I/1-folded read rate per region, plate recall and mean IoU of the
  found plates; and on ``uc3m-lp-val`` plate recall and mean IoU (both evaluation sets: never
  trained on);
- the reader alone on held-out real crops: BR and US (the fixed validation split of
  training.reader.data) and AR (``ar-plate-crops``, its held-out third: reader 0.3 trains on
  the rest, older readers never saw any of it);
- ms per image, ``platewatch image``'s path, models loaded, 1 thread: the median over the
  openalpr-dev scenes, and the median of 20 runs on ``samples/car.jpg`` (720p; one of its two
  cars gets the second look); and the reader's ms per crop at batch 8.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("detector.onnx", "detector.json", "reader.onnx", "reader.json")


def models_dir(spec: str, tmp: Path) -> Path:
    """A folder with the four model files: ``spec`` itself, or extracted from ``git:REF``."""
    if not spec.startswith("git:"):
        return Path(spec)
    ref = spec[4:]
    out = tmp / ref.replace("/", "_")
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        blob = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{ref}:models/{name}"], capture_output=True
        )
        if blob.returncode != 0:
            raise SystemExit(f"models_compare: no models/{name} at {ref}: {blob.stderr.decode()}")
        (out / name).write_bytes(blob.stdout)
    return out


def run_eval(folder: Path, models: Path, out: Path) -> dict:
    # the platewatch command itself, from this interpreter (no reliance on PATH)
    cli = "import sys; from edge.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", cli, "eval", str(folder), "--models", str(models),
           "--json", str(out), "--threads", "1"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    if r.returncode != 0:
        raise SystemExit(f"models_compare: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return json.loads(out.read_text())


def mean_iou(plates: list[dict]) -> float | None:
    ious = [p["iou"] for p in plates if p.get("iou") is not None]
    return round(statistics.fmean(ious), 3) if ious else None


def reader_alone(reader: Path, data: Path) -> dict[str, dict[str, float]]:
    from training.reader.evaluate import evaluate_model

    return {k: v for k, v in evaluate_model(reader, data).items() if k in ("br", "us", "ar")}


def image_ms(models: Path, image: Path) -> float:
    from edge.detect.alpr import Alpr
    from edge.detect.images import read_image
    from edge.detect.models import load_models

    alpr = Alpr(*load_models(models, threads=1))
    img = read_image(str(image))
    for _ in range(3):
        alpr.process_still(img)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        alpr.process_still(img)
        times.append((time.perf_counter() - t0) * 1e3)
    alpr.close()
    return round(statistics.median(times), 1)


def measure(models: Path, data: Path, tmp: Path) -> dict:
    from training.reader.evaluate import latency_ms

    res: dict = {"models": str(models)}
    dev = run_eval(data / "openalpr-dev", models, tmp / "dev.json")
    res["openalpr-dev"] = {
        region: {
            "exact": row["exact_read_rate"],
            "folded": row["folded_read_rate"],
            "recall": row["recall"],
            "false": row["false_detections"],
        }
        for region, row in dev["regions"].items()
    }
    res["openalpr-dev"]["overall"]["iou"] = mean_iou(dev["plates"])
    # what the tables measure: the median over real scenes (most need no second look),
    # beside the one sample image below
    res["openalpr-dev_median_ms"] = dev["regions"]["overall"]["median_ms"]
    uc3m = run_eval(data / "uc3m-lp-val", models, tmp / "uc3m.json")
    row = next(iter(uc3m["regions"].values()))
    res["uc3m-lp-val"] = {"recall": row["recall"], "iou": mean_iou(uc3m["plates"])}
    res["reader_alone"] = reader_alone(models / "reader.onnx", data)
    res["ms_per_720p_image"] = image_ms(models, REPO / "samples" / "car.jpg")
    res["reader_ms_per_crop_b8"] = round(latency_ms(models / "reader.onnx", 8) / 8, 2)
    return res


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def table(old: dict, new: dict) -> str:
    lines = ["| measure | old | new |", "|---|---|---|"]
    for region in new["openalpr-dev"]:
        o, n = old["openalpr-dev"].get(region, {}), new["openalpr-dev"][region]
        lines.append(
            f"| openalpr-dev {region} exact / folded % | {pct(o.get('exact'))} / "
            f"{pct(o.get('folded'))} | {pct(n['exact'])} / {pct(n['folded'])} |"
        )
    o, n = old["openalpr-dev"]["overall"], new["openalpr-dev"]["overall"]
    lines.append(f"| openalpr-dev plate recall % / mean IoU | {pct(o['recall'])} / {o['iou']} | "
                 f"{pct(n['recall'])} / {n['iou']} |")  # fmt: skip
    lines.append(f"| openalpr-dev false detections | {o['false']} | {n['false']} |")
    o, n = old["uc3m-lp-val"], new["uc3m-lp-val"]
    lines.append(f"| uc3m-lp-val plate recall % / mean IoU | {pct(o['recall'])} / {o['iou']} | "
                 f"{pct(n['recall'])} / {n['iou']} |")  # fmt: skip
    for name in new["reader_alone"]:
        o, n = old["reader_alone"].get(name, {}), new["reader_alone"][name]
        lines.append(
            f"| reader alone, held-out {name.upper()} crops (n={n['n']}) exact / folded % | "
            f"{pct(o.get('exact'))} / {pct(o.get('folded'))} | "
            f"{pct(n['exact'])} / {pct(n['folded'])} |"
        )
    scene_ms = [side.get("openalpr-dev_median_ms") for side in (old, new)]
    lines.append(f"| median ms per openalpr-dev scene (1 thread) | {scene_ms[0]} | {scene_ms[1]} |")
    lines.append(f"| ms per 720p image, samples/car.jpg (1 thread) | {old['ms_per_720p_image']} | "
                 f"{new['ms_per_720p_image']} |")  # fmt: skip
    lines.append(f"| reader ms per crop (batch 8, 1 thread) | {old['reader_ms_per_crop_b8']} | "
                 f"{new['reader_ms_per_crop_b8']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old", default="git:HEAD", help="DIR or git:REF (default git:HEAD)")
    ap.add_argument("--new", default=str(REPO / "models"))
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.data / "openalpr-dev").is_dir():
        print(f"models_compare: no openalpr-dev under {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="platewatch-compare-") as t:
        tmp = Path(t)
        sides = {}
        for side, spec in (("old", args.old), ("new", args.new)):
            d = models_dir(spec, tmp / side)
            (tmp / side).mkdir(exist_ok=True)
            sides[side] = measure(d, args.data, tmp / side)
            sides[side]["spec"] = spec
    print(f"old: {args.old}\nnew: {args.new}\n")
    print(table(sides["old"], sides["new"]))
    if args.json:
        args.json.write_text(json.dumps(sides, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
