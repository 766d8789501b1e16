"""Finals vs truth on rendered 1080p traffic clips: the integration test's scenario, many seeds.

    python benchmarks/synthetic_clips.py [--seeds 12-19] [--models DIR] [--sample-every 3]

Each seed renders a 10 s, 1920x1080 clip with 4 vehicles (``training.synth.video.render_clip``,
as ``tests/integration/test_integration_mqtt.py`` does with seed 11) and replays it through the
pipeline with
the shipped models. Per clip: the final plates against the truth. A vehicle is right when a final
carries its plate; every final that matches no vehicle is a wrong event (a misread, a split
track, or text that is not a plate). The reader's clip-crop training used seeds 1000-1239, so
keep the seeds here below 1000.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parse_seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", default="12-19")
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--sample-every", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if any(s >= 1000 for s in seeds):
        ap.error("seeds >= 1000 rendered the reader's training crops")

    from voting_accuracy import FinalsSink, RecordingEngine  # this folder: sys.path[0]

    from edge.app.replay import replay_file
    from edge.detect.alpr import Alpr
    from edge.detect.models import load_models
    from training.synth.video import render_clip

    det, rd = load_models(args.models, threads=args.threads)
    alpr = Alpr(det, rd)  # one model instance for every clip

    vehicles = right = wrong = 0
    by_style: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="platewatch-clips-") as tmp:
        for seed in seeds:
            clip = Path(tmp) / f"clip{seed}.mp4"
            truth = render_clip(
                clip, width=1920, height=1080, fps=25, seconds=10, n_vehicles=4, seed=seed
            )
            finals = FinalsSink()
            replay_file(
                clip,
                RecordingEngine(alpr),  # type: ignore[arg-type]
                [finals],
                camera="clip",
                sample_every=args.sample_every,
                progress=False,
                install_signals=False,
                strict=True,
            )
            want = [v.text for v in truth.vehicles]
            for v in truth.vehicles:
                hit = v.text in finals.plates
                stats = by_style.setdefault(str(v.style), [0, 0])
                stats[0] += hit
                stats[1] += 1
            n_right = sum(1 for w in want if w in finals.plates)
            n_wrong = sum(1 for p in finals.plates if p not in want)
            vehicles, right, wrong = vehicles + len(want), right + n_right, wrong + n_wrong
            print(
                f"seed {seed}: truth {sorted(want)} finals {sorted(finals.plates)} "
                f"-> {n_right}/{len(want)} right, {n_wrong} wrong",
                flush=True,
            )
            clip.unlink(missing_ok=True)
    print("\nstyle          right")
    for style, (hit, n) in sorted(by_style.items()):
        print(f"{style:<14} {hit}/{n}")
    print(
        f"\n{len(seeds)} clips, {vehicles} vehicles: {right} right ({100 * right / vehicles:.1f}%),"
        f" {wrong} wrong final(s); sample every {args.sample_every}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
