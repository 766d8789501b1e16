"""systemd notifications (``Type=notify`` + ``WatchdogSec=``) without a dependency.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace). The service sends ``READY=1`` once it runs, ``WATCHDOG=1`` at least every
``WatchdogSec`` (systemd exports the period as ``$WATCHDOG_USEC``), ``STOPPING=1`` on shutdown.
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op returning False.

`WatchdogPinger` pings only while a health check passes, so a *stalled* pipeline (threads
alive, no frames moving) stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _address(path: str) -> str:
    # "@name" is Linux's abstract socket namespace, written with a leading NUL byte.
    return "\0" + path[1:] if path.startswith("@") else path


def notify(state: str, socket_path: str | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"`` or ``"WATCHDOG=1\\nSTATUS=..."``). True if sent."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(_address(path))
            sock.sendall(state.encode("utf-8"))
        return True
    except OSError as exc:  # systemd gone, socket removed: never fatal for the service
        log.debug("sd_notify(%r) to %s failed: %s", state, path, exc)
        return False


def ready(status: str | None = None) -> bool:
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def stopping() -> bool:
    return notify("STOPPING=1")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """Seconds between pings: half of ``$WATCHDOG_USEC`` (systemd's advice), or None when no
    watchdog is configured for this process (``$WATCHDOG_PID`` names another one)."""
    env = dict(os.environ) if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class WatchdogPinger:
    """Background thread: every ``interval_s`` send ``WATCHDOG=1`` if ``healthy()`` is True.

    ``healthy`` should say "frames moved recently" (e.g. the newest processed-frame time is
    younger than a few seconds for every enabled live camera). When it returns False the pings
    stop, and after ``WatchdogSec`` systemd kills and restarts the service (``Restart=``).
    """

    def __init__(
        self,
        healthy: Callable[[], bool] = lambda: True,
        interval_s: float | None = None,
        send: Callable[[], bool] = watchdog,
    ) -> None:
        self.healthy = healthy
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s()
        self._send = send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.skipped = 0

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None and self.interval_s > 0

    def start(self) -> WatchdogPinger:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
            try:
                ok = bool(self.healthy())
            except Exception:  # a crashing health check is an unhealthy service
                log.exception("watchdog health check failed")
                ok = False
            if ok:
                self._send()
                self.pings += 1
            else:
                self.skipped += 1
                log.warning("watchdog: pipeline unhealthy, not pinging systemd")

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
