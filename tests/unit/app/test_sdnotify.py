"""systemd notify protocol over a real unix datagram socket, the health-gated watchdog pinger,
and the rotating log files of the service."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.app import sdnotify
from edge.app.logs import setup_logging


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_messages_arrive_on_the_socket(notify_socket: socket.socket) -> None:
    assert sdnotify.ready("2 cameras")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=2 cameras"
    assert sdnotify.watchdog()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.status("entry: reconnecting")
    assert notify_socket.recv(4096) == b"STATUS=entry: reconnecting"
    assert sdnotify.stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"platewatch-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_no_systemd_is_a_quiet_noop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.watchdog() is False  # socket vanished: never raises


def test_watchdog_interval() -> None:
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval_s({}) is None
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "x"}) is None
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval_s(mine) == 1.0
    other = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert sdnotify.watchdog_interval_s(other) is None


def test_pinger_pings_only_while_healthy(notify_socket: socket.socket) -> None:
    healthy = {"ok": True}
    pinger = sdnotify.WatchdogPinger(lambda: healthy["ok"], interval_s=0.02).start()
    try:
        assert notify_socket.recv(100) == b"WATCHDOG=1"
        healthy["ok"] = False  # a stalled pipeline: pings stop, systemd will restart us
        time.sleep(0.1)
        notify_socket.settimeout(0.01)
        while True:  # drain pings sent before the stall was noticed
            try:
                notify_socket.recv(100)
            except TimeoutError:
                break
        skipped = pinger.skipped
        time.sleep(0.1)
        with pytest.raises(TimeoutError):
            notify_socket.recv(100)
        assert pinger.skipped > skipped
    finally:
        pinger.stop()
    assert not sdnotify.WatchdogPinger(interval_s=None).start().enabled


def test_pinger_treats_a_crashing_check_as_unhealthy() -> None:
    sent: list[int] = []

    def boom() -> bool:
        raise RuntimeError("stage dead")

    p = sdnotify.WatchdogPinger(boom, interval_s=0.01, send=lambda: bool(sent.append(1))).start()
    time.sleep(0.08)
    p.stop()
    assert not sent and p.skipped >= 2


def test_rotating_log_files(tmp_path: Path) -> None:
    log = logging.getLogger("platewatch-test-rotation")
    log.propagate = False
    path = tmp_path / "logs" / "platewatch.log"
    handlers = setup_logging("INFO", path, max_bytes=2048, backups=3, console=None, logger=log)
    assert len(handlers) == 1
    for i in range(400):
        log.info("event %04d %s", i, "x" * 40)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["platewatch.log", "platewatch.log.1", "platewatch.log.2", "platewatch.log.3"]
    assert all(p.stat().st_size <= 2048 + 200 for p in path.parent.iterdir())
    assert "event 0399" in path.read_text()  # newest in the live file, oldest rotated away
    assert "event 0000" not in "".join(p.read_text() for p in path.parent.iterdir())
    # Calling again replaces our handlers instead of duplicating every line.
    setup_logging("WARNING", path, max_bytes=2048, backups=3, console=None, logger=log)
    assert len([h for h in log.handlers if isinstance(h, logging.FileHandler)]) == 1
    for h in list(log.handlers):
        h.close()
        log.removeHandler(h)


def test_logging_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        setup_logging(log_file=tmp_path / "a.log", max_bytes=10, logger=logging.getLogger("v1"))
    with pytest.raises(ValueError, match="level"):
        setup_logging("LOUD", logger=logging.getLogger("v2"))
