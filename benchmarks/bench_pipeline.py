"""End-to-end replay throughput of the video pipeline vs a naive sequential loop.

    python benchmarks/bench_pipeline.py [--models DIR] [--seconds 6] [--sample-every 3]
        [--resolutions 720p,1080p] [--threads 1,2] [--clips-dir DIR] [--json OUT]

For each resolution (a synthetic clip rendered once with training.synth.video and cached) and each
CPU thread count, in a fresh subprocess (so peak RSS and thread settings are per run):

- ``pipeline``: `edge.app.replay.replay_file` (capture thread + one inference worker + sink
  thread), analysing every ``--sample-every``-th frame (25 fps / 3 = 8.3 analysed frames/s of
  video); frames/s counts every frame of the clip (decoded, tracked, annotated-ready);
- ``naive``: decode -> detect -> read on EVERY frame in one loop (no threads, no sampling);
- ``decode``: decoding alone (the floor the capture thread needs).

Per-stage time comes from the pipeline's own counters (ms per analysed frame for detect/read,
ms per frame for track+vote, total seconds in the sink thread). The machine's load average is
printed before and after: on a shared CPU the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}


def clip_for(res: str, seconds: float, clips_dir: Path) -> Path:
    w, h = RESOLUTIONS[res]
    path = clips_dir / f"bench_{res}_{seconds:g}s.mp4"
    if not path.is_file():
        from training.synth.video import render_clip

        print(f"rendering {path} ...", file=sys.stderr, flush=True)
        render_clip(path, width=w, height=h, fps=25, seconds=seconds, n_vehicles=4, seed=5)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> dict:
    """One measurement, in this (fresh) process."""
    import cv2

    cv2.setNumThreads(args.threads)
    clip = Path(args.clip)
    if args.mode == "decode":
        cap = cv2.VideoCapture(str(clip))
        t0 = time.perf_counter()
        n = 0
        while cap.read()[0]:
            n += 1
        dt = time.perf_counter() - t0
        return {"frames": n, "seconds": dt, "fps": n / dt, "decode_ms": 1e3 * dt / n}

    from edge.detect.alpr import Alpr
    from edge.detect.models import load_models

    det, rd = load_models(args.models, threads=args.threads)
    alpr = Alpr(det, rd)
    if args.mode == "naive":
        cap = cv2.VideoCapture(str(clip))
        n, t_det, t_read = 0, 0.0, 0.0
        t0 = time.perf_counter()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            timings = alpr.process(frame).timings
            t_det += timings.detect_ms
            t_read += timings.read_ms
            n += 1
        dt = time.perf_counter() - t0
        return {
            "frames": n,
            "analysed": n,
            "seconds": dt,
            "fps": n / dt,
            "analysed_fps": n / dt,
            "detect_ms": t_det / n,
            "read_ms": t_read / n,
            "peak_rss_mb": _peak_rss_mb(),
        }

    from edge.app.replay import replay_file
    from edge.sinks.jsonl import JsonlSink

    with tempfile.TemporaryDirectory() as tmp:
        r = replay_file(
            clip,
            alpr,
            [JsonlSink(Path(tmp) / "events.jsonl")],
            sample_every=args.sample_every,
            progress=False,
            install_signals=False,
            strict=True,
        )
    s = r.summary
    a = max(1, s.analysed)
    return {
        "frames": s.frames,
        "analysed": s.analysed,
        "seconds": s.seconds,
        "fps": s.fps,
        "analysed_fps": s.analysed / s.seconds,
        "detect_ms": 1e3 * s.stages.detect / a,
        "read_ms": 1e3 * s.stages.read / a,
        "track_vote_ms": 1e3 * s.stages.track_vote / s.frames,
        "sink_s": s.sink_seconds,
        "events": s.events,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_child(mode: str, clip: Path, threads: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--clip",
        str(clip),
        "--threads-one",
        str(threads),
        "--sample-every",
        str(args.sample_every),
    ]
    if args.models:
        cmd += ["--models", str(args.models)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} {clip.name} x{threads} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", type=Path, default=None, help="models dir (default: models/)")
    ap.add_argument("--seconds", type=float, default=6.0, help="clip length (25 fps)")
    ap.add_argument("--sample-every", type=int, default=3)
    ap.add_argument("--resolutions", default="720p,1080p")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="decode,pipeline,naive")
    ap.add_argument(
        "--clips-dir", type=Path, default=Path(tempfile.gettempdir()) / "platewatch-bench"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    # internal: one measurement in a subprocess
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--clip", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        args.mode, args.threads = args.child, args.threads_one
        print(json.dumps(child(args)))
        return 0

    args.clips_dir.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    print(
        f"cpus {os.cpu_count()}, load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
    )
    print(f"models: {args.models or REPO / 'models'}; sample every {args.sample_every} (pipeline)")
    rows = []
    header = (
        f"{'clip':<6} {'thr':>3} {'mode':<8} {'frames':>6} {'wall s':>7} {'frames/s':>8} "
        f"{'anl/s':>6} {'det ms':>7} {'read ms':>7} {'trk ms':>6} {'dec ms':>6} {'sink s':>6} "
        f"{'RSS MB':>7} {'load1':>5}"
    )
    print(header)
    print("-" * len(header))
    for res in args.resolutions.split(","):
        clip = clip_for(res, args.seconds, args.clips_dir)
        for threads in (int(t) for t in args.threads.split(",")):
            dec = None
            for mode in args.modes.split(","):
                r = run_child(mode, clip, threads, args)
                if mode == "decode":
                    dec = r["decode_ms"]
                r.update(clip=res, threads=threads, mode=mode, load1=os.getloadavg()[0])
                rows.append(r)

                def f(key: str, fmt: str, r: dict = r) -> str:
                    v = r.get(key)
                    return format(v, fmt) if isinstance(v, (int, float)) else "-"

                print(
                    f"{res:<6} {threads:>3} {mode:<8} {f('frames', 'd'):>6} "
                    f"{f('seconds', '.1f'):>7} {f('fps', '.1f'):>8} {f('analysed_fps', '.1f'):>6} "
                    f"{f('detect_ms', '.1f'):>7} "
                    f"{f('read_ms', '.1f'):>7} {f('track_vote_ms', '.2f'):>6} "
                    f"{format(dec, '.1f') if dec else '-':>6} {f('sink_s', '.2f'):>6} "
                    f"{f('peak_rss_mb', '.0f'):>7} {r['load1']:>5.2f}",
                    flush=True,
                )
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    for res in args.resolutions.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            p = next(
                (
                    r
                    for r in rows
                    if (r["clip"], r["threads"], r["mode"]) == (res, threads, "pipeline")
                ),
                None,
            )
            n = next(
                (
                    r
                    for r in rows
                    if (r["clip"], r["threads"], r["mode"]) == (res, threads, "naive")
                ),
                None,
            )
            if p and n:
                print(
                    f"{res} x{threads}: pipeline {p['fps']:.1f} frames/s "
                    f"({p['analysed_fps']:.1f} analysed/s) vs naive {n['fps']:.1f} frames/s "
                    f"= {p['fps'] / n['fps']:.1f}x"
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
