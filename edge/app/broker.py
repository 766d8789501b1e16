"""An MQTT broker for ``platewatch demo``: in-process amqtt, else a ``mosquitto`` child process.

The demo must publish somewhere without any setup. ``start_embedded_broker()`` tries, in order:

1. amqtt (pure Python, a core dependency): runs on its own thread with its own asyncio loop, bound
   to 127.0.0.1 only (amqtt's own default would listen on every interface);
2. a ``mosquitto`` binary on PATH (or /usr/sbin), started with a generated config on loopback;
3. nothing: returns None and the caller says so (events still go to stdout).

Either broker supports what the MQTT sink needs: QoS 1, retained messages and the Last Will.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger("platewatch.broker")

DEFAULT_PORT = 1883


class EmbeddedBroker(Protocol):
    host: str
    port: int
    kind: str  # "amqtt" | "mosquitto"

    def stop(self) -> None: ...


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, host: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class AmqttBroker:
    """amqtt's Broker on a private event loop thread."""

    kind = "amqtt"

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        from amqtt.broker import Broker  # imported here: only the demo needs it

        if not log.isEnabledFor(logging.DEBUG):
            # amqtt logs client hang-ups (a port scan, a killed subscriber) at ERROR level.
            logging.getLogger("amqtt").setLevel(logging.CRITICAL)

        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            # Explicit plugins: the default set logs every packet and publishes $SYS topics, and
            # leaving the key out triggers a deprecation warning.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

        async def create() -> Broker:
            return Broker(config, loop=self._loop)

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._broker = self._loop.run_until_complete(create())
                self._loop.run_until_complete(self._broker.start())
            except BaseException as e:  # reported to the starting thread
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"amqtt broker did not start on {host}:{port}: {self._error}")
        # (No port probe here: start() returned after the listener was bound, and a probe that
        # connects without speaking MQTT makes amqtt log an ERROR.)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(timeout=3)
        except Exception as e:  # shutting down anyway
            log.debug("amqtt shutdown: %s", e)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(3)


class MosquittoBroker:
    """A ``mosquitto`` child process on loopback, non-persistent."""

    kind = "mosquitto"

    def __init__(self, binary: str, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._dir = Path(tempfile.mkdtemp(prefix="platewatch-mosquitto-"))
        conf = self._dir / "mosquitto.conf"
        conf.write_text(f"listener {port} {host}\nallow_anonymous true\npersistence false\n")
        self._log = (self._dir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT
        )
        if not _wait_port(port, host, 5.0):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on {host}:{port} (log in {self._dir})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def start_embedded_broker(
    port: int | None = None, host: str = "127.0.0.1", prefer: str = "amqtt"
) -> EmbeddedBroker | None:
    """Start a local broker; ``port`` None means 1883 if free, else any free port.

    Returns None (after logging why) when neither amqtt nor mosquitto could be started.
    """
    if port is None:
        port = DEFAULT_PORT if port_free(DEFAULT_PORT, host) else free_port(host)
    order = ["amqtt", "mosquitto"] if prefer == "amqtt" else ["mosquitto", "amqtt"]
    reasons = []
    for kind in order:
        try:
            if kind == "amqtt":
                return AmqttBroker(port, host)
            binary = mosquitto_binary()
            if binary is None:
                reasons.append("mosquitto: not installed")
                continue
            return MosquittoBroker(binary, port, host)
        except ImportError as e:
            reasons.append(f"amqtt: not installed ({e})")
        except Exception as e:  # try the next kind
            reasons.append(f"{kind}: {e}")
    log.warning("no embedded MQTT broker could be started: %s", "; ".join(reasons))
    return None


__all__ = [
    "AmqttBroker",
    "EmbeddedBroker",
    "MosquittoBroker",
    "free_port",
    "mosquitto_binary",
    "port_free",
    "start_embedded_broker",
]
