"""Replaying a recorded file through the full pipeline, as fast as it goes.

`replay_config` turns a configuration (or the defaults) into the one a replay runs: the video
file is the camera, and every other section (models, voting, events, watchlists, zones, privacy,
history, sinks) applies unchanged. `replay` builds the pipeline through edge.app.assembly (the
same path as ``platewatch run``), draws the annotated video, shows progress and returns the
summary. Files never drop frames (the capture waits for the pipeline) unless ``realtime``
paces them at their fps like a live camera.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from edge.app.assembly import build_pipeline
from edge.app.camera import InferenceEngine
from edge.app.pipeline import PipelineSummary, install_signal_handlers
from edge.app.progress import Progress
from edge.config.schema import AppConfig, CameraConfig
from edge.events.config import EventsConfig
from edge.sinks.base import MultiSink, Sink
from edge.vote.config import VotingConfig

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


class ReplayConfigError(ValueError):
    """The configuration cannot be replayed as asked (e.g. which camera's settings is unclear)."""


def replay_config(
    video: str | Path,
    base: AppConfig | None = None,
    *,
    camera: str | None = None,
    sample_every: int | None = None,
    realtime: bool | None = None,
    motion_gate: bool | None = None,
) -> AppConfig:
    """The configuration that replays ``video``: ``base`` (or the defaults) with the file as its
    only camera.

    The camera settings (sampling, motion gate, zones) are those of the ``base`` camera named
    ``camera``, or of its only camera (then ``camera`` only names the events); a ``base`` with
    several cameras needs ``camera`` to say whose settings apply. Keyword arguments other than None
    override those settings.
    """
    settings: dict[str, Any] = {}
    name = camera
    if base is not None and base.cameras:
        names = [c.name for c in base.cameras]
        if camera is not None and camera in names:
            chosen = base.camera(camera)
        elif len(base.cameras) == 1:
            chosen = base.cameras[0]  # its settings, under the name asked for (if any)
        else:
            raise ReplayConfigError(
                f"the configuration has cameras {', '.join(names)}: choose whose settings "
                "(zones, sampling, motion gate) the replay uses with --camera NAME"
            )
        name = camera or chosen.name
        settings = {
            "sample_every": chosen.sample_every,
            "motion_gate": chosen.motion_gate,
            "geometry": chosen.geometry,
            "fps": chosen.fps,
        }
    for key, value in (
        ("sample_every", sample_every),
        ("realtime", realtime),
        ("motion_gate", motion_gate),
    ):
        if value is not None:
            settings[key] = value
    cam = CameraConfig(
        name=name or camera_name_for(video),
        source=str(video),
        type="file",
        queue_size=8,
        **settings,
    )
    if base is None:
        return AppConfig(cameras=[cam])
    return base.model_copy(update={"cameras": [cam]})


@dataclass
class ReplayResult:
    summary: PipelineSummary
    interrupted: bool
    annotated_frames: int | None
    total_frames: int | None


def replay(
    cfg: AppConfig,
    *,
    engine: InferenceEngine | None = None,
    sink: Sink | None = None,
    extra_sinks: Sequence[Sink] = (),
    annotate: str | Path | None = None,
    progress: bool = True,
    install_signals: bool = True,
    strict: bool = False,
    drain_timeout_s: float = 10.0,
    annotate_all: bool = False,
) -> ReplayResult:
    """Run the (single, file) camera of ``cfg`` to its end (or SIGINT/SIGTERM when
    ``install_signals``) and return the summary. At the end the sinks get up to
    ``drain_timeout_s`` to deliver what they hold (an MQTT broker that was away takes the spool);
    ``summary.undelivered`` says what is left."""
    from edge.app.annotate import VideoAnnotator

    if len(cfg.enabled_cameras) != 1:
        raise ReplayConfigError("a replay runs exactly one camera (see replay_config)")
    video = Path(str(cfg.enabled_cameras[0].source))
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    total, fps = video_info(video)
    name = cfg.enabled_cameras[0].name
    annotator = VideoAnnotator(annotate, fps or 25.0, everything=annotate_all) if annotate else None

    def on_frame(frame, result, sampled, overlays):  # type: ignore[no-untyped-def]
        if annotator is not None:
            mark = "" if not sampled else (" analysed" if result is not None else " idle")
            # the video obeys the privacy rule like every other output
            shown = [
                o if o.plate is None else dataclasses.replace(o, plate=pipe.delivery.shown(o.plate))
                for o in overlays
            ]
            annotator.put(frame.image, shown, f"{name} #{frame.index}{mark}")

    pipe = build_pipeline(
        cfg,
        engine=engine,
        sink=sink,
        extra_sinks=extra_sinks,
        on_frame=on_frame if annotator is not None else None,
        strict=strict,
    )
    bar = Progress(total, enabled=progress, stdout_events=cfg.sinks.stdout)
    restore = install_signal_handlers(pipe.request_stop) if install_signals else None
    interrupted = False
    try:
        pipe.start()
        cam = pipe.cameras[0]
        while not pipe.wait(0.2):
            c = cam.analyzer.counters
            bar.update_to(cam.frames, f"events {c.provisional + c.final}")
            if pipe.stop_requested:
                interrupted = True
                break
        c = cam.analyzer.counters
        bar.update_to(cam.frames, f"events {c.provisional + c.final}")
    finally:
        bar.close()
        summary = pipe.stop(drain_s=0.0 if interrupted else drain_timeout_s)
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
    events: EventsConfig | None = None,
    progress: bool = True,
    install_signals: bool = True,
    strict: bool = False,
) -> ReplayResult:
    """``replay`` of one file with default settings but these (benchmarks and tests)."""
    base = AppConfig(
        cameras=[CameraConfig(name="replay", source=str(video))],
        voting=voting or VotingConfig(),
        events=events or EventsConfig(),
    )
    cfg = replay_config(
        video,
        base,
        sample_every=sample_every,
        realtime=realtime,
        motion_gate=motion_gate,
    )
    cfg = cfg.model_copy(
        update={
            "cameras": [
                cfg.cameras[0].model_copy(update={"name": camera or camera_name_for(video)})
            ]
        }
    )
    return replay(
        cfg,
        engine=engine,
        sink=MultiSink(sinks),
        annotate=annotate,
        progress=progress,
        install_signals=install_signals,
        strict=strict,
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
            f"  events: {c.final} final, {c.provisional} provisional from {c.reads} plate reads "
            f"({c.duplicates} duplicate decisions suppressed"
            + (f", {c.static_plates} static text" if c.static_plates else "")
            + (f", {c.outside_zones} outside required zones" if c.outside_zones else "")
            + (
                f", {c.unpublished_provisional} provisionals unpublished"
                if c.unpublished_provisional
                else ""
            )
            + ")"
        )
        if c.watchlist_matches or c.alerts or c.hashed:
            lines.append(
                f"  rules: {c.watchlist_matches} watchlist matches, {c.alerts} alerts, "
                f"{c.hashed} plates hashed (privacy)"
            )
    st = s.stages
    lines.append(
        f"{s.frames} frames in {s.seconds:.1f} s = {s.fps:.1f} frames/s "
        f"({s.analysed / s.seconds if s.seconds else 0:.1f} analysed/s); stage time: detect "
        f"{st.detect:.1f} s, read {st.read:.1f} s, track+vote {st.track_vote:.2f} s, "
        f"sink {s.sink_seconds:.2f} s"
        + (f", motion gate {st.motion:.2f} s" if st.motion else "")
        + (f", annotate {st.annotate:.2f} s" if st.annotate else "")
    )
    if r.annotated_frames is not None:
        lines.append(f"annotated video: {r.annotated_frames} frames")
    if r.interrupted:
        lines.append("interrupted: stopped early (signal)")
    return lines
