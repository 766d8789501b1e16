"""The runtime's YAML configuration: pydantic models, loading, and errors that name field and line.

`load_config(path)` is the only entry point most code needs. It

1. parses the YAML once into a node tree (kept to map a field path back to its line),
2. substitutes ``${ENV}`` / ``${ENV:-default}`` in string values (``$${X}`` is a literal ``${X}``),
3. validates with pydantic (unknown keys are errors, with a did-you-mean suggestion),
4. resolves relative paths against the directory of the YAML file,

and raises `ConfigError` whose ``errors`` read like
``cameras.yaml:7: cameras[1].source: Field required``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.capture.sources import SourceKind, detect_source_kind
from edge.history.store import HistoryConfig
from edge.integrations.homeassistant import HomeAssistantConfig
from edge.rules.privacy import PrivacyConfig
from edge.rules.watchlist import WatchlistConfig
from edge.rules.zones import CameraGeometryConfig

# Repository checkout layout: edge/ next to models/. Defaults point at the shipped models.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a camera name is an MQTT topic level: no / + # spaces
_MODEL_SUFFIXES = {
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".trt": "tensorrt",
    ".pt": "ultralytics",
}


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt option silently ignored is worse than a refusal.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ReconnectConfig(_Strict):
    """Exponential back-off for a camera that cannot be opened or stops sending frames."""

    initial_s: float = Field(1.0, gt=0, description="first retry delay")
    max_s: float = Field(30.0, gt=0, description="retry delay ceiling")
    multiplier: float = Field(2.0, ge=1.0)
    jitter: float = Field(0.2, ge=0.0, le=1.0, description="+/- fraction of random spread")

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        return self


class CameraConfig(_Strict):
    name: str = Field(pattern=_NAME, max_length=64)
    source: str | int
    type: Literal["auto", "file", "stream", "usb", "gstreamer", "images"] = "auto"
    fps: float | None = Field(None, gt=0, le=1000, description="override the source's fps")
    realtime: bool = Field(False, description="pace files at their fps and drop like live")
    loop: bool = Field(False, description="restart files/folders at the end")
    enabled: bool = True
    queue_size: int = Field(4, ge=1, le=1024, description="frames buffered for the pipeline")
    open_timeout_s: float = Field(5.0, gt=0, le=600)
    read_timeout_s: float = Field(5.0, gt=0, le=600)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    width: int | None = Field(None, gt=0, description="requested USB capture width")
    height: int | None = Field(None, gt=0, description="requested USB capture height")
    sample_every: int = Field(1, ge=1, description="analyse every Nth frame")
    motion_gate: bool = False
    geometry: CameraGeometryConfig | None = Field(
        None,
        description="zones, require_zones and the entry/exit direction_line (edge.rules.zones)",
    )

    @field_validator("source", mode="before")
    @classmethod
    def _source_type(cls, v: Any) -> Any:
        # One clear message instead of pydantic's two union branch errors.
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise ValueError(
                "must be a path, URL, GStreamer pipeline (string) or a USB camera index (integer)"
            )
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        if isinstance(v, int) and v < 0:
            raise ValueError("a USB camera index must be >= 0")
        return v

    @property
    def kind(self) -> SourceKind:
        """The source kind: the explicit ``type`` or the one detected from ``source``."""
        if self.type != "auto":
            return SourceKind(self.type)
        return detect_source_kind(self.source)

    @property
    def is_live(self) -> bool:
        return self.kind.is_live


class ModelsConfig(_Strict):
    detector: Path = DEFAULT_MODELS_DIR / "detector.onnx"
    reader: Path = DEFAULT_MODELS_DIR / "reader.onnx"
    threads: int = Field(1, ge=1, le=256, description="intra-op threads per model")
    backend: Literal["auto", "onnxruntime", "tensorrt", "ultralytics"] = "auto"

    @field_validator("detector", "reader")
    @classmethod
    def _known_suffix(cls, v: Path) -> Path:
        if v.suffix.lower() not in _MODEL_SUFFIXES:
            raise ValueError(
                f"unknown model file type {v.suffix or '(none)'!r}; expected one of "
                + ", ".join(sorted(_MODEL_SUFFIXES))
            )
        return v

    def backend_for(self, path: Path) -> str:
        """Backend for one model file: the explicit ``backend`` or the one its extension means."""
        if self.backend != "auto":
            return self.backend
        return _MODEL_SUFFIXES[path.suffix.lower()]


class TLSConfig(_Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = Field(False, description="skip server certificate/hostname verification")

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together (client certificate)")
        return self


class MQTTConfig(_Strict):
    """Broker connection; `mqtt_settings()` turns it into the MQTT sink's own settings."""

    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    tls: TLSConfig | None = None
    username: str | None = None
    password: SecretStr | None = None  # .get_secret_value(); kept out of repr and logs
    topic_prefix: str = "platewatch"
    client_id: str | None = None
    keepalive: int = Field(60, ge=5, le=3600)
    spool_dir: Path | None = Field(None, description="None: the sink's default state dir")
    spool_max_mb: float = Field(256.0, gt=0)
    stats_interval_s: float = Field(30.0, gt=0, description="period of <camera>/stats messages")

    @field_validator("topic_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v or v != v.strip("/") or any(c in v for c in "+#\x00"):
            raise ValueError("must be a non-empty MQTT topic without wildcards or edge slashes")
        return v

    @model_validator(mode="after")
    def _password_needs_user(self) -> MQTTConfig:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self

    def mqtt_settings(self) -> Any:
        """`edge.sinks.mqtt.MqttSettings` for this section (imported lazily: paho is heavy)."""
        from edge.sinks.mqtt import MqttSettings

        kw: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "topic_prefix": self.topic_prefix,
            "username": self.username,
            "password": self.password.get_secret_value() if self.password else None,
            "keepalive_s": self.keepalive,
            "spool_max_mb": self.spool_max_mb,
        }
        if self.spool_dir is not None:
            kw["spool_dir"] = self.spool_dir
        if self.tls is not None:
            t = self.tls
            kw.update(
                tls=True,
                tls_ca_certs=str(t.ca) if t.ca else None,
                tls_certfile=str(t.cert) if t.cert else None,
                tls_keyfile=str(t.key) if t.key else None,
                tls_insecure=t.insecure,
            )
        return MqttSettings(**kw)


class PatternConfig(_Strict):
    """A plate format (edge.vote.formats syntax); ``regex`` is e.g. ``[A-Z]{2}[0-9]{4}``."""

    name: str = Field(min_length=1)
    regex: str
    region: str = ""
    weak: bool = False

    @model_validator(mode="after")
    def _parses(self) -> PatternConfig:
        # Validate with the real parser now, so an unsupported pattern is a config error with a
        # line number instead of a crash when the pipeline starts.
        from edge.vote.formats import PlatePattern

        try:
            PlatePattern.from_dict(self.as_dict())
        except (ValueError, re.error) as e:
            raise ValueError(str(e)) from e
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pattern": self.regex, "region": self.region, "weak": self.weak}


class VotingConfig(_Strict):
    """Per-track voting; field names and defaults mirror `edge.vote.voter.VoterConfig`."""

    provisional_min_reads: int = Field(3, ge=1)
    provisional_min_confidence: float = Field(0.8, ge=0, le=1)
    final_min_reads: int = Field(2, ge=1)
    final_min_confidence: float = Field(0.5, ge=0, le=1)
    final_min_repeats: int = Field(
        2, ge=1, description="a final with no provisional: its text read exactly this many times"
    )
    require_format: bool = Field(False, description="decisions need a real format match")
    min_plate_length: int = Field(4, ge=1, description="shorter consensus reads are no event")
    reappear_window_s: float = Field(10.0, ge=0, description="same plate again = same vehicle")
    max_track_duration_s: float | None = Field(60.0, gt=0, description="parked car: final after")
    regions: list[str] | None = Field(
        None,
        description="shipped formats of these regions only; they also repair reads (unset: all"
        " formats label reads, none repairs them)",
    )
    patterns: list[PatternConfig] = Field(
        default_factory=list, description="custom formats; replace the shipped ones when given"
    )
    max_swaps: int = Field(2, ge=0, description="most O/0-style repairs per read")

    @field_validator("patterns", mode="before")
    @classmethod
    def _plain_strings(cls, v: Any) -> Any:
        # `- '[A-Z]{2}[0-9]{4}'` is shorthand for {name: <regex>, regex: <regex>}; `pattern:` is
        # accepted as another name for `regex:` (edge.vote.formats's own spelling).
        if isinstance(v, list):
            out = []
            for p in v:
                if isinstance(p, str):
                    p = {"name": p, "regex": p}
                elif isinstance(p, dict) and "pattern" in p and "regex" not in p:
                    p = {("regex" if k == "pattern" else k): val for k, val in p.items()}
                out.append(p)
            return out
        return v

    @field_validator("regions")
    @classmethod
    def _regions_known(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            from edge.vote.formats import PlateFormats

            PlateFormats.default(v)  # raises ValueError naming the unknown regions
        return v

    @model_validator(mode="after")
    def _unique_patterns(self) -> VotingConfig:
        names = [p.name for p in self.patterns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate pattern names {dupes}")
        return self

    def voter_config(self) -> Any:
        """`edge.vote.voter.VoterConfig` with these thresholds (other fields keep their
        defaults)."""
        from edge.vote.voter import VoterConfig

        # every field but the format ones is a VoterConfig field of the same name
        return VoterConfig(**self.model_dump(exclude={"regions", "patterns", "max_swaps"}))

    def plate_formats(self) -> Any:
        """`edge.vote.formats.PlateFormats`: the custom patterns, else the shipped ones."""
        from edge.vote.formats import PlateFormats

        if self.patterns:
            return PlateFormats([p.as_dict() for p in self.patterns], max_swaps=self.max_swaps)
        if self.regions is None:
            # No country chosen: every shipped format names the reads it matches, but none may
            # repair them. Some foreign pattern is one swap from almost any plate (a Californian
            # 0FMU202 became the German OFMU202): on 13 rendered clips, repairing towards every
            # format got 43 of 52 plates right, no repair 47 (benchmarks/synthetic_clips.py).
            return PlateFormats.default(None, max_swaps=0)
        return PlateFormats.default(self.regions, max_swaps=self.max_swaps)


class EventsConfig(_Strict):
    crop: bool = True
    crop_max_width: int = Field(320, ge=16, le=4096)
    crop_quality: int = Field(85, ge=1, le=100)
    provisional: bool = Field(True, description="publish provisional events, not only finals")
    static_plate_s: float | None = Field(
        2.0,
        gt=0,
        description="a plate tied to no vehicle that has not moved for this long (seconds) is a"
        " sign or painted text: no event (null: off)",
    )
    static_max_move: float = Field(
        0.01, ge=0, le=1, description="'not moved': centre moved < this x frame diagonal"
    )

    def options(self) -> Any:
        """`edge.analysis.analyzer.EventOptions` with these settings (the same field names)."""
        from edge.analysis.analyzer import EventOptions

        return EventOptions(**self.model_dump())


class SinksConfig(_Strict):
    jsonl: Path | None = None
    stdout: bool = False


class WatchdogConfig(_Strict):
    """Stage watchdog (edge.app.watchdog): restart a stalled capture, report a stuck worker/sink."""

    enabled: bool = True
    check_interval_s: float = Field(2.0, gt=0, le=600, description="how often stages are checked")
    capture_stall_s: float = Field(
        30.0,
        gt=0,
        description="a live camera 'online'/'connecting' with no new frame this long is "
        "restarted (at least 2x its open/read timeout)",
    )
    inference_stall_s: float = Field(
        60.0, gt=0, description="the inference worker on one frame this long: unhealthy"
    )
    sink_stall_s: float = Field(
        60.0, gt=0, description="the sink thread inside one publish this long: unhealthy"
    )
    max_stuck_threads: int = Field(
        4, ge=0, description="abandoned blocked capture threads tolerated before 'unhealthy'"
    )


class AppConfig(_Strict):
    cameras: list[CameraConfig] = Field(min_length=1)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    mqtt: MQTTConfig | None = None
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
        """Rules that span sections, as (field path, message); parse_config adds their lines."""
        out: list[tuple[tuple[int | str, ...], str]] = []
        if self.homeassistant.enabled and self.mqtt is None:
            out.append(
                (
                    ("homeassistant", "enabled"),
                    "Home Assistant discovery is published over MQTT: add an 'mqtt:' section",
                )
            )
        return out

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, v: list[CameraConfig]) -> list[CameraConfig]:
        seen: set[str] = set()
        for cam in v:
            if cam.name in seen:
                raise ValueError(f"duplicate camera name {cam.name!r}")
            seen.add(cam.name)
        return v

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str  # "cameras[1].source"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """Invalid configuration; ``issues`` holds one `ConfigIssue` per problem."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))

    @property
    def errors(self) -> list[str]:
        return [str(i) for i in self.issues]


_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(text: str, env: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; ``$${`` stays a literal ``${``.

    Raises KeyError(VAR) for an unset variable without a default.
    """
    env = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV.sub(repl, text)


def format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _child(node: yaml.Node | None, key: int | str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) of ``key`` in a mapping or sequence node, or (None, None)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return k, v
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
        if 0 <= key < len(node.value):
            return node.value[key], node.value[key]
    return None, None


def line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[int | None, int]:
    """1-based line for a field path, and how many path parts exist in the YAML.

    A missing field maps to the line of the closest enclosing mapping that exists (for
    ``cameras[1].source`` the line where ``cameras[1]`` starts). An unknown key maps to that
    key's own line.
    """
    node, line, depth = root, None, 0
    if root is not None:
        line = root.start_mark.line + 1
    for part in loc:
        key_node, value_node = _child(node, part)
        if value_node is None:
            break
        depth += 1
        node = value_node
        line = (key_node or value_node).start_mark.line + 1
    return line, depth


def _fields_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names valid at ``loc`` (for did-you-mean); empty if the path is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _issues_from_validation(
    err: ValidationError, root: yaml.Node | None, file: str
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            options = _fields_of(AppConfig, loc[:-1])
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
            msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            if options and not close:
                msg += f"; valid keys: {', '.join(options)}"
        elif e["type"] == "missing":
            msg = "field required"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        line, _ = line_of(root, loc)
        path = format_path(loc)
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        issues.append(ConfigIssue(file, line, path, msg))
    return issues


def _walk(
    node: yaml.Node, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], yaml.Node]]:
    yield loc, node
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _walk(v, (*loc, str(getattr(k, "value", "?"))))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield from _walk(v, (*loc, i))


def _duplicate_keys(root: yaml.Node, file: str) -> list[ConfigIssue]:
    # PyYAML keeps the last of two equal keys without a word; a config should not.
    issues = []
    for loc, node in _walk(root, ()):
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if k.value in seen:
                        issues.append(
                            ConfigIssue(
                                file,
                                k.start_mark.line + 1,
                                format_path((*loc, k.value)),
                                "duplicate key",
                            )
                        )
                    seen.add(k.value)
    return issues


def _substitute(
    data: Any, loc: tuple[int | str, ...], root: yaml.Node, file: str, issues: list[ConfigIssue]
) -> Any:
    if isinstance(data, dict):
        return {k: _substitute(v, (*loc, k), root, file, issues) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, (*loc, i), root, file, issues) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        try:
            return substitute_env(data)
        except KeyError as e:
            issues.append(
                ConfigIssue(
                    file,
                    line_of(root, loc)[0],
                    format_path(loc),
                    f"environment variable {e.args[0]} is not set "
                    f"(use ${{{e.args[0]}:-default}} for a default)",
                )
            )
    return data


def _resolve_paths(cfg: AppConfig, base: Path) -> AppConfig:
    """Relative paths in the file are relative to the file, so the config works from any cwd."""

    def rel(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        # normpath, not resolve(): keep the user's symlinks, drop the "examples/../" noise.
        return p if p.is_absolute() else Path(os.path.normpath(base / p))

    m = cfg.models
    if "detector" in m.model_fields_set:
        m.detector = rel(m.detector)  # type: ignore[assignment]
    if "reader" in m.model_fields_set:
        m.reader = rel(m.reader)  # type: ignore[assignment]
    if cfg.mqtt is not None:
        cfg.mqtt.spool_dir = rel(cfg.mqtt.spool_dir)
        if cfg.mqtt.tls is not None:
            t = cfg.mqtt.tls
            t.ca, t.cert, t.key = rel(t.ca), rel(t.cert), rel(t.key)
    cfg.sinks.jsonl = rel(cfg.sinks.jsonl)
    if cfg.history is not None and "path" in cfg.history.model_fields_set:
        cfg.history.path = rel(cfg.history.path)  # type: ignore[assignment]
    for cam in cfg.cameras:
        if cam.kind in (SourceKind.FILE, SourceKind.IMAGES) and isinstance(cam.source, str):
            src = cam.source
            if src.startswith("file://"):
                src = src[len("file://") :]
            p = Path(src).expanduser()
            if not p.is_absolute():
                cam.source = os.path.normpath(base / p)
    return cfg


def parse_config(text: str, file: str = "<config>", base_dir: Path | None = None) -> AppConfig:
    """Validate YAML text; `ConfigError` lists every problem with its line."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([ConfigIssue(file, line, "", f"YAML syntax error: {problem}")]) from e
    if data is None:
        raise ConfigError([ConfigIssue(file, None, "", "empty configuration (need 'cameras:')")])
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(file, root.start_mark.line + 1, "", "top level must be a mapping")]
        )
    issues = _duplicate_keys(root, file)
    data = _substitute(data, (), root, file, issues)
    cfg: AppConfig | None = None
    try:
        cfg = AppConfig.model_validate(data)
    except ValidationError as e:
        issues.extend(_issues_from_validation(e, root, file))
    if cfg is not None:
        for loc, msg in cfg.cross_checks():
            issues.append(ConfigIssue(file, line_of(root, loc)[0], format_path(loc), msg))
    if issues:
        issues.sort(key=lambda i: (i.line or 0, i.path))
        raise ConfigError(issues)
    assert cfg is not None
    return _resolve_paths(cfg, base_dir if base_dir is not None else Path.cwd())


def load_config(path: str | os.PathLike[str]) -> AppConfig:
    """Read and validate a YAML configuration file. Raises `ConfigError` (or OSError)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([ConfigIssue(str(p), None, "", f"cannot read: {e.strerror}")]) from e
    return parse_config(text, file=str(p), base_dir=p.resolve().parent)
