"""The one assembly path: a validated `AppConfig` -> a ready `Pipeline`.

``platewatch run``, ``replay`` and ``demo`` all build their pipeline here, so every rule of the
configuration (models, tracking, voting, events, watchlists, zones, privacy, history, sinks)
applies whichever command runs it. The commands only change the configuration (replay: the file
is the camera; demo: the sample clip and an embedded broker) and add their own sinks or hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.analysis.analyzer import CameraAnalyzer
from edge.app.camera import CameraRuntime, InferenceEngine, SourceFactory
from edge.app.delivery import Delivery
from edge.app.pipeline import FrameHook, Pipeline
from edge.app.sink_worker import SinkWorker
from edge.capture.camera import make_source
from edge.capture.sampling import FrameSampler, MotionGate
from edge.config.schema import AppConfig
from edge.detect.alpr import Alpr
from edge.detect.config import ModelsConfig
from edge.rules.privacy import resolve_key
from edge.rules.watchlist import Watchlists
from edge.sinks.base import MultiSink, Sink


def build_engine(models: ModelsConfig) -> Alpr:
    """Detector + reader of the ``models:`` section (backend, device and threads as set)."""
    from edge.detect.models import load_models

    det, rd = load_models(
        threads=models.threads,
        device=models.device,
        detector=models.detector,
        reader=models.reader,
        backend=models.backend,
    )
    return Alpr(det, rd)


def build_sink(cfg: AppConfig, extra: Sequence[Sink] = ()) -> Sink:
    """History (first: an event is stored before it goes anywhere else), ``extra``, stdout,
    JSON Lines and MQTT (with Home Assistant discovery when enabled) sinks of a config."""
    sinks: list[Sink] = []
    if cfg.history is not None and cfg.history.enabled:
        from edge.history.store import HistoryStore
        from edge.sinks.history import HistorySink

        sinks.append(HistorySink(HistoryStore.from_config(cfg.history, cfg.privacy)))
    sinks += list(extra)
    if cfg.sinks.stdout:
        from edge.sinks.stdout import StdoutSink

        sinks.append(StdoutSink())
    if cfg.sinks.jsonl is not None:
        from edge.sinks.jsonl import JsonlSink

        sinks.append(JsonlSink(cfg.sinks.jsonl))
    if cfg.mqtt is not None:
        from edge.sinks.mqtt import MqttSink

        discovery = []
        ha = cfg.homeassistant
        if ha.enabled:
            from edge.integrations.homeassistant import discovery_messages

            discovery = discovery_messages(
                [c.name for c in cfg.enabled_cameras],
                prefix=ha.discovery_prefix,
                topic_prefix=cfg.mqtt.topic_prefix,
                stats_expire_after_s=ha.stats_expire_after_s,
                device=cfg.device,
            )
        sinks.append(MqttSink(cfg.mqtt, discovery=discovery, device=cfg.device))
    return MultiSink(sinks)


def build_cameras(
    cfg: AppConfig, source_factory: SourceFactory | None = None
) -> list[CameraRuntime]:
    formats = cfg.voting.plate_formats()
    return [
        CameraRuntime(
            capture_config=cam,
            sampler=FrameSampler(cam.sample_every),
            gate=MotionGate(cfg.motion) if cam.motion_gate else None,
            analyzer=CameraAnalyzer(
                cam.name,
                voting=cfg.voting,
                formats=formats,
                tracking=cfg.tracking,
                events=cfg.events,
                geometry=cam.geometry,
            ),
            source_factory=source_factory or make_source,
        )
        for cam in cfg.enabled_cameras
    ]


def build_pipeline(
    cfg: AppConfig,
    *,
    engine: InferenceEngine | None = None,
    sink: Sink | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_frame: FrameHook | None = None,
    source_factory: SourceFactory | None = None,
    strict: bool = False,
    stats_interval_s: float | None = None,
) -> Pipeline:
    """A pipeline for every enabled camera of ``cfg``.

    ``engine`` replaces the configured models (tests, benchmarks); ``sink`` replaces the
    configured sinks, ``extra_sinks`` are added to them; ``stats_interval_s`` overrides
    ``mqtt.stats_interval_s``. Raises PrivacyError before anything is opened when privacy is on
    without a key.
    """
    privacy_key = resolve_key(cfg.privacy)
    cameras = build_cameras(cfg, source_factory)
    if not cameras:
        raise ValueError("no enabled camera in the configuration")
    if engine is None:
        engine = build_engine(cfg.models)
    worker = SinkWorker(sink if sink is not None else build_sink(cfg, extra_sinks))
    delivery = Delivery(
        worker.put,
        events=cfg.events,
        watchlists=Watchlists(cfg.watchlists) if cfg.watchlists else None,
        privacy_key=privacy_key,
        device=cfg.device,
    )
    return Pipeline(
        cameras,
        engine,
        worker,
        delivery,
        stats_interval_s=stats_interval_s
        or (cfg.mqtt.stats_interval_s if cfg.mqtt is not None else 30.0),
        watchdog=cfg.watchdog,
        on_frame=on_frame,
        strict=strict,
    )
