"""Capture: back-pressure, drop-oldest, pacing, reconnect with back-off, corrupt input, shutdown.

Everything is local: videos are written by the tests, network sources are loopback sockets the
tests open. Timeouts are set small so the whole file runs in a few seconds.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.camera import CameraCapture, CaptureStats, FrameQueue, backoff_delay
from edge.capture.config import CaptureConfig, ReconnectConfig
from edge.capture.sources import (
    OpenCVSource,
    SourceKind,
    SourceRead,
    detect_source_kind,
    gstreamer_available,
    redact,
)
from edge.types import Frame

FAST_RETRY = {"initial_s": 0.05, "max_s": 0.2, "multiplier": 2.0, "jitter": 0.1}


def write_video(path: Path, n: int, fps: float, size: tuple[int, int] = (160, 120)) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(n):
        img = np.full((h, w, 3), (i * 5) % 255, np.uint8)
        cv2.putText(img, str(i), (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


def wait_for(pred, timeout: float = 5.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def stop_quickly(cap: CameraCapture) -> float:
    t0 = time.monotonic()
    assert cap.stop(timeout=2.0), "capture thread did not end within 2 s"
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    return elapsed


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", n=40, fps=25)


# -- files ------------------------------------------------------------------------------------


def test_file_reads_every_frame_with_back_pressure(clip: Path) -> None:
    cam = CaptureConfig(name="file", source=str(clip), queue_size=2)
    cap = CameraCapture(cam).start()
    frames: list[Frame] = []
    for f in cap:
        if len(frames) < 10:
            time.sleep(0.01)  # slower than decoding: the reader must wait, not drop
        frames.append(f)
    s = cap.stats()
    assert [f.index for f in frames] == list(range(40))
    assert s.frames_read == 40 and s.frames_dropped == 0 and s.frames_corrupt == 0
    assert s.state == "ended" and not s.online and not s.is_live
    assert cap.fps == pytest.approx(25.0)
    assert frames[10].video_time_s == pytest.approx(10 / 25, abs=1e-3)
    assert frames[0].image.shape == (120, 160, 3) and frames[0].camera == "file"
    assert not frames[0].is_live and frames[0].utc.tzinfo is not None
    assert cap.stop()


def test_realtime_file_is_paced_and_drops_when_consumer_is_slow(tmp_path: Path) -> None:
    path = write_video(tmp_path / "rt.mp4", n=30, fps=50)  # 0.6 s of video
    fast = CameraCapture(CaptureConfig(name="rt", source=str(path), realtime=True)).start()
    got = list(fast)
    span = got[-1].monotonic - got[0].monotonic
    assert len(got) == 30 and fast.stats().frames_dropped == 0
    assert 0.45 < span < 1.2, f"29 frames at 50 fps should take ~0.58 s, took {span:.2f}"

    slow = CameraCapture(
        CaptureConfig(name="rt2", source=str(path), realtime=True, queue_size=2)
    ).start()
    seen = []
    for f in slow:
        seen.append(f.index)
        time.sleep(0.08)  # 12 fps consumer against a 50 fps paced file
    s = slow.stats()
    assert s.frames_read == 30 and s.frames_dropped > 0
    assert len(seen) + s.frames_dropped == 30
    assert seen == sorted(seen) and seen[-1] == 29  # the newest frame always survives


def test_file_loop_keeps_indices_increasing(tmp_path: Path) -> None:
    path = write_video(tmp_path / "loop.mp4", n=8, fps=25)
    cap = CameraCapture(CaptureConfig(name="loop", source=str(path), loop=True)).start()
    frames = []
    for f in cap:
        frames.append(f)
        if len(frames) == 20:
            break
    stop_quickly(cap)
    idx = [f.index for f in frames]
    times = [f.video_time_s for f in frames]
    assert idx == list(range(20))
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert cap.stats().loops >= 2 and cap.stats().reconnects == 0


def test_stop_while_reader_blocked_on_full_queue(clip: Path) -> None:
    cap = CameraCapture(CaptureConfig(name="blocked", source=str(clip), queue_size=1)).start()
    assert wait_for(lambda: len(cap.queue) == 1)
    time.sleep(0.05)  # the reader is now waiting for room
    stop_quickly(cap)
    assert cap.stats().state == "stopped"


def test_corrupt_middle_of_video_is_counted_not_fatal(clip: Path, tmp_path: Path) -> None:
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = random.Random(7).randbytes(2000)
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    cap = CameraCapture(CaptureConfig(name="bad", source=str(bad))).start()
    frames = list(cap)
    s = cap.stats()
    assert s.state == "ended"
    assert 0 < s.frames_read < 40
    assert s.frames_corrupt > 0 or s.early_eof
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx))  # skipped frames leave a gap, never a repeat


def test_truncated_video_fails_cleanly(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # mp4v writes its index (moov) at the end
    seen: list[CaptureStats] = []
    cap = CameraCapture(CaptureConfig(name="cut", source=str(cut)), on_status=seen.append).start()
    assert list(cap) == []
    s = cap.stats()
    assert s.state == "failed" and s.open_attempts == 1 and s.last_error
    assert seen[-1].state == "failed"


def test_missing_file_fails_without_retry(tmp_path: Path) -> None:
    cap = CameraCapture(CaptureConfig(name="nofile", source=str(tmp_path / "nope.mp4"))).start()
    assert list(cap) == []
    s = cap.stats()
    assert s.state == "failed" and "not found" in (s.last_error or "")


def test_image_folder_skips_corrupt_jpeg(tmp_path: Path) -> None:
    folder = tmp_path / "stills"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order: 1, 2, 10 (not 1, 10, 2)
        img = np.full((48, 64, 3), i * 20, np.uint8)
        assert cv2.imwrite(str(folder / f"img{i}.jpg"), img)
    (folder / "img5.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (folder / "notes.txt").write_text("ignored")
    cam = CaptureConfig(name="stills", source=str(folder), fps=4)
    assert cam.kind is SourceKind.IMAGES
    cap = CameraCapture(cam).start()
    frames = list(cap)
    s = cap.stats()
    assert [int(f.image[0, 0, 0]) for f in frames] == pytest.approx([20, 40, 200], abs=3)
    assert [f.index for f in frames] == [0, 1, 3]  # index 2 was the corrupt img5
    assert [f.video_time_s for f in frames] == pytest.approx([0.0, 0.25, 0.75])
    assert s.frames_read == 3 and s.frames_corrupt == 1 and s.state == "ended"


# -- live semantics ---------------------------------------------------------------------------


class BurstSource:
    """A fake live camera: ``n`` frames as fast as possible, then the stream is lost."""

    is_live = True

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0
        self.img = np.zeros((8, 8, 3), np.uint8)

    @property
    def fps(self) -> float | None:
        return 30.0

    def open(self) -> None:
        self.i = 0

    def read(self) -> SourceRead:
        if self.i >= self.n:
            return SourceRead("error", error="stream lost")
        self.i += 1
        return SourceRead("ok", image=self.img, index=self.i - 1)

    def close(self) -> None:
        pass


def test_live_source_drops_oldest_with_tiny_queue() -> None:
    cam = CaptureConfig(
        name="live",
        source="rtsp://127.0.0.1:9/fake",
        queue_size=3,
        reconnect={"initial_s": 30, "max_s": 60},
    )
    cap = CameraCapture(cam, source_factory=lambda c: BurstSource(50)).start()
    assert cap.is_live and cap.drop_oldest
    assert wait_for(lambda: cap.stats().state == "backoff")
    s = cap.stats()
    assert s.frames_read == 50 and s.frames_dropped == 47 and s.queue_depth == 3
    assert s.last_error == "stream lost" and not s.online
    kept = [cap.get(0.1) for _ in range(3)]
    assert [f.index for f in kept if f] == [47, 48, 49]
    assert all(f.is_live and f.video_time_s is None for f in kept if f)
    stop_quickly(cap)  # stop interrupts a 30 s back-off wait


def test_frame_queue_policies() -> None:
    q = FrameQueue(2)
    stop = threading.Event()
    img = np.zeros((1, 1, 3), np.uint8)
    mk = [Frame("c", i, 0.0, img, True) for i in range(4)]
    assert q.put(mk[0], drop_oldest=True, stop=stop) == (True, 0)
    assert q.put(mk[1], drop_oldest=True, stop=stop) == (True, 0)
    assert q.put(mk[2], drop_oldest=True, stop=stop) == (True, 1)
    t = threading.Timer(0.1, stop.set)
    t.start()
    t0 = time.monotonic()
    assert q.put(mk[3], drop_oldest=False, stop=stop) == (False, 0)  # blocked until stop
    assert 0.05 < time.monotonic() - t0 < 1.0
    assert [q.get(0).index, q.get(0).index] == [1, 2] and q.get(0.01) is None
    q.close()
    assert q.get(None) is None


class _StubCap:
    def __init__(self, results):
        self.results = list(results)

    def read(self):
        return self.results.pop(0) if self.results else (False, None)

    def get(self, prop):
        return -1.0

    def release(self):
        pass


def test_live_read_skips_empty_frames() -> None:
    src = OpenCVSource(SourceKind.STREAM, "rtsp://x/y")
    good = np.ones((4, 4, 3), np.uint8)
    src._cap = _StubCap([(True, None), (True, np.empty((0, 0, 3), np.uint8)), (True, good)])
    r = src.read()
    assert r.status == "ok" and r.corrupt == 2 and r.image is good and r.index == 0
    r = src.read()
    assert r.status == "error" and "no frame" in (r.error or "")


# -- network failures (loopback only) ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_rtsp_reconnects_with_backoff_and_stops_fast() -> None:
    port = free_port()  # closed again: connections are refused
    cam = CaptureConfig(
        name="refused",
        source=f"rtsp://user:secret@127.0.0.1:{port}/stream",
        open_timeout_s=0.5,
        read_timeout_s=0.5,
        reconnect=FAST_RETRY,
    )
    states: list[CaptureStats] = []
    cap = CameraCapture(cam, on_status=states.append, rng=random.Random(1)).start()
    assert wait_for(lambda: cap.stats().open_attempts >= 4, timeout=5)
    s = cap.stats()
    assert s.reconnects >= 3 and not s.online and s.frames_read == 0
    assert "could not open" in (s.last_error or "") and "secret" not in (s.last_error or "")
    delays = [x.next_retry_s for x in states if x.state == "backoff" and x.next_retry_s]
    assert len(delays) >= 3
    assert delays[1] > delays[0] * 1.4  # grows ...
    assert max(delays) <= 0.2 * 1.1 + 1e-9  # ... up to max_s (+ jitter)
    stop_quickly(cap)
    assert cap.stats().state == "stopped"


class SilentServer:
    """Accepts TCP connections and never says a word (a hung camera)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_silent_rtsp_server_times_out_and_retries() -> None:
    server = SilentServer()
    try:
        cam = CaptureConfig(
            name="silent",
            source=f"rtsp://127.0.0.1:{server.port}/stream",
            open_timeout_s=0.3,
            read_timeout_s=0.3,
            reconnect=FAST_RETRY,
        )
        t0 = time.monotonic()
        cap = CameraCapture(cam).start()
        assert wait_for(lambda: cap.stats().open_attempts >= 3, timeout=4)
        # three opens of ~0.3 s each: the open timeout was honoured (OpenCV's default is 30 s)
        assert time.monotonic() - t0 < 3.0
        s = cap.stats()
        assert server.accepted >= 2 and s.reconnects >= 2 and not s.online
        stop_quickly(cap)
    finally:
        server.close()


class StallingMJPEGServer:
    """HTTP multipart MJPEG camera that sends ``n`` frames per connection, then hangs."""

    def __init__(self, n: int) -> None:
        ok, jpg = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
        assert ok
        self.jpg = jpg.tobytes()
        self.n = n
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _client(self, c: socket.socket) -> None:
        try:
            c.recv(4096)
            c.sendall(
                b"HTTP/1.0 200 OK\r\n"
                b"Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
            )
            for _ in range(self.n):
                c.sendall(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(self.jpg)).encode()
                    + b"\r\n\r\n"
                    + self.jpg
                    + b"\r\n"
                )
                time.sleep(0.01)
        except OSError:
            pass  # client went away; the connection stays open otherwise (silent camera)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_stream_that_goes_silent_is_reconnected() -> None:
    server = StallingMJPEGServer(n=8)
    try:
        cam = CaptureConfig(
            name="mjpeg",
            source=f"http://127.0.0.1:{server.port}/video.mjpg",
            open_timeout_s=1.0,
            read_timeout_s=0.3,
            reconnect=FAST_RETRY,
            queue_size=64,
        )
        states: list[str] = []
        cap = CameraCapture(cam, on_status=lambda st: states.append(st.state)).start()
        assert wait_for(lambda: len(states) >= 5, 6), states
        # online only once frames flow; then silent -> back-off -> connecting again
        assert states[:2] == ["connecting", "online"]
        assert states[2:5] == ["backoff", "connecting", "online"]
        s = cap.stats()
        assert s.width == 64 and s.height == 48 and s.is_live
        assert s.last_error and "no frame" in s.last_error
        f = cap.get(1.0)
        assert f is not None and f.is_live and f.video_time_s is None
        stop_quickly(cap)
    finally:
        server.close()


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_gstreamer_without_support_is_a_clear_permanent_error() -> None:
    cam = CaptureConfig(name="gst", source="videotestsrc ! videoconvert ! appsink")
    assert cam.kind is SourceKind.GSTREAMER
    cap = CameraCapture(cam).start()
    assert list(cap) == []
    s = cap.stats()
    assert s.state == "failed" and "GStreamer" in (s.last_error or "") and s.open_attempts == 1


# -- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (0, SourceKind.USB),
        ("1", SourceKind.USB),
        ("/dev/video2", SourceKind.USB),
        ("rtsp://cam/1", SourceKind.STREAM),
        ("HTTP://cam/mjpg", SourceKind.STREAM),
        ("gst:v4l2src ! appsink", SourceKind.GSTREAMER),
        ("nvarguscamerasrc ! nvvidconv ! appsink", SourceKind.GSTREAMER),
        ("clip.mp4", SourceKind.FILE),
        ("file:///tmp/clip.mp4", SourceKind.FILE),
        ("frames/", SourceKind.IMAGES),
    ],
)
def test_detect_source_kind(source, kind) -> None:
    assert detect_source_kind(source) is kind


def test_backoff_delay_grows_and_caps() -> None:
    cfg = ReconnectConfig(initial_s=1, max_s=10, multiplier=2, jitter=0)
    assert [backoff_delay(i, cfg) for i in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    jit = ReconnectConfig(initial_s=1, max_s=10, jitter=0.5)
    rng = random.Random(0)
    vals = [backoff_delay(1, jit, rng) for _ in range(200)]
    assert min(vals) >= 0.5 and max(vals) <= 1.5 and max(vals) - min(vals) > 0.5


def test_redact_hides_url_passwords() -> None:
    assert redact("rtsp://admin:pw@10.0.0.2/s") == "rtsp://admin:***@10.0.0.2/s"
    assert redact("/dev/video0") == "/dev/video0"
