"""``platewatch replay VIDEO``: run a recorded clip through the full pipeline, as fast as it goes.

Files never drop frames (the capture waits for the pipeline) unless ``--realtime`` paces them at
their fps like a live camera. Events go to ``--events`` (JSON Lines: one event per line, the same
objects as on MQTT), to ``--mqtt HOST:PORT`` and/or stdout; ``--annotate`` writes every frame
with vehicle/plate boxes, track ids and the voted plate. A progress bar goes to stderr (tqdm when
installed, else a plain one) and a summary is printed at the end.

`replay_file` is the reusable core (``platewatch demo`` and the benchmarks call it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import cv2

from edge.analysis.analyzer import EventOptions
from edge.app.pipeline import InferenceEngine, Pipeline, PipelineSummary
from edge.config.schema import ConfigError, VotingConfig, load_config
from edge.sinks.base import MultiSink, Sink

log = logging.getLogger("platewatch.replay")

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")


def camera_name_for(path: str | Path) -> str:
    """A valid camera name (MQTT topic level) from a file name: ``my clip.mp4`` -> ``my_clip``."""
    name = _NAME_OK.sub("_", Path(path).stem).strip("_.-") or "replay"
    return name if name[0].isalnum() else f"c{name}"[:64]


def video_info(path: str | Path) -> tuple[int | None, float | None]:
    """(frame count, fps) from the container; None when unknown."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None, None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return (n if n > 0 else None), (fps if fps > 0 else None)
    finally:
        cap.release()


class Progress:
    """tqdm if available, else a one-line bar redrawn on ``stream``."""

    def __init__(self, total: int | None, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.n = 0
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, unit="frame", file=self.stream, dynamic_ncols=True)

    def update_to(self, n: int, postfix: str = "") -> None:
        if not self.enabled or n == self.n:
            return
        delta, self.n = n - self.n, n
        if self._bar is not None:
            self._bar.update(delta)
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_draw < 0.25 and (self.total is None or n < self.total):
            return
        self._last_draw = now
        fps = n / max(now - self._t0, 1e-6)
        if self.total:
            frac = min(1.0, n / self.total)
            bar = "#" * int(frac * 30)
            line = f"\r[{bar:<30}] {frac:4.0%} {n}/{self.total} frames {fps:5.1f} fps {postfix}"
        else:
            line = f"\r{n} frames {fps:5.1f} fps {postfix}"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class ReplayResult:
    summary: PipelineSummary
    interrupted: bool
    annotated_frames: int | None
    total_frames: int | None


def replay_file(
    video: str | Path,
    engine: InferenceEngine,
    sinks: Sequence[Sink],
    *,
    camera: str | None = None,
    sample_every: int = 1,
    realtime: bool = False,
    motion_gate: bool = False,
    annotate: str | Path | None = None,
    voting: VotingConfig | None = None,
    events: EventOptions | None = None,
    progress: bool = True,
    install_signals: bool = True,
    stats_interval_s: float = 30.0,
    strict: bool = False,
) -> ReplayResult:
    """Run one video file through the pipeline; returns the summary once it has ended (or was
    interrupted by SIGINT/SIGTERM when ``install_signals``)."""
    from edge.app.annotate import VideoAnnotator
    from edge.app.pipeline import install_signal_handlers
    from edge.config.schema import CameraConfig

    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    total, fps = video_info(video)
    name = camera or camera_name_for(video)
    cam = CameraConfig(
        name=name,
        source=str(video),
        type="file",
        sample_every=sample_every,
        realtime=realtime,
        motion_gate=motion_gate,
        queue_size=8,
    )
    voting = voting or VotingConfig()
    annotator = VideoAnnotator(annotate, fps or 25.0) if annotate else None

    def on_frame(frame, fa, overlays):  # type: ignore[no-untyped-def]
        if annotator is not None:
            mark = "" if fa is None else (" analysed" if fa.analysed else " idle")
            annotator.put(frame.image, overlays, f"{name} #{frame.index}{mark}")

    pipe = Pipeline(
        [cam],
        engine,
        MultiSink(sinks),
        voter_config=voting.voter_config(),
        formats=voting.plate_formats(),
        events=events,
        on_frame=on_frame,
        stats_interval_s=stats_interval_s,
        strict=strict,
    )
    bar = Progress(total, enabled=progress)
    restore = install_signal_handlers(pipe.request_stop) if install_signals else None
    interrupted = False
    try:
        pipe.start()
        cam_rt = pipe.cameras[0]
        while not pipe.wait(0.2):
            c = cam_rt.analyzer.counters
            bar.update_to(cam_rt.frames, f"events {c.provisional + c.final}")
            if pipe.stop_requested:
                interrupted = True
                break
        c = cam_rt.analyzer.counters
        bar.update_to(cam_rt.frames, f"events {c.provisional + c.final}")
    finally:
        bar.close()
        summary = pipe.stop()
        if annotator is not None:
            annotator.close()
        if restore is not None:
            restore()
    if pipe.error is not None:
        raise RuntimeError(f"replay failed: {pipe.error}") from pipe.error
    if annotator is not None and annotator.error:
        raise OSError(f"annotated video {annotate}: {annotator.error}")
    return ReplayResult(
        summary, interrupted, annotator.frames_written if annotator else None, total
    )


def format_summary(r: ReplayResult) -> list[str]:
    s = r.summary
    lines = []
    for c in s.cameras:
        lines.append(
            f"{c.camera}: {c.frames} frames"
            + (f" of {r.total_frames}" if r.total_frames else "")
            + f", {c.analysed} analysed"
            + (f" ({c.motion_skipped} idle, motion gate)" if c.motion_skipped else "")
            + f", {c.corrupt} corrupt, {c.dropped} dropped"
            + (f", {c.errors} FAILED (see the log)" if c.errors else "")
        )
        lines.append(
            f"  events: {c.final} final, {c.provisional} provisional "
            f"({c.duplicates} duplicate decisions suppressed)"
        )
    st = s.stages
    lines.append(
        f"{s.frames} frames in {s.seconds:.1f} s = {s.fps:.1f} frames/s "
        f"({s.analysed / s.seconds if s.seconds else 0:.1f} analysed/s); stage time: detect "
        f"{st.detect:.1f} s, read {st.read:.1f} s, track+vote {st.track_vote:.2f} s, "
        f"sink {s.sink_seconds:.2f} s"
    )
    if r.annotated_frames is not None:
        lines.append(f"annotated video: {r.annotated_frames} frames")
    if r.interrupted:
        lines.append("interrupted: stopped early (signal)")
    return lines


def parse_host_port(value: str, default_port: int = 1883) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port); argparse-friendly errors."""
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?", value.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:PORT, got {value!r}")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or default_port)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    return host, port


def mqtt_sink(host: str, port: int, spool_dir: Path | None = None) -> Sink:
    from edge.sinks.mqtt import MqttSink

    kw: dict[str, Any] = {"host": host, "port": port}
    if spool_dir is not None:
        kw["spool_dir"] = spool_dir
    return MqttSink(**kw)


def _run(args: argparse.Namespace) -> int:
    from edge.app.pipeline import AlprEngine

    voting, events_opts = VotingConfig(), EventOptions()
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as e:
            for issue in e.issues:
                print(issue, file=sys.stderr)
            return 2
        voting = cfg.voting
        events_opts = cfg.events.options()
        if args.detector is None and args.models is None:
            args.detector, args.reader = cfg.models.detector, cfg.models.reader
    if args.stats_interval <= 0:
        print(f"--stats-interval must be > 0, got {args.stats_interval}", file=sys.stderr)
        return 2
    if args.no_crops:
        events_opts = dataclasses.replace(events_opts, crop=False)
    sinks: list[Sink] = []
    if args.events:
        from edge.sinks.jsonl import JsonlSink

        out = Path(args.events)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")  # a replay writes a fresh file (JsonlSink itself appends)
        sinks.append(JsonlSink(out))
    if args.mqtt:
        host, port = parse_host_port(args.mqtt)
        sinks.append(mqtt_sink(host, port, args.spool))
    if args.print_events or not sinks:
        from edge.sinks.stdout import StdoutSink

        sinks.append(StdoutSink())
    from edge.detect.models import models_from_args

    det, rd = models_from_args(args)
    from edge.detect.alpr import Alpr

    engine = AlprEngine(Alpr(det, rd))
    result = replay_file(
        args.video,
        engine,
        sinks,
        camera=args.camera,
        sample_every=args.sample_every,
        realtime=args.realtime,
        motion_gate=args.motion_gate,
        annotate=args.annotate,
        voting=voting,
        events=events_opts,
        progress=not args.no_progress,
        stats_interval_s=args.stats_interval,
    )
    for line in format_summary(result):
        print(line, file=sys.stderr)
    if args.events:
        print(f"events: {args.events}", file=sys.stderr)
    if args.annotate:
        print(f"annotated video: {args.annotate}", file=sys.stderr)
    return 130 if result.interrupted else 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edge.detect.models import add_model_arguments

    p = subparsers.add_parser(
        "replay",
        help="run a video file through the pipeline (events, annotated video)",
        description="Replay a recorded clip through detection, tracking and voting as fast as "
        "possible (no frame is dropped). Events are printed as JSON lines unless --events or "
        "--mqtt is given.",
    )
    p.add_argument("video", metavar="VIDEO", help="video file (mp4, mkv, avi, ...)")
    p.add_argument("--events", metavar="OUT.jsonl", help="write events as JSON Lines")
    p.add_argument("--annotate", metavar="OUT.mp4", help="write the annotated video")
    p.add_argument(
        "--sample-every",
        type=int,
        default=1,
        metavar="N",
        help="analyse every Nth frame (default 1)",
    )
    p.add_argument("--motion-gate", action="store_true", help="skip detection on idle frames")
    p.add_argument("--mqtt", metavar="HOST:PORT", help="also publish to this MQTT broker")
    p.add_argument(
        "--spool",
        type=Path,
        default=None,
        metavar="DIR",
        help="MQTT spool directory (default: the state dir)",
    )
    p.add_argument("--camera", default=None, help="camera name in events (default: file name)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace at the file's fps and drop frames like a live camera",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="take voting/events/models settings from a cameras.yaml",
    )
    p.add_argument("--print-events", action="store_true", help="also print events to stdout")
    p.add_argument("--no-crops", action="store_true", help="no base64 plate crops in events")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--stats-interval",
        type=float,
        default=30.0,
        metavar="S",
        help="period of <camera>/stats messages with --mqtt (default 30; a short clip needs less)",
    )
    add_model_arguments(p)
    p.set_defaults(func=_run)
    return p


__all__ = [
    "Progress",
    "ReplayResult",
    "add_parser",
    "camera_name_for",
    "format_summary",
    "parse_host_port",
    "replay_file",
    "video_info",
]
