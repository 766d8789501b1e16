"""MQTT sink (paho-mqtt 2, QoS 1) with an on-disk store-and-forward spool.

Topics (``<prefix>`` defaults to ``platewatch``; ``<dev>`` is the sink's ``device`` id, by
default the host name; edge.events.topics builds them):

- ``<prefix>/<dev>/<camera>/events``  every PlateEvent (provisional and final), QoS 1, not retained
- ``<prefix>/<dev>/<camera>/plate``   the last *final* PlateEvent, QoS 1, retained
- ``<prefix>/<dev>/<camera>/stats``   CameraStats, QoS 1, not retained, latest only (never spooled)
- ``<prefix>/<dev>/<camera>/alerts``  watchlist alerts (the PlateEvent JSON with ``watchlist``
                                set), QoS 1, NOT retained (HA ignores retained event triggers),
                                spooled like final events so a gate alert survives an outage
- ``<discovery>/.../config``    Home Assistant discovery (retained, QoS 1), re-published on every
                                connect when ``discovery`` messages are given
                                (edge.integrations.homeassistant)
- ``<prefix>/<dev>/status``     ``online`` (retained, on every connect) / ``offline`` (retained;
                                Last Will when the process dies, explicit on clean close)

Events and stats without a ``device`` get the sink's before they are serialised, so every
payload names its device as its topic does.

Delivery: ``publish_event`` writes the messages to the spool (fsync'd) and returns. One sender
thread hands spool rows to paho in seq order while connected, at most ``max_inflight`` unacked;
a row is deleted when its PUBACK arrives (``on_publish`` with the mid). On a disconnect the sender
stops; after the reconnect paho retransmits the unacked messages first (DUP flag, same order) and
the sender resumes only once they are acked, so the broker sees spool order. After a process
restart a new sink sends the whole remaining spool from the oldest row. Guarantee: at-least-once,
ordered per sink; a duplicate happens only when a PUBACK is lost with the connection, and it
carries the same ``event_id`` for consumers to drop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from edge.events.alerts import Alert
from edge.events.schema import DEVICE_ID_PATTERN, CameraStats, PlateEvent, default_device_id
from edge.events.topics import (
    alerts_topic,
    events_topic,
    plate_topic,
    stats_topic,
    status_topic,
)
from edge.settings import ConfigFile, ConfigPath, Settings
from edge.sinks.base import Sink
from edge.sinks.spool import PRIORITY_HIGH, PRIORITY_LOW, Spool, SpoolEntry

log = logging.getLogger(__name__)

STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"


def default_spool_dir() -> Path:
    """``$XDG_STATE_HOME/platewatch/spool`` (``~/.local/state/...``): survives reboots."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "platewatch" / "spool"


class TlsSettings(Settings):
    """TLS to the broker (``mqtt.tls:``); an empty section means TLS with the system CAs."""

    ca: ConfigFile | None = Field(None, description="CA bundle (PEM) that signed the broker")
    cert: ConfigFile | None = Field(None, description="client certificate (PEM)")
    key: ConfigFile | None = Field(None, description="client private key (PEM)")
    insecure: bool = Field(False, description="skip host name verification (testing only)")

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together (client certificate)")
        return self


class MqttSettings(Settings):
    """Broker connection, topics and the spool: the YAML ``mqtt:`` section, and what every
    platewatch MQTT client (sink, dashboard) is configured from."""

    host: str = Field(default="localhost", min_length=1, description="broker host name or IP")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port (8883 for TLS)")
    client_id: str | None = Field(
        default=None, description="MQTT client id; default platewatch-<hostname>-<random>"
    )
    topic_prefix: str = Field(
        default="platewatch", min_length=1, description="first topic level(s), no wildcards"
    )
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol")
    username: str | None = Field(default=None, description="broker user name")
    password: SecretStr | None = Field(
        default=None, description="broker password (kept out of logs; prefer ${ENV} in YAML)"
    )
    tls: TlsSettings | None = Field(default=None, description="TLS settings; absent: plain TCP")
    keepalive_s: int = Field(
        default=30,
        ge=5,
        le=3600,
        validation_alias=AliasChoices("keepalive_s", "keepalive"),
        description="MQTT keepalive; a silently dead link is noticed after 1.5-2x this",
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="reconnect delay cap")
    max_inflight: int = Field(default=20, ge=1, le=1000, description="unacked QoS 1 window")
    spool_dir: ConfigPath = Field(
        default_factory=default_spool_dir, description="directory of the durable event spool"
    )
    spool_max_entries: int = Field(default=100_000, ge=10, description="spool row cap")
    spool_max_mb: float = Field(default=256.0, gt=0, description="spool payload size cap (MB)")
    stats_interval_s: float = Field(
        default=30.0, gt=0, description="period of <camera>/stats messages"
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_tls(cls, data: Any) -> Any:
        # Programmatic callers may pass the flat paho-style names; the YAML uses ``tls: {...}``.
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in _FLAT_TLS if k in data}
        if not flat and not isinstance(data.get("tls"), bool):
            return data
        data = {k: v for k, v in data.items() if k not in _FLAT_TLS}
        on = data.pop("tls", None)
        if on is False and not any(v for v in flat.values()):
            return data
        tls = {_FLAT_TLS[k]: v for k, v in flat.items() if v is not None}
        if on is True or tls:
            data["tls"] = tls
        return data

    @field_validator("host")
    @classmethod
    def _host_ok(cls, value: str) -> str:
        v = value.strip()
        if "://" in v:
            raise ValueError(
                f"{value!r} is a URL: give the host name or address alone (host: 127.0.0.1) and "
                "the port as mqtt.port (and TLS under mqtt.tls)"
            )
        if v.count(":") == 1:  # host:port (IPv6 addresses have several colons)
            raise ValueError(f"{value!r}: give the port as mqtt.port, not in the host")
        if not v or any(c.isspace() for c in v):
            raise ValueError(f"{value!r} is not a host name")
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_ok(cls, value: str) -> str:
        if any(c in value for c in "+#\x00") or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"topic_prefix {value!r} must not contain + # NUL or edge slashes")
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls is not None


_FLAT_TLS = {
    "tls_ca_certs": "ca",
    "tls_certfile": "cert",
    "tls_keyfile": "key",
    "tls_insecure": "insecure",
}


def make_client(s: MqttSettings, client_id: str, **client_options: Any) -> mqtt.Client:
    """A paho 2 client with the settings' protocol, reconnect back-off, credentials and TLS:
    the one place every platewatch MQTT client (sink, dashboard, collector) is configured.
    ``client_options`` go to ``mqtt.Client`` as they are (the collector's ``manual_ack`` and
    ``clean_session``)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if s.protocol == "5" else mqtt.MQTTv311,
        **client_options,
    )
    client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type]
    if s.username is not None:
        client.username_pw_set(s.username, s.password.get_secret_value() if s.password else None)
    if s.tls is not None:
        t = s.tls
        client.tls_set(
            ca_certs=str(t.ca) if t.ca else None,
            certfile=str(t.cert) if t.cert else None,
            keyfile=str(t.key) if t.key else None,
        )
        if t.insecure:
            client.tls_insecure_set(True)
    return client


def connect_probe(s: MqttSettings, timeout_s: float = 3.0) -> str:
    """A short reason why connecting to the broker fails, from a TCP connect and, with TLS, a
    handshake made as paho would make it (same CA, client certificate and host-name check)."""
    import ssl

    try:
        sock = socket.create_connection((s.host, s.port), timeout=timeout_s)
    except OSError as e:
        return f"TCP connect failed: {e.strerror or e}"
    try:
        if s.tls is None:
            return "TCP connects; the broker did not accept the MQTT session"
        t = s.tls
        ctx = ssl.create_default_context(cafile=str(t.ca) if t.ca else None)
        if t.cert is not None and t.key is not None:
            ctx.load_cert_chain(str(t.cert), str(t.key))
        if t.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            with ctx.wrap_socket(sock, server_hostname=s.host) as tls:
                tls.settimeout(timeout_s)
                return f"TLS handshake works ({tls.version()}); the broker refused the session"
        except ssl.SSLCertVerificationError as e:
            what = e.verify_message or str(e)
            hint = (
                " (the broker's certificate is for another name: connect by that name, or "
                "set mqtt.tls.insecure for testing)"
                if "hostname" in what.lower() or "ip address mismatch" in what.lower()
                else " (set mqtt.tls.ca to the CA that signed the broker's certificate)"
            )
            return f"TLS certificate not accepted: {what}{hint}"
        except ssl.SSLError as e:
            return f"TLS handshake failed: {e.reason or e} (is this port TLS?)"
        except OSError as e:
            return f"TLS handshake failed: {e}"
    finally:
        sock.close()


class MqttSink(Sink):
    """Durable QoS 1 MQTT publisher. Construct, publish, ``close()``; reconnects by itself.

    ``MqttSink(settings)`` or ``MqttSink(host=..., port=..., spool_dir=...)`` (keyword fields of
    MqttSettings; keywords override fields of ``settings`` when both are given). ``device``: the
    device id in the topics and payloads (default: the host name, ``default_device_id()``).

    ``discovery``: ``(topic, payload dict or None, retain)`` messages (e.g.
    ``edge.integrations.homeassistant.discovery_messages``) published, QoS 1, on EVERY connect,
    right after
    the ``online`` status: a broker restarted without persistence forgets retained messages, and
    Home Assistant re-reads discovery only when it sees it again.
    """

    def __init__(
        self,
        settings: MqttSettings | None = None,
        *,
        discovery: Sequence[tuple[str, dict[str, Any] | None, bool]] = (),
        device: str | None = None,
        **overrides: Any,
    ) -> None:
        self.device = device or default_device_id()
        if not re.match(DEVICE_ID_PATTERN, self.device):
            raise ValueError(
                f"device id {self.device!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )
        base = settings.model_dump() if settings is not None else {}
        self.settings = MqttSettings.model_validate({**base, **overrides})
        self.discovery = [
            (t, b"" if p is None else json.dumps(p, separators=(",", ":")).encode(), r)
            for t, p, r in discovery
        ]
        s = self.settings
        self.spool = Spool(
            s.spool_dir,
            max_entries=s.spool_max_entries,
            max_bytes=int(s.spool_max_mb * 1024 * 1024),
        )
        self.client_id = s.client_id or f"platewatch-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.status_topic = status_topic(s.topic_prefix, self.device)
        self.reconnects = 0  # successful connections after the first
        self.connections = 0

        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._closed = False
        self._inflight: dict[int, int] = {}  # mid -> spool seq, in send order
        self._other_mids: set[int] = set()  # stats/status mids: acked but nothing to delete
        self._early_acks: set[int] = set()  # PUBACKs that beat the sender's bookkeeping
        self._acked: list[int] = []  # spool seqs to delete (done by the sender thread)
        self._draining = False  # after reconnect: wait for paho's retransmits before new sends
        self._last_sent = 0  # highest spool seq handed to paho
        self._tail = self.spool.last_seq  # highest spool seq appended
        self._pending_stats: dict[str, tuple[str, bytes]] = {}  # camera -> latest (topic, body)
        # Outage reporting: said once when the broker goes away (or is not there at start),
        # once when it is back, once when the spool has drained; a refusal's reason once per
        # distinct reason.
        self._outage_since: float | None = None
        self._outage_spooled = 0
        self._refusal: str | None = None
        self._connack_refused = False
        self._left = 0  # spooled at close

        self.client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()
        # connect_async + loop_start: the first connection is retried with back-off like any
        # reconnect, so a broker that is down at start is not an error (events spool meanwhile).
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()

    # ---------------------------------------------------------------- paho client and callbacks

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = make_client(s, self.client_id)
        # paho's own window must hold our events plus a few stats/status messages; beyond it
        # paho queues (still in order), so this is a soft limit.
        client.max_inflight_messages_set(s.max_inflight + 16)
        client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            self._connack_refused = True  # paho closes the socket next: that is no new reason
            self._refused(f"the broker refused the connection: {rc}")
            return
        self._connack_refused = False
        info = client.publish(self.status_topic, STATUS_ONLINE, qos=1, retain=True)
        mids = [info.mid]
        for topic, body, retain in self.discovery:
            mids.append(client.publish(topic, body, qos=1, retain=retain).mid)
        with self._cond:
            for mid in mids:
                if mid in self._early_acks:
                    self._early_acks.discard(mid)
                else:
                    self._other_mids.add(mid)
            self._connected = True
            self.connections += 1
            if self.connections > 1:
                self.reconnects += 1
            # Messages unacked at the disconnect are being retransmitted by paho right after this
            # callback; new ones must wait behind them to keep spool order.
            self._draining = bool(self._inflight)
            self._cond.notify_all()
        backlog = len(self.spool)
        since, self._outage_since, self._refusal = self._outage_since, None, None
        if since is not None:
            self._outage_spooled = backlog
            log.warning(
                "MQTT broker %s:%s is back after %.0f s; sending %d spooled message(s)",
                self.settings.host,
                self.settings.port,
                time.monotonic() - since,
                backlog,
            )
        else:
            log.info(
                "MQTT connected to %s:%s as %s (%d unacked in flight, %d spooled)",
                self.settings.host,
                self.settings.port,
                self.client_id,
                len(self._inflight),
                backlog,
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            self._cond.notify_all()
        if self._closing:
            return
        if was:
            self._outage_since = time.monotonic()
            log.warning(
                "MQTT disconnected from %s:%s (%s); events are spooled to %s until it is back",
                self.settings.host,
                self.settings.port,
                rc,
                self.spool.directory,
            )
        elif self._connack_refused:
            self._connack_refused = False  # the close that follows a refusing CONNACK
        else:
            # Closed before CONNACK: e.g. plain text to a TLS port, or TLS to a plain port.
            self._refused(
                f"the connection closed before the broker answered ({rc}): a TLS port spoken "
                "to in plain text, or the wrong port? " + self._probe_reason()
            )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._refused(self._probe_reason())

    def _refused(self, reason: str) -> None:
        """No connection: the first time, say the broker is unreachable and that events spool;
        log the reason at ERROR once, and again whenever it changes (a wrong CA, a host-name
        mismatch, a refused password are configuration errors, not weather)."""
        if self._closing:
            return
        first = self._outage_since is None
        if first:
            self._outage_since = time.monotonic()
        if reason != self._refusal:
            self._refusal = reason
            log.error(
                "MQTT cannot connect to %s:%s: %s%s",
                self.settings.host,
                self.settings.port,
                reason,
                f"; events are spooled to {self.spool.directory} until it works" if first else "",
            )
        else:
            log.debug("MQTT connect to %s:%s failed again", self.settings.host, self.settings.port)

    def _probe_reason(self) -> str:
        """Why a connection fails, found by a plain TCP (+ TLS) handshake with the sink's own
        settings: paho reports a failed connect without its exception."""
        return connect_probe(self.settings)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        # Runs on paho's network thread while paho holds its message lock: record and return.
        if rc is not None and getattr(rc, "is_failure", False):
            log.error("MQTT broker rejected message mid=%d: %s (dropped)", mid, rc)
        with self._cond:
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                self._acked.append(seq)
                if self._draining and not self._inflight:
                    self._draining = False
            elif mid in self._other_mids:
                self._other_mids.discard(mid)
            else:
                self._early_acks.add(mid)
            self._cond.notify_all()

    # ---------------------------------------------------------------------------- sender thread

    def _has_work(self) -> bool:
        if self._closing or self._acked:
            return True
        if not self._connected or self._draining:
            return False
        window_open = len(self._inflight) < self.settings.max_inflight
        return (window_open and self._tail > self._last_sent) or bool(self._pending_stats)

    def _send_loop(self) -> None:
        while True:
            try:
                if self._send_once():
                    return
            except Exception:
                # Never let the only sender die: log, back off, carry on (entries stay spooled).
                log.exception("MQTT sender error; retrying")
                time.sleep(0.5)

    def _publish_entry(self, entry: SpoolEntry) -> int:
        """Hand one spool row to paho; returns paho's rc. A row paho rejects is dropped."""
        try:
            info = self.client.publish(entry.topic, entry.payload, qos=1, retain=entry.retain)
        except (ValueError, TypeError) as exc:
            # e.g. payload over the MQTT size limit: retrying forever would block every later
            # event, so drop it loudly.
            log.error(
                "MQTT cannot publish spool seq=%d topic=%s: %s (dropped)",
                entry.seq,
                entry.topic,
                exc,
            )
            with self._cond:
                self._last_sent = entry.seq
                self._acked.append(entry.seq)
            return mqtt.MQTT_ERR_SUCCESS
        with self._cond:
            self._last_sent = entry.seq
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._acked.append(entry.seq)
            else:
                self._inflight[info.mid] = entry.seq
        return info.rc

    def _send_once(self) -> bool:
        """One pass of the sender: apply acks, send what the window allows. True = stop."""
        with self._cond:
            self._cond.wait_for(self._has_work, timeout=1.0)
            acked, self._acked = self._acked, []
            stop = self._closing
            sendable = self._connected and not self._draining and not stop
            room = self.settings.max_inflight - len(self._inflight)
            last_sent = self._last_sent
            stats: list[tuple[str, bytes]] = []
            if self._connected and not stop:
                stats = list(self._pending_stats.values())
                self._pending_stats.clear()
        if acked:
            self.spool.ack(acked)
            with self._cond:
                self._cond.notify_all()  # wake flush()
            if self._outage_spooled and len(self.spool) == 0:
                log.warning(
                    "MQTT spool drained: %d message(s) from the outage delivered",
                    self._outage_spooled,
                )
                self._outage_spooled = 0
        if stop:
            return True
        if sendable and room > 0:
            for entry in self.spool.read_after(last_sent, room):
                if self._publish_entry(entry) == mqtt.MQTT_ERR_NO_CONN:
                    # paho keeps it and resends it on reconnect; stop until on_disconnect
                    # lands (a short sleep instead of spinning on the still-set flag).
                    time.sleep(0.05)
                    break
        for topic, body in stats:
            info = self.client.publish(topic, body, qos=1, retain=False)
            with self._cond:
                if info.mid in self._early_acks:
                    self._early_acks.discard(info.mid)
                else:
                    self._other_mids.add(info.mid)
        return False

    # ------------------------------------------------------------------------------- Sink API

    @property
    def connected(self) -> bool:
        return self._connected

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (spooled or in flight; after close:
        left in the spool for the next start)."""
        return self._left if self._closed else len(self.spool)

    def publish_event(self, event: PlateEvent) -> None:
        """Spool the event (fsync'd) and return; the sender thread publishes it."""
        if self._closing:
            raise RuntimeError("MqttSink is closed")
        prefix = self.settings.topic_prefix
        if event.device is None:
            event = event.model_copy(update={"device": self.device})
        device = event.device or self.device
        payload = event.to_bytes()
        final = event.type == "final"
        messages = [
            (
                events_topic(prefix, device, event.camera),
                payload,
                False,
                PRIORITY_HIGH if final else PRIORITY_LOW,
            )
        ]
        if final:
            messages.append(
                (plate_topic(prefix, device, event.camera), payload, True, PRIORITY_LOW)
            )
        seqs = self.spool.append_many(messages)
        with self._cond:
            self._tail = max(self._tail, seqs[-1])
            self._cond.notify_all()

    def publish_alert(self, alert: Alert) -> None:
        """Spool one watchlist alert (fsync'd, high priority, not retained) and return."""
        if self._closing:
            raise RuntimeError("MqttSink is closed")
        event = alert.event
        if event.device is None:
            event = event.model_copy(update={"device": self.device})
        topic = alerts_topic(self.settings.topic_prefix, event.device or self.device, alert.camera)
        seq = self.spool.append(topic, event.to_bytes(), retain=False, priority=PRIORITY_HIGH)
        with self._cond:
            self._tail = max(self._tail, seq)
            self._cond.notify_all()

    def publish_stats(self, stats: CameraStats) -> None:
        """Publish when connected; while disconnected only the latest per camera is kept."""
        if self._closing:
            return
        if stats.device is None:
            stats = stats.model_copy(update={"device": self.device})
        topic = stats_topic(self.settings.topic_prefix, stats.device or self.device, stats.camera)
        with self._cond:
            self._pending_stats[stats.camera] = (topic, stats.to_bytes())
            self._cond.notify_all()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the spool is empty (everything acked); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.spool) > 0 or self._acked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Flush while connected (up to ~70% of ``timeout``), say ``offline``, disconnect.

        Whatever is not acknowledged stays in the spool for the next start.
        """
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        if self._connected:
            self.flush(timeout * 0.7)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._sender.join(max(0.05, deadline - time.monotonic()))
        if self._connected:
            info = self.client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.05, min(0.5, deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        # loop_stop joins paho's thread, which may sit in a connect timeout or back-off sleep;
        # do it on a helper thread so close() keeps its time budget (paho's thread is a daemon).
        stopper = threading.Thread(target=self.client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(max(0.05, deadline - time.monotonic()))
        left = self._left = len(self.spool)
        if left:
            log.warning(
                "MqttSink closed with %d message(s) spooled in %s; they are sent on the next start",
                left,
                self.spool.directory,
            )
        self.spool.close()
        self._closed = True
