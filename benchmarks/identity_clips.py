"""One event per vehicle on clips made from real photos: right / missed / wrong / merged /
duplicated per motion pattern, dev and held-out, single-frame vs voted, and latency.

    python benchmarks/identity_clips.py [--split dev,held-out] [--patterns gate_queue,...]
        [--sample-every 1,3] [--models DIR] [--json OUT] [--keep DIR] [--threads 1]
        [--set tracking.plate.empty_max_age=5,10,20 ...] [--verbose]

Vehicles are cut out of the labelled photos of ``openalpr-dev/{us,eu,br}`` (``$PLATEWATCH_DATA``
or ``../shared/data``; an evaluation set: nothing is trained on it). Backgrounds are real
``ro-dashcam`` frames and the wide ``world-plate-scenes`` photos with their labelled plates
painted out, and plate-free ``backgrounds`` scenes. Both
are split by a stable hash of the source name (``training.synth.motion.split_of``): the
**dev** half is what thresholds were chosen on, the **held-out** half is never looked at while
tuning. Each pattern of ``training.synth.motion.PATTERNS`` is rendered once per split at
1920x1080, 25 fps (motion blur, noise, mp4), then replayed through the detector, reader and
`CameraAnalyzer` (the runtime's tracking, linking and voting, with the shipped defaults) at
each sampling rate: every frame, every 3rd, ... (``pop_in`` at 3, 4 and 5).

The detector and reader run once per clip (their results do not depend on the sampling rate
or on tracking/voting settings); ``--keep DIR`` keeps the clips and those results, so a second
run with ``--set`` sweeps settings in seconds (one setting changed at a time around the
defaults; a table of totals per value and split). Scoring is edge.eval.identity's.
"readable" vehicles are those whose plate the reader got
exactly in >= 3 analysed frames; "right" is reported over all vehicles and over readable ones.
Latencies are in seconds of video: first readable frame -> first provisional / the final, and
the vehicle's last frame -> its final (must stay <= track timeout + 1 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]

DEFAULT_RATES = {
    "drive_through": (1, 2),
    "gate_queue": (1, 3),
    "pop_in": (3, 4, 5),
    "side_by_side": (1, 3),
    "occlusion": (1, 3),
    "parked": (3,),
    "reverse": (1, 3),
}


def data_root() -> Path:
    return Path(os.environ.get("PLATEWATCH_DATA") or REPO.parent / "shared" / "data")


def load_vehicles(root: Path, split: str) -> list:
    from training.synth.motion import cut_vehicle, split_of
    from training.synth.video import read_openalpr_label

    out = []
    for txt in sorted((root / "openalpr-dev").glob("*/*.txt")):
        if split_of(txt.stem) != split:
            continue
        img_path, box, text = read_openalpr_label(txt)
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None or len(text) < 4:
            continue
        out.append(cut_vehicle(img, box, text, f"{txt.parent.name}/{txt.stem}"))
    return out


def background_sources(root: Path, split: str) -> list[tuple[Path, list]]:
    from training.synth.motion import split_of

    out: list[tuple[Path, list]] = []
    for video in sorted((root / "ro-dashcam").glob("*")):
        if video.is_dir() and split_of(video.name) == split:
            for xml in sorted(video.glob("*.xml"))[::4]:
                boxes = []
                for o in ET.parse(xml).getroot().iter("bndbox"):
                    boxes.append(
                        tuple(float(o.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
                    )  # type: ignore[union-attr,arg-type]
                out.append((xml.with_suffix(".jpg"), boxes))
    ann = root / "world-plate-scenes" / "annotations.csv"
    if ann.exists():
        rows: dict[str, list] = {}
        for line in ann.read_text().splitlines()[1:]:
            f, *b = line.split(",")
            rows.setdefault(f, []).append(tuple(float(x) for x in b))
        for f, boxes in sorted(rows.items()):
            path = root / "world-plate-scenes" / "images" / f
            if split_of(f) != split:
                continue
            # Most of these photos are close-ups of one parked car, which would stand behind
            # every moving vehicle: only the wide scenes (plates < 8 % of the width) are roads.
            width = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_2).shape[1] * 2
            if max(b[2] - b[0] for b in boxes) < 0.08 * width:
                out.append((path, boxes))
    for path in sorted((root / "backgrounds").glob("*.jpg"))[::6]:  # plate-free real scenes
        if split_of(path.name) == split:
            out.append((path, []))
    return out


def frames_of(path: Path, fps: float) -> Iterator:
    from edge.types import Frame

    cap = cv2.VideoCapture(str(path))
    i = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield Frame("bench", i, i / fps, img, False, video_time_s=i / fps)
            i += 1
    finally:
        cap.release()


def infer_clip(clip: Path, truth, engine, rates: list[int]) -> dict:  # type: ignore[no-untyped-def]
    """Detector + reader once per frame that any sampling rate analyses (the results do not
    depend on the rate, nor on tracking or voting settings), crops dropped so the frames are
    not kept alive."""
    import dataclasses

    from edge.capture.sampling import FrameSampler

    samplers = [FrameSampler(k) for k in rates]
    out: dict = {}
    t0 = time.perf_counter()
    for frame in frames_of(clip, truth.fps):
        if any([s.take(frame.index) for s in samplers]):  # every sampler sees every frame
            r = engine.infer(frame)
            plates = tuple(dataclasses.replace(p, crop=None) for p in r.plates)
            out[frame.index] = dataclasses.replace(r, plates=plates)
    out["seconds"] = time.perf_counter() - t0
    return out


def analyse(truth, results: dict, every: int, settings: dict) -> dict:  # type: ignore[no-untyped-def]
    """The runtime's analyzer (tracking, linking, voting) over the cached results, as a
    camera with ``sample_every: every`` and the given settings would run it."""
    from edge.analysis.analyzer import CameraAnalyzer
    from edge.capture.sampling import FrameSampler
    from edge.eval.identity import Recorder, score_clip
    from edge.track.config import TrackingConfig
    from edge.types import Frame
    from edge.vote.config import VotingConfig
    from training.synth.motion import truth_vehicles

    voting = VotingConfig.model_validate(merged(VotingConfig(), settings.get("voting", {})))
    tracking = TrackingConfig.model_validate(merged(TrackingConfig(), settings.get("tracking", {})))
    analyzer = CameraAnalyzer(
        "bench", voting=voting, formats=voting.plate_formats(), tracking=tracking, crops=False
    )
    rec = Recorder(analyzer)
    sampler = FrameSampler(every)
    # the analyzer reads only the frame's size: a zero-strided stand-in for the pixels
    image = np.broadcast_to(np.zeros(1, np.uint8), (truth.height, truth.width, 3))
    for f in range(truth.frame_count):
        if sampler.take(f):
            frame = Frame("bench", f, f / truth.fps, image, False, video_time_s=f / truth.fps)
            rec.update(frame, results[f])
    rec.finish(truth.frame_count - 1)
    return score_clip(truth_vehicles(truth), rec.analysed, rec.reads, rec.decisions)


def merged(base, override: dict) -> dict:  # type: ignore[no-untyped-def]
    """``base`` (a settings model) as a dict with ``override`` merged in, nested keys too (the
    plate tracker's own defaults stay when one of its fields is changed)."""
    out = base.model_dump()

    def merge(d: dict, o: dict) -> None:
        for k, v in o.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                merge(d[k], v)
            else:
                d[k] = v

    merge(out, override)
    return out


def variants(specs: list[str]) -> list[tuple[str, dict]]:
    """``--set tracking.plate.empty_max_age=5,10,20`` -> one variant per value (one setting
    changed at a time around the defaults), plus the defaults themselves."""
    out: list[tuple[str, dict]] = [("defaults", {})]
    for spec in specs:
        key, _, values = spec.partition("=")
        for raw in values.split(","):
            value: object = None if raw in ("null", "none") else json.loads(raw)
            d: dict = {}
            node = d
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
            out.append((f"{key}={raw}", d))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", default="dev,held-out")
    ap.add_argument("--patterns", default=",".join(DEFAULT_RATES))
    ap.add_argument(
        "--sample-every", default="", help="rates for every pattern (default: per pattern)"
    )
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the rendered clips here")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="sweep a setting (e.g. tracking.plate.empty_max_age=5,10,20): totals per value",
    )
    ap.add_argument("--verbose", action="store_true", help="print every vehicle")
    args = ap.parse_args(argv)

    from edge.detect.alpr import Alpr
    from edge.detect.models import load_models
    from edge.eval.identity import OUTCOMES, percentile
    from training.synth.motion import PATTERNS, Stage, load_background, render_motion_clip

    root = data_root()
    if not (root / "openalpr-dev").is_dir():
        print(f"no openalpr-dev under {root} (set PLATEWATCH_DATA)", file=sys.stderr)
        return 2
    patterns = [p for p in args.patterns.split(",") if p]
    unknown = [p for p in patterns if p not in PATTERNS]
    if unknown:
        ap.error(f"unknown patterns {unknown}; known: {list(PATTERNS)}")
    fixed = [int(x) for x in args.sample_every.split(",") if x]
    det, rd = load_models(args.models, threads=args.threads)
    engine = Alpr(det, rd)
    # cached inference is only valid for the models that made it: key it by their bytes
    from edge.detect.models import DETECTOR_FILE, READER_FILE, default_models_dir

    mdir = args.models or default_models_dir()
    digest = hashlib.sha1()
    for name in (DETECTOR_FILE, READER_FILE):
        digest.update((Path(mdir) / name).read_bytes())
    models_tag = digest.hexdigest()[:10]
    stage = Stage(1920, 1080, 25.0)
    timeout_frames = 30  # tracking.plate.max_age default (source frames)
    rows, report = [], {}
    sweep = variants(args.set)
    sweep_totals: dict[tuple[str, str], dict[str, int]] = {}
    tmp = tempfile.TemporaryDirectory(prefix="platewatch-identity-")
    out_dir = args.keep or Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in args.split.split(","):
        pool = load_vehicles(root, split)
        bgs = background_sources(root, split)
        rng = np.random.default_rng(7 if split == "dev" else 8)
        order = rng.permutation(len(pool))
        pos = 0
        lat_p, lat_f, after = [], [], []
        # Every pattern draws its vehicles and background in the one fixed order, selected or
        # not, so `--patterns occlusion` renders the very clip the full run scores.
        every_pattern = list(DEFAULT_RATES) + [p for p in PATTERNS if p not in DEFAULT_RATES]
        for pi, name in enumerate(every_pattern):
            fn, n = PATTERNS[name]
            picks = [pool[order[(pos + k) % len(pool)]] for k in range(n)]
            pos += n
            bg_path, boxes = bgs[int(rng.integers(len(bgs)))]
            if name not in patterns:
                continue
            bg = load_background(bg_path, boxes, stage.width, stage.height)
            visits = fn(np.random.default_rng((pi, len(split))), picks, stage)
            clip = out_dir / f"{split}-{name}.mp4"
            rates = fixed or list(DEFAULT_RATES[name])
            cached = clip.with_suffix(f".results-{'-'.join(map(str, rates))}-{models_tag}.pkl")
            if args.keep and cached.exists():
                # the same clip and rates with the same models: reuse (--keep runs sweep fast)
                truth, results = pickle.loads(cached.read_bytes())
            else:
                truth = render_motion_clip(clip, visits, bg, fps=stage.fps, seed=pi)
                results = infer_clip(clip, truth, engine, rates)
                if args.keep:
                    cached.write_bytes(pickle.dumps((truth, results)))
            for label, settings in sweep:
                for every in rates:
                    s = analyse(truth, results, every, settings)
                    if label != "defaults":
                        tot = sweep_totals.setdefault((label, split), dict.fromkeys(OUTCOMES, 0))
                        for o in OUTCOMES:
                            tot[o] += s.count(o)
                        continue
                    nv = len(s.vehicles)
                    readable = [v for v in s.vehicles if v.readable]
                    row = {
                        "split": split,
                        "pattern": name,
                        "every": every,
                        "vehicles": nv,
                        "readable": len(readable),
                        **{o: s.count(o) for o in OUTCOMES},
                        "right_readable": s.count("right", readable_only=True),
                        "false": s.false_events,
                        "frame_acc": s.frame_right / s.frame_reads if s.frame_reads else 0.0,
                        "best_single": sum(v.best_single == v.text for v in s.vehicles)
                        / max(nv, 1),
                        "voted": s.count("right") / max(nv, 1),
                    }
                    rows.append(row)
                    for v in s.vehicles:
                        if v.provisional_latency is not None:
                            lat_p.append(v.provisional_latency / stage.fps)
                        if v.final_latency is not None and v.outcome == "right":
                            lat_f.append(v.final_latency / stage.fps)
                        if v.final_after_leave is not None and v.outcome == "right":
                            after.append(v.final_after_leave / stage.fps)
                        if args.verbose:
                            print(
                                f"  {split} {name} /{every} #{v.id} {v.text:<9} {v.outcome:<10} "
                                f"readable={v.readable_frames} finals={v.finals} "
                                f"best={v.best_single}"
                            )
                    print(
                        f"{split:<8} {name:<13} /{every}  {row['right']}/{nv} right "
                        f"(readable {row['right_readable']}/{row['readable']})  "
                        f"missed {row['missed']} "
                        f"wrong {row['wrong']} merged {row['merged']} dup {row['duplicated']} "
                        f"false {row['false']}  frame {row['frame_acc']:.0%} "
                        f"best {row['best_single']:.0%}",
                        flush=True,
                    )
        report[split] = {
            "provisional_s": (percentile(lat_p, 50), percentile(lat_p, 95)),
            "final_s": (percentile(lat_f, 50), percentile(lat_f, 95)),
            "final_after_leave_s": (
                percentile(after, 50),
                percentile(after, 95),
                max(after, default=None),
            ),
        }
    tmp.cleanup()
    print_table(rows, report, (timeout_frames / stage.fps) + 1.0)
    if sweep_totals:
        print("\n| setting | split | " + " | ".join(OUTCOMES) + " |")
        print("|---|---|" + "---|" * len(OUTCOMES))
        for split in dict.fromkeys(r["split"] for r in rows):
            base = {o: sum(r[o] for r in rows if r["split"] == split) for o in OUTCOMES}
            print(f"| defaults | {split} | " + " | ".join(str(base[o]) for o in OUTCOMES) + " |")
            for (label, sp), tot in sweep_totals.items():
                if sp == split:
                    print(
                        f"| {label} | {split} | " + " | ".join(str(tot[o]) for o in OUTCOMES) + " |"
                    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "latency": report}, indent=1) + "\n")
    return 0


def print_table(rows: list[dict], report: dict, bound_s: float) -> None:
    print()
    print(
        "| split | pattern | every | vehicles | right | missed | wrong | merged | duplicated | "
        "false | readable: right | single frame | best single | voted |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for split in dict.fromkeys(r["split"] for r in rows):
        rs = [r for r in rows if r["split"] == split]
        for r in rs:
            print(
                f"| {split} | {r['pattern']} | {r['every']} | {r['vehicles']} | {r['right']} | "
                f"{r['missed']} | {r['wrong']} | {r['merged']} | {r['duplicated']} | "
                f"{r['false']} | "
                f"{r['right_readable']}/{r['readable']} | {r['frame_acc']:.0%} | "
                f"{r['best_single']:.0%} | {r['voted']:.0%} |"
            )
        tot = {
            k: sum(r[k] for r in rs)
            for k in (
                "vehicles",
                "right",
                "missed",
                "wrong",
                "merged",
                "duplicated",
                "false",
                "right_readable",
                "readable",
            )
        }
        print(
            f"| **{split}** | all | | {tot['vehicles']} | {tot['right']} | {tot['missed']} | "
            f"{tot['wrong']} | {tot['merged']} | {tot['duplicated']} | {tot['false']} | "
            f"{tot['right_readable']}/{tot['readable']} "
            f"({tot['right_readable'] / max(tot['readable'], 1):.1%}) | | | "
            f"{tot['right'] / max(tot['vehicles'], 1):.1%} |"
        )
    print()
    for split, rep in report.items():

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        p, f, a = rep["provisional_s"], rep["final_s"], rep["final_after_leave_s"]
        print(
            f"{split}: first readable -> provisional p50 {fmt(p[0])} s, p95 {fmt(p[1])} s; "
            f"-> final p50 {fmt(f[0])} s, p95 {fmt(f[1])} s; vehicle gone -> final p50 "
            f"{fmt(a[0])} s, p95 {fmt(a[1])} s, max {fmt(a[2])} s (bound {bound_s:.1f} s)"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
