"""Memory soak: run the full pipeline over >= 100k frames and report whether RSS stays flat.

    OMP_NUM_THREADS=1 python benchmarks/soak_memory.py [--frames 100000] [--sample-every 4]
        [--models DIR] [--sample-rss 2000] [--json OUT]

What runs (one process, CPU, 1 thread):
- source: a 10 s 640x360 clip written here with OpenCV (mp4v) and replayed with ``loop: true``
  through the real capture thread (decode, bounded queue, back-pressure), so every frame is
  decoded, counted, sampled and handed to the worker;
- inference: ONNX Runtime on every ``--sample-every``-th frame with the models in ``--models``
  (default ``models/`` when both detector.onnx and reader.onnx are there) or, if absent or with
  ``--standin-models``, the stand-in ONNX models of tests/standin_models.py (same I/O
  contract, tiny). Letterbox, decode, NMS, the reader batch and crop cutting all run;
- scene: the detections are then replaced by a scripted stream of vehicles, one every 2 s, each
  with its own plate, crossing a direction line (``--real-detections`` keeps the model's output
  instead). Unique plates are the worst case for memory: every vehicle opens tracks, a vote, a
  geometry state, a dedupe entry, events and a history row that must all be released;
- operator rules on: zones + direction line, two watchlists (every 10th plate listed, so alerts
  fire), privacy hashing of unlisted plates, and a history SQLite bounded to ``--history-rows``
  (pruning runs), plus a sink that counts events and alerts. The stage watchdog runs too.

RSS (``/proc/self/status`` VmRSS) is sampled every ``--sample-rss`` frames from the pipeline's
frame hook. Reported: start RSS (first sample after 5 % of the run, once the models and caches
are warm), end RSS, peak, and the slope of a least-squares line over the SECOND half of the
samples in MB per 10k frames (the first half includes allocator warm-up and cache growth), and
the frames/s of the first and last quarter.

edge.vote.voter memoises ``levenshtein`` in an LRU cache bounded at 65 536 entries (roughly 15-20 MB
when full). With unique plates it fills slowly (a few entries per vehicle), so over 100k frames
it shows up as a slope although it is bounded. ``--no-voting-cache`` runs the uncached function
to separate that bounded growth from a leak; the cache size at the end is always reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

W, H, FPS = 640, 360, 25.0
CLIP_SECONDS = 10


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def threads_now() -> int:
    """OS threads of this process (capture, inference, sinks, MQTT, watchdog, ...)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()


def slope_per_10k(frames: list[int], rss: list[float]) -> float:
    """Least-squares slope of RSS (MB) against frames, times 10 000."""
    if len(frames) < 2:
        return 0.0
    x = np.asarray(frames, np.float64)
    y = np.asarray(rss, np.float64)
    a, _b = np.polyfit(x, y, 1)
    return float(a * 10_000)


def write_clip(path: Path) -> Path:
    """A 10 s 640x360 mp4v clip: a grey road with moving shapes (something to decode)."""
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    if not out.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 20, (H, W, 3), dtype=np.uint8)
    for i in range(int(CLIP_SECONDS * FPS)):
        img = np.full((H, W, 3), 90, np.uint8) + noise
        y = (i * 3) % (H + 100) - 100
        cv2.rectangle(img, (200, y), (360, y + 100), (40, 40, 160), -1)
        cv2.rectangle(img, (240, y + 70), (320, y + 94), (235, 235, 235), -1)
        out.write(img)
    out.release()
    return path


@dataclass(frozen=True)
class SceneCar:
    k: int
    start: int
    frames: int = 100

    @property
    def text(self) -> str:
        digits = "0123456789"
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        n = self.k
        return (
            letters[n % 23]
            + letters[(n // 23) % 23]
            + "".join(digits[(n // 10**i) % 10] for i in range(4))
            + letters[(n // 529) % 23]
        )

    def boxes(self, i: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(vehicle box, plate box) at frame ``i``, None once the car has left the frame. Three
        lanes, so a lane is empty for longer than the tracker's max_age between two cars (a
        car appearing where another just vanished would continue its track, which a real
        scene never does)."""
        x = 30.0 + 210.0 * (self.k % 3)
        yb = 60.0 + 3.6 * (i - self.start)  # enters at the top, leaves at the bottom
        if yb - 110.0 > H - 30.0:
            return None
        vbox = (x, max(0.0, yb - 110.0), x + 160.0, min(float(H), yb))
        pbox = (x + 40.0, yb - 36.0, x + 120.0, yb - 12.0)
        return vbox, (pbox if pbox[3] <= H else None)  # type: ignore[return-value]


class SceneEngine:
    """Runs the real inference engine, then reports a scripted vehicle stream instead."""

    def __init__(self, inner: object, period: int = 50, real: bool = False) -> None:
        self.inner = inner
        self.period = period
        self.real = real

    def infer(self, frame):  # type: ignore[no-untyped-def]
        from edge.detect.alpr import build_result
        from edge.types import TextRead

        inf = self.inner.infer(frame)  # type: ignore[attr-defined]
        if self.real:
            return inf
        i = frame.index
        vehicles, plates = [], []
        k0 = max(0, i // self.period - 3)
        for k in range(k0, i // self.period + 1):
            car = SceneCar(k, k * self.period)
            if not car.start <= i < car.start + car.frames:
                continue
            got = car.boxes(i)
            if got is None:
                continue
            vb, pb = got
            vehicles.append((vb, 0.9))
            if pb is None:
                continue
            c = 0.93
            plates.append((pb, 0.8, TextRead(car.text, c, (c,) * len(car.text))))
        return build_result(frame.image, vehicles, plates, timings=inf.timings)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def model_paths(
    models: Path | None, workdir: Path, standin: bool = False
) -> tuple[Path, Path, str]:
    root = models if models is not None else REPO / "models"
    det, rd = root / "detector.onnx", root / "reader.onnx"
    if not standin and det.is_file() and rd.is_file():
        return det, rd, f"real models in {root}"
    if models is not None:
        raise SystemExit(f"--models {models}: need detector.onnx and reader.onnx there")
    from tests.standin_models import make_detector, make_reader

    boxes = [(20, 20, 44, 40, 0, 0.9), (26, 32, 38, 38, 1, 0.8)]  # a vehicle and its plate
    det = make_detector(workdir / "detector.onnx", boxes)
    rd = make_reader(workdir / "reader.onnx", "AB123CD")
    why = "--standin-models" if standin else "models/ lacks detector or reader"
    return det, rd, f"stand-in models (tests/standin_models.py; {why})"


def run(args: argparse.Namespace) -> dict:
    from edge.app.assembly import build_engine, build_pipeline
    from edge.app.pipeline import Pipeline
    from edge.config.schema import AppConfig, CameraConfig
    from edge.detect.config import ModelsConfig
    from edge.events.alerts import Alert
    from edge.events.schema import CameraStats, PlateEvent
    from edge.history.store import HistoryStore
    from edge.rules.privacy import PrivacyConfig
    from edge.rules.watchlist import WatchlistConfig
    from edge.rules.zones import CameraGeometryConfig
    from edge.sinks.base import MultiSink, Sink
    from edge.sinks.history import HistorySink

    class CountSink(Sink):
        def __init__(self) -> None:
            self.events = 0
            self.finals = 0
            self.alerts = 0
            self.hashed = 0

        def publish_event(self, event: PlateEvent) -> None:
            self.events += 1
            self.finals += event.type == "final"
            self.hashed += event.plate_hashed

        def publish_alert(self, alert: Alert) -> None:
            self.alerts += 1

        def publish_stats(self, stats: CameraStats) -> None:
            pass

        def close(self, timeout: float = 2.0) -> None:
            pass

    work = Path(tempfile.mkdtemp(prefix="platewatch-soak-"))
    clip = write_clip(work / "soak.mp4")
    det, rd, model_note = model_paths(args.models, work, args.standin_models)
    engine = SceneEngine(
        build_engine(ModelsConfig(detector=det, reader=rd)), real=args.real_detections
    )
    listed = [SceneCar(k, 0).text for k in range(0, 100_000, 10)]
    watchlists = [
        WatchlistConfig.model_validate(w)
        for w in (
            {"name": "residents", "kind": "allow", "refire": "per_event", "entries": listed[::2]},
            {"name": "alert", "kind": "deny", "max_distance": 0, "entries": listed[1::2]},
        )
    ]
    geometry = CameraGeometryConfig.model_validate(
        {
            "zones": [{"name": "road", "points": [[0, 0], [640, 0], [640, 360], [0, 360]]}],
            "require_zones": ["road"],
            "direction_line": {"points": [[0, 200], [640, 200]], "inside_point": [320, 330]},
        }
    )
    cam = CameraConfig(
        name="soak",
        source=str(clip),
        type="file",
        loop=True,
        sample_every=args.sample_every,
        geometry=geometry,
    )
    store = HistoryStore(work / "history.sqlite3", max_rows=args.history_rows, prune_every=100)
    counter = CountSink()
    samples: list[tuple[int, float]] = []
    thread_counts: list[int] = []
    times: list[float] = []
    import edge.vote.consensus as consensus
    import edge.vote.voter as voter

    cached = consensus.levenshtein
    if args.no_voting_cache:  # both modules call the cached function by their own name
        consensus.levenshtein = voter.levenshtein = cached.__wrapped__  # type: ignore[attr-defined]
    done = threading.Event()
    target = args.frames
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None

    pipe: Pipeline

    def on_frame(frame, result, sampled, overlays):  # type: ignore[no-untyped-def]
        n = pipe.cameras[0].frames
        if n % args.sample_rss == 0:
            samples.append((n, rss_mb()))
            thread_counts.append(threads_now())
            times.append(time.monotonic())
        if n >= target or (deadline is not None and time.monotonic() >= deadline):
            done.set()

    cfg = AppConfig(
        cameras=[cam],
        watchlists=watchlists,
        privacy=PrivacyConfig(enabled=True, key="soak-test-key-0123456789"),
    )
    pipe = build_pipeline(
        cfg,
        engine=engine,
        sink=MultiSink([HistorySink(store), counter]),
        on_frame=on_frame,
        stats_interval_s=5.0,
    )
    t0 = time.monotonic()
    pipe.start()
    last_print = t0
    while not done.wait(1.0):
        if pipe.done:
            break
        if time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            n = pipe.cameras[0].frames
            print(
                f"  {n} frames, {n / (last_print - t0):.0f} fps, RSS {rss_mb():.1f} MB",
                file=sys.stderr,
                flush=True,
            )
    seconds = time.monotonic() - t0
    summary = pipe.stop()  # closes the sinks, the history store with them
    with HistoryStore(work / "history.sqlite3", read_only=True) as ro:
        history_rows = ro.count()
    c = summary.cameras[0]
    an = pipe.cameras[0].analyzer
    cache_entries = cached.cache_info().currsize
    consensus.levenshtein = voter.levenshtein = cached
    frames = [f for f, _ in samples]
    q = max(1, len(times) // 4)
    fps_first = (frames[q] - frames[0]) / (times[q] - times[0]) if len(times) > q else None
    fps_last = (
        (frames[-1] - frames[-1 - q]) / (times[-1] - times[-1 - q]) if len(times) > q else None
    )
    rss = [r for _, r in samples]
    warm = max(1, len(samples) // 20)
    half = len(samples) // 2
    result = {
        "frames": c.frames,
        "analysed": c.analysed,
        "seconds": round(seconds, 1),
        "fps": round(c.frames / seconds, 1),
        "models": model_note,
        "scene": "model detections" if args.real_detections else "scripted vehicles",
        "events": counter.events,
        "finals": counter.finals,
        "alerts": counter.alerts,
        "hashed": counter.hashed,
        "history_rows": history_rows,
        "rss_start_mb": round(rss[warm], 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_peak_mb": round(max(rss), 1) if rss else None,
        "rss_slope_mb_per_10k_frames_second_half": round(
            slope_per_10k(frames[half:], rss[half:]), 3
        ),
        "rss_slope_mb_per_10k_frames_all": round(slope_per_10k(frames[warm:], rss[warm:]), 3),
        "samples": len(samples),
        "voting_levenshtein_cache_entries": cache_entries,
        "voting_cache": "off (--no-voting-cache)" if args.no_voting_cache else "on (default)",
        "fps_first_quarter": round(fps_first, 1) if fps_first else None,
        "fps_last_quarter": round(fps_last, 1) if fps_last else None,
        "live_state": {
            "tracker_tracks": sum(len(t._tracks) for t in an.tracker.trackers.values()),
            "vote_keys": len(an.keys.states),
            "voter_tracks": len(an.voter._tracks),
            "geometry_tracks": an.geometry.active_tracks if an.geometry is not None else 0,
        },
        "watchdog": summary.watchdog,
        "threads_start": thread_counts[warm] if thread_counts else None,
        "threads_end": thread_counts[-1] if thread_counts else None,
        "threads_max": max(thread_counts) if thread_counts else None,
        "rss_samples": samples if args.json else None,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--sample-every", type=int, default=4, help="analyse every Nth frame")
    p.add_argument("--models", type=Path, default=None, help="directory with the ONNX models")
    p.add_argument(
        "--standin-models",
        action="store_true",
        help="tiny stand-in models even if models/ has some",
    )
    p.add_argument("--real-detections", action="store_true", help="no scripted scene")
    p.add_argument(
        "--minutes", type=float, default=None, help="also stop after this long (a timed soak)"
    )
    p.add_argument(
        "--sample-rss",
        type=int,
        default=None,
        help="RSS sample period in frames (default: 2000, or frames/20 for short runs)",
    )
    p.add_argument("--history-rows", type=int, default=2000, help="history max_rows bound")
    p.add_argument("--json", type=Path, default=None, help="also write the result (+ samples)")
    p.add_argument(
        "--no-voting-cache",
        action="store_true",
        help="run edge.vote.voter.levenshtein uncached (separates its bounded cache from a leak)",
    )
    args = p.parse_args(argv)
    if args.frames < 40:
        p.error("--frames must be >= 40 (a slope needs samples)")
    if args.sample_rss is None:
        args.sample_rss = max(1, min(2000, args.frames // 20))
    if args.frames // args.sample_rss < 4:
        p.error(
            f"--sample-rss {args.sample_rss} gives fewer than 4 samples in {args.frames} frames"
        )
    if args.standin_models:
        try:
            import onnx  # noqa: F401 - the stand-in models are built with it
        except ImportError:
            p.error(
                "--standin-models builds tiny ONNX models with the onnx package: pip install onnx"
            )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    r = run(args)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    r.pop("rss_samples", None)
    print(
        f"{r['frames']} frames ({r['analysed']} analysed) in {r['seconds']} s = {r['fps']} "
        f"frames/s; {r['models']}, {r['scene']}"
    )
    print(
        f"events {r['events']} ({r['finals']} final, {r['hashed']} hashed), alerts "
        f"{r['alerts']}, history rows {r['history_rows']} (bound {args.history_rows})"
    )
    print(
        f"RSS start {r['rss_start_mb']} MB, end {r['rss_end_mb']} MB, peak {r['rss_peak_mb']} MB; "
        f"slope {r['rss_slope_mb_per_10k_frames_second_half']} MB per 10k frames (second half, "
        f"{r['samples']} samples every {args.sample_rss} frames; whole run after warm-up: "
        f"{r['rss_slope_mb_per_10k_frames_all']})"
    )
    print(
        f"voting levenshtein cache: {r['voting_cache']}, {r['voting_levenshtein_cache_entries']} "
        f"entries at the end; frames/s first quarter {r['fps_first_quarter']}, last quarter "
        f"{r['fps_last_quarter']}"
    )
    print(f"threads start {r['threads_start']}, end {r['threads_end']}, max {r['threads_max']}")
    print(f"live state at the end: {r['live_state']}; watchdog: {r['watchdog']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
