"""Single-frame read accuracy vs voted per-track accuracy on clips made from real photos.

    python benchmarks/voting_accuracy.py [--data DIR] [--models DIR] [--frames 24]
        [--limit N] [--regions us,eu,br] [--strength 1.0] [--formats camera|all|none]
        [--json OUT]

Each labelled photo of ``openalpr-dev/{us,eu,br}`` (``$PLATEWATCH_DATA`` or ``../shared/data``;
a DEV/EVAL set: never train on it) becomes a short clip with
``training.synth.video.make_replay_clip_from_photo`` (slow pan/zoom, blur spikes, noise, JPEG,
exposure changes; the plate box is known in every frame). The clip runs through the real
pipeline (`edge.app.replay.replay_file`, every frame analysed) with the given models and, by
default, the voter set up as a camera of that region would be (``voting.regions: [us]``;
``--formats all`` gives it every shipped format, which lets a US plate be "repaired" into a
European pattern), and:

- single-frame accuracy: over every frame where the plate is fully visible, the read of the
  detected plate overlapping the true box best (IoU >= 0.3) equals the label; a missed plate
  counts as wrong. "given detected" divides by the frames where the plate was found;
- voted accuracy: per clip (one vehicle, one track in truth), a FINAL event carries the label.
  "no final" clips published nothing (the voter was never confident enough); "extra" counts
  finals with another text (false or split tracks).

Clips are written to a temporary directory and deleted; nothing from the data set is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from edge.events.schema import PlateEvent
from edge.sinks.base import Sink

REPO = Path(__file__).resolve().parents[1]


def default_data_root() -> Path:
    return Path(os.environ.get("PLATEWATCH_DATA") or REPO.parent / "shared" / "data")


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class RecordingEngine:
    """Wraps the real engine and keeps each analysed frame's plates (box, text). It has no
    ``close``: a replay closes its engine at the end, and the wrapped one is shared by clips."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.frames: dict[int, list[tuple[tuple[float, ...], str]]] = {}

    def infer(self, frame):  # type: ignore[no-untyped-def]
        inf = self.inner.infer(frame)  # type: ignore[attr-defined]
        self.frames[frame.index] = [(p.box, p.read.text) for p in inf.plates]
        return inf


class FinalsSink(Sink):
    """Keeps the plate of every FINAL event."""

    def __init__(self) -> None:
        self.plates: list[str] = []

    def publish_event(self, event: PlateEvent) -> None:
        if event.type == "final":
            self.plates.append(event.plate)

    def close(self, timeout: float = 2.0) -> None:
        pass


@dataclass
class RegionStats:
    clips: int = 0
    frames_visible: int = 0
    frames_correct: int = 0
    frames_detected: int = 0
    voted_correct: int = 0
    no_final: int = 0
    extra_finals: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def evaluate_clip(
    label: Path,
    engine_factory,  # type: ignore[no-untyped-def]
    tmp: Path,
    frames: int,
    strength: float,
    max_width: int,
    seed: int,
    voting: object = None,
) -> tuple[int, int, int, bool, bool, int, str, list[str]]:
    import cv2

    from edge.app.replay import replay_file
    from training.synth.video import make_replay_clip_from_photo, read_openalpr_label

    image, box, text = read_openalpr_label(label)
    h, w = cv2.imread(str(image)).shape[:2]
    cw = min(max_width, w) // 2 * 2
    ch = round(h * cw / w) // 2 * 2
    clip = tmp / f"{label.stem}.mp4"
    truth = make_replay_clip_from_photo(
        image, box, clip, frames, text=text, seed=seed, size=(cw, ch), strength=strength
    )

    rec = RecordingEngine(engine_factory())
    finals = FinalsSink()
    replay_file(
        clip,
        rec,
        [finals],
        camera="photo",
        progress=False,
        install_signals=False,
        strict=True,
        voting=voting,  # type: ignore[arg-type]
    )
    clip.unlink(missing_ok=True)
    vt = truth.vehicles[0]
    visible = correct = detected = 0
    for f, ft in vt.frames.items():
        if ft.plate_visibility != "full" or ft.plate_box is None or f not in rec.frames:
            continue
        visible += 1
        best = max(rec.frames[f], key=lambda p: iou(p[0], ft.plate_box), default=None)
        if best is not None and iou(best[0], ft.plate_box) >= 0.3:
            detected += 1
            correct += best[1] == text
    voted = text in finals.plates
    extra = sum(1 for p in finals.plates if p != text)
    return visible, correct, detected, voted, not finals.plates, extra, text, finals.plates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="data root (has openalpr-dev/)")
    ap.add_argument("--models", type=Path, default=None, help="models dir (default: models/)")
    ap.add_argument("--frames", type=int, default=24, help="frames per clip (25 fps)")
    ap.add_argument("--limit", type=int, default=None, help="at most N photos per region")
    ap.add_argument("--regions", default="us,eu,br")
    ap.add_argument("--strength", type=float, default=1.0, help="degradation strength")
    ap.add_argument("--max-width", type=int, default=1280, help="clip width cap (pixels)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--formats",
        choices=["camera", "all", "none"],
        default="camera",
        help="region formats of the voter: 'camera' (each region folder's, as a camera set up"
        " with voting.regions: [us] would have), 'all' (every shipped format), 'none'",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from edge.vote.config import VotingConfig

    def voting_for(region: str) -> VotingConfig:
        if args.formats == "camera":
            return VotingConfig(regions=[region])
        if args.formats == "none":
            return VotingConfig(patterns=[{"name": "any", "regex": "[A-Z0-9]{1,10}", "weak": True}])
        return VotingConfig()

    root = (args.data or default_data_root()) / "openalpr-dev"
    if not root.is_dir():
        print(f"data not found: {root} (set PLATEWATCH_DATA or --data)", file=sys.stderr)
        return 2
    from edge.detect.alpr import Alpr
    from edge.detect.models import load_models

    det, rd = load_models(args.models, threads=args.threads)
    alpr = Alpr(det, rd)  # one model instance for every clip

    def engine_factory() -> Alpr:
        return alpr

    stats: dict[str, RegionStats] = defaultdict(RegionStats)
    per_clip = []
    with tempfile.TemporaryDirectory(prefix="platewatch-voting-") as tmp_s:
        tmp = Path(tmp_s)
        for region in args.regions.split(","):
            labels = sorted((root / region).glob("*.txt"))[: args.limit]
            for k, label in enumerate(labels):
                t0 = time.perf_counter()
                try:
                    vis, cor, det_n, voted, none, extra, text, finals = evaluate_clip(
                        label,
                        engine_factory,
                        tmp,
                        args.frames,
                        args.strength,
                        args.max_width,
                        args.seed + k,
                        voting_for(region),
                    )
                except Exception as e:  # one bad photo must not end the benchmark
                    stats[region].failures.append(f"{label.name}: {e}")
                    continue
                s = stats[region]
                s.clips += 1
                s.frames_visible += vis
                s.frames_correct += cor
                s.frames_detected += det_n
                s.voted_correct += voted
                s.no_final += none
                s.extra_finals += extra
                s.seconds += time.perf_counter() - t0
                per_clip.append(
                    {
                        "region": region,
                        "label": label.name,
                        "text": text,
                        "finals": finals,
                        "frames_visible": vis,
                        "frames_correct": cor,
                        "frames_detected": det_n,
                    }
                )
                print(
                    f"{region} {k + 1}/{len(labels)} {text:<10} single {cor}/{vis} "
                    f"voted {'OK' if voted else '--'} finals {finals}",
                    file=sys.stderr,
                )

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:5.1f}%" if b else "    -"

    print(
        f"\nmodels: {args.models or REPO / 'models'}; {args.frames} frames/clip, strength "
        f"{args.strength}, every frame analysed, voter formats: {args.formats}"
    )
    print(
        f"{'region':<7} {'clips':>5} {'frames':>6} {'single-frame':>12} {'(detected)':>10} "
        f"{'voted/track':>11} {'no final':>8} {'extra':>5}"
    )
    tot = RegionStats()
    for s in stats.values():
        for k in (
            "clips",
            "frames_visible",
            "frames_correct",
            "frames_detected",
            "voted_correct",
            "no_final",
            "extra_finals",
        ):
            setattr(tot, k, getattr(tot, k) + getattr(s, k))
    for region, s in [*stats.items(), ("all", tot)]:
        print(
            f"{region:<7} {s.clips:>5} {s.frames_visible:>6} "
            f"{pct(s.frames_correct, s.frames_visible):>12} "
            f"{pct(s.frames_correct, s.frames_detected):>10} "
            f"{pct(s.voted_correct, s.clips):>11} {s.no_final:>8} {s.extra_finals:>5}"
        )
    for region, s in stats.items():
        for f in s.failures:
            print(f"failed ({region}): {f}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"clips": per_clip}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
