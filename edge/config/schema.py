"""The runtime's configuration file: an aggregate of the stages' own settings.

Each section is the settings model of the stage that uses it, defined next to its code (defaults
and validation written once); this module only puts them together and checks the rules that
span sections. Loading, ``${ENV}`` substitution and errors with line numbers are
edge.config.loader's.

    device         this device's id (events and MQTT topics carry it)
    cameras[]      CameraConfig = edge.capture.config.CaptureConfig + the camera's sampling,
                   motion gate and geometry (edge.rules.zones)
    models         edge.detect.config.ModelsConfig
    tracking       edge.track.config.TrackingConfig
    motion         edge.capture.config.MotionConfig
    voting         edge.vote.config.VotingConfig
    events         edge.events.config.EventsConfig
    mqtt           edge.sinks.mqtt.MqttSettings
    sinks          SinksConfig (below: which local sinks)
    watchlists     edge.rules.watchlist.WatchlistConfig
    privacy        edge.rules.privacy.PrivacyConfig
    history        edge.history.store.HistoryConfig
    homeassistant  edge.integrations.homeassistant.HomeAssistantConfig
    watchdog       edge.app.watchdog.WatchdogConfig
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from edge.app.watchdog import WatchdogConfig
from edge.capture.config import CaptureConfig, MotionConfig
from edge.detect.config import ModelsConfig
from edge.events.config import EventsConfig
from edge.events.schema import DEVICE_ID_PATTERN, default_device_id
from edge.history.store import HistoryConfig
from edge.integrations.homeassistant import HomeAssistantConfig
from edge.rules.privacy import PrivacyConfig
from edge.rules.watchlist import WatchlistConfig
from edge.rules.zones import CameraGeometryConfig
from edge.settings import ConfigPath, Settings
from edge.sinks.mqtt import MqttSettings
from edge.track.config import TrackingConfig
from edge.vote.config import VotingConfig

# Repository checkout layout: edge/ next to models/ and samples/.
REPO_ROOT = Path(__file__).resolve().parents[2]


class CameraConfig(CaptureConfig):
    """One ``cameras:`` entry: where frames come from (CaptureConfig) and what is done with them."""

    enabled: bool = Field(True, description="false: the camera is configured but not run")
    sample_every: int = Field(1, ge=1, description="analyse every Nth frame")
    motion_gate: bool = Field(False, description="skip detection on idle frames (see motion:)")
    geometry: CameraGeometryConfig | None = Field(
        None, description="zones, require_zones and the entry/exit direction_line"
    )


class SinksConfig(Settings):
    jsonl: ConfigPath | None = Field(None, description="append every event to this JSON Lines file")
    stdout: bool = Field(False, description="print every event as a JSON line")


class AppConfig(Settings):
    device: str = Field(
        default_factory=default_device_id,
        pattern=DEVICE_ID_PATTERN,
        description="this device's id in every event and MQTT topic (default: the host name); "
        "unique per site, it tells devices apart at a central collector",
    )
    cameras: list[CameraConfig] = Field(min_length=1)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    mqtt: MqttSettings | None = None
    voting: VotingConfig = Field(default_factory=VotingConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    sinks: SinksConfig = Field(default_factory=SinksConfig)
    watchlists: list[WatchlistConfig] = Field(
        default_factory=list, description="allow/deny lists: matches add `watchlist` and alert"
    )
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    history: HistoryConfig | None = Field(
        None, description="local SQLite history of final events (off when the section is absent)"
    )
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)

    @field_validator("watchlists")
    @classmethod
    def _unique_lists(cls, v: list[WatchlistConfig]) -> list[WatchlistConfig]:
        names = [w.name for w in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate watchlist name(s) {dupes}")
        return v

    def cross_checks(self) -> list[tuple[tuple[int | str, ...], str]]:
        """Rules that span sections, as (field path, message); the loader adds their lines."""
        out: list[tuple[tuple[int | str, ...], str]] = []
        if self.homeassistant.enabled and self.mqtt is None:
            out.append(
                (
                    ("homeassistant", "enabled"),
                    "Home Assistant discovery is published over MQTT: add an 'mqtt:' section",
                )
            )
        seen: dict[str, int] = {}
        for i, cam in enumerate(self.cameras):
            if cam.name in seen:
                out.append(
                    (
                        ("cameras", i, "name"),
                        f"duplicate camera name {cam.name!r} (also cameras[{seen[cam.name]}])",
                    )
                )
            seen.setdefault(cam.name, i)
        return out

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)

    @property
    def enabled_cameras(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]
