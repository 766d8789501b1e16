"""Test support shared by the test packages: a real mosquitto broker, an MQTT test consumer,
schema validation, free ports. The fixtures around them are in conftest.py.

``mosquitto``          a running broker on a free 127.0.0.1 port (persistence off), stopped at
                       teardown. ``.kill()``, ``.start()``, ``.restart()`` keep the SAME port.
``mosquitto_factory``  make brokers with options (``persistent=True``, ``start=False``).
``mqtt_consumer``      factory of ``MqttConsumer`` (subscribed paho client collecting messages).

mosquitto is a system package (``apt-get install -y mosquitto``). Without it the broker tests are
skipped with that reason, unless ``PLATEWATCH_REQUIRE_MOSQUITTO=1`` (set it in CI) makes them fail.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.events.schema import default_device_id

# The device id a runtime or MQTT sink uses here when none is configured (the host name): the
# level after the prefix in every topic they publish.
DEVICE = default_device_id()

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Mosquitto:
    """One mosquitto process on a fixed loopback port; restartable on the same port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistent: bool = False,
        listener_conf: list[str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        self.conf_path = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # TLS files / password_file / allow_anonymous false for the auth tests.
            *(listener_conf or ["allow_anonymous true"]),
            # When started as root mosquitto drops to user 'mosquitto', which cannot write the
            # test's temp dir; naming the current user keeps it as is.
            f"user {getpass.getuser()}",
        ]
        if persistent:
            # Save after every change so even a SIGKILLed broker keeps subscriptions and the
            # messages queued for offline persistent-session consumers.
            lines += [
                "persistence true",
                f"persistence_location {workdir}/",
                "autosave_interval 1",
                "autosave_on_changes true",
            ]
        else:
            lines.append("persistence false")
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 5.0) -> None:
        if self.running:
            return
        # The old socket may linger for a moment after a kill; wait until the port is free.
        wait_until(lambda: not port_open(self.port), 2.0)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if not wait_until(lambda: port_open(self.port) or not self.running, timeout):
            self.kill()
            raise RuntimeError(f"mosquitto did not open port {self.port}: {self.log_text()}")
        if not self.running:
            raise RuntimeError(f"mosquitto exited: {self.log_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the broker (SIGKILL by default: no goodbye to clients, like a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        if down_s:
            time.sleep(down_s)
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        msg = "mosquitto not installed (apt-get install -y mosquitto)"
        if os.environ.get("PLATEWATCH_REQUIRE_MOSQUITTO") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool = False  # DUP flag: the broker is redelivering (a lost PUBACK on its side)


@dataclass
class MqttConsumer:
    """A subscribed test client. ``messages`` fills from paho's thread; use ``wait_for``."""

    broker: Mosquitto
    topics: list[str]
    client_id: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    clean: bool = True
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=self.clean,
        )
        self.client.reconnect_delay_set(1, 1)
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, userdata, flags, rc, props) -> None:  # type: ignore[no-untyped-def]
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            received = Received(
                msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), bool(msg.dup)
            )
            self.messages.append(received)

    def start(self, timeout: float = 5.0) -> MqttConsumer:
        self._subscribed.clear()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise RuntimeError(f"consumer could not subscribe on port {self.broker.port}")
        return self

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        return self._subscribed.wait(timeout)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        def check() -> bool:
            with self._lock:
                return predicate(list(self.messages))

        return wait_until(check, timeout)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------ JSON Schema validation

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "edge" / "events" / "schemas"

try:  # the real validator when the venv has it; CI may not
    import jsonschema as _jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    _jsonschema = None

HAVE_JSONSCHEMA = _jsonschema is not None
# What validate_against_schema_file raises on an invalid message.
SCHEMA_ERRORS: tuple[type[Exception], ...] = (AssertionError,) + (
    (_jsonschema.ValidationError,) if _jsonschema is not None else ()
)


def _mini_validate(obj: object, schema: dict, root: dict, path: str) -> list[str]:
    """Subset of JSON Schema 2020-12 covering every keyword our generated schemas use.

    Used only when the ``jsonschema`` package is absent, so the committed schema *files* (not just
    the pydantic models) are still checked against emitted messages.
    """
    import re

    errors: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), f"unsupported $ref {ref}"
        return _mini_validate(obj, root["$defs"][ref.split("/")[-1]], root, path)
    if "anyOf" in schema:
        if all(_mini_validate(obj, sub, root, path) for sub in schema["anyOf"]):
            errors.append(f"{path}: matches no anyOf branch")
        return errors
    types = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
        "object": dict,
        "null": type(None),
    }
    t = schema.get("type")
    if t is not None:
        ok = isinstance(obj, types[t])
        if t in ("integer", "number") and isinstance(obj, bool):
            ok = False
        if not ok:
            return [f"{path}: expected {t}, got {type(obj).__name__}"]
    if "const" in schema and obj != schema["const"]:
        errors.append(f"{path}: expected const {schema['const']!r}")
    if "enum" in schema and obj not in schema["enum"]:
        errors.append(f"{path}: {obj!r} not in {schema['enum']}")
    if isinstance(obj, str):
        if len(obj) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than minLength")
        if "maxLength" in schema and len(obj) > schema["maxLength"]:
            errors.append(f"{path}: longer than maxLength")
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            errors.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if "minimum" in schema and obj < schema["minimum"]:
            errors.append(f"{path}: below minimum")
        if "maximum" in schema and obj > schema["maximum"]:
            errors.append(f"{path}: above maximum")
    if isinstance(obj, list):
        if len(obj) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than minItems")
        if "maxItems" in schema and len(obj) > schema["maxItems"]:
            errors.append(f"{path}: more than maxItems")
        for i, item in enumerate(obj):
            errors += _mini_validate(item, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(obj, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in obj:
                errors.append(f"{path}: missing required {key!r}")
        for key, value in obj.items():
            if key in props:
                errors += _mini_validate(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected property {key!r}")
    return errors


def validate_against_schema_file(obj: object, schema_name: str) -> None:
    """Raise AssertionError if ``obj`` (parsed JSON) violates
    ``edge/events/schemas/<schema_name>``."""
    import json

    schema = json.loads((SCHEMA_DIR / schema_name).read_text())
    if _jsonschema is not None:
        _jsonschema.Draft202012Validator(
            schema, format_checker=_jsonschema.FormatChecker()
        ).validate(obj)
        return
    errors = _mini_validate(obj, schema, schema, "$")
    assert not errors, f"{schema_name}: " + "; ".join(errors)


def make_certs(d: Path, server_name: str = "127.0.0.1") -> dict[str, Path]:
    """A throwaway CA and a server certificate for ``server_name`` (an IP or a DNS name; EC
    keys: fast to generate); ``other_ca`` is a second CA that signed nothing here."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=20)

    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=platewatch-test-ca",
    )
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={server_name}")
    kind = "IP" if server_name.replace(".", "").isdigit() else "DNS"
    (d / "san.ext").write_text(f"subjectAltName={kind}:{server_name}\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    run("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2",
        "-subj", "/CN=some-other-ca")  # fmt: skip
    for name in ("server.key", "server.pem", "ca.pem", "other.pem"):
        os.chmod(d / name, 0o644)  # mosquitto may run as another user
    return {
        "ca": d / "ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
        "other_ca": d / "other.pem",
    }


# ------------------------------------------------------------------ PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    import glob

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


INITDB, POSTGRES = _pg_bin("initdb"), _pg_bin("postgres")


def require_postgres() -> None:
    """Skip (or, with PLATEWATCH_REQUIRE_POSTGRES=1 as in CI, fail) without PostgreSQL's server
    binaries or psycopg."""
    missing = None
    if INITDB is None or POSTGRES is None:
        missing = "PostgreSQL server not installed (apt-get install -y postgresql-15)"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing = "psycopg not installed (pip install 'psycopg[binary]')"
    if missing is None:
        return
    if os.environ.get("PLATEWATCH_REQUIRE_POSTGRES") == "1":
        pytest.fail(missing)
    pytest.skip(missing)


class Postgres:
    """A throwaway PostgreSQL server: ``initdb`` in a temporary folder, ``postgres`` on a free
    127.0.0.1 port with its socket in that folder. ``kill()`` (SIGKILL by default: a crash),
    ``start()`` and ``restart()`` keep the data and the port.

    PostgreSQL refuses to run as root: under root (CI containers) both run as the ``postgres``
    user (or ``nobody``), in a folder made for them outside pytest's root-only tmp tree.
    """

    def __init__(self, *, port: int | None = None, fsync: bool = False) -> None:
        import pwd
        import tempfile

        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="platewatch-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.fsync = fsync
        self._ids: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                user = pwd.getpwnam("nobody")
            self._ids = (user.pw_uid, user.pw_gid)
            os.chown(self.root, *self._ids)
        self.root.chmod(0o755)
        self._run([str(INITDB), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"])  # fmt: skip

    def _preexec(self) -> Callable[[], None] | None:
        if self._ids is None:
            return None
        uid, gid = self._ids

        def drop() -> None:
            os.setgid(gid)
            os.setuid(uid)

        return drop

    def _run(self, cmd: list[str]) -> None:
        res = subprocess.run(cmd, capture_output=True, preexec_fn=self._preexec(), timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {res.stderr.decode(errors='replace')}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        wait_until(lambda: not port_open(self.port), 5.0)
        log = self.log_path.open("ab")
        cmd = [str(POSTGRES), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
               "-c", "listen_addresses=127.0.0.1", "-c", f"fsync={'on' if self.fsync else 'off'}",
               "-c", "max_connections=50", "-c", "shared_buffers=64MB"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._preexec()
        )
        log.close()
        if not wait_until(self._accepts, timeout, interval=0.1):
            text = self.log_text()
            self.kill()
            raise RuntimeError(f"postgres did not start on port {self.port}: {text[-2000:]}")

    def _accepts(self) -> bool:
        if not self.running:
            raise RuntimeError(f"postgres exited: {self.log_text()[-2000:]}")
        import psycopg

        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def kill(self, sig: int = signal.SIGQUIT) -> None:
        """Stop the server; SIGQUIT by default: PostgreSQL's "immediate" shutdown, a crash as
        far as the data goes (no checkpoint; crash recovery on the next start) that, unlike a
        SIGKILL of the postmaster, also ends every backend before it returns."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        wait_until(lambda: not port_open(self.port), 10.0)

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        if down_s:
            time.sleep(down_s)
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------ a link that can be cut


class LinkProxy:
    """A TCP forwarder 127.0.0.1:``port`` -> 127.0.0.1:``target``: the network between a
    device's broker and the central one. ``cut()`` drops every connection and refuses new ones
    (a link down, not a broker down); ``restore()`` accepts again."""

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._up = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LinkProxy:
        self.restore()
        return self

    def restore(self) -> None:
        if self._server is not None:
            return
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        srv.settimeout(0.2)
        self._server = srv
        self._thread = threading.Thread(target=self._accept, args=(srv,), daemon=True)
        self._thread.start()

    def _accept(self, srv: socket.socket) -> None:
        while self._server is srv:
            try:
                client, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            srv.close()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.cut()
