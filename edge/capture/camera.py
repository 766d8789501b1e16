"""One capture thread per camera, feeding a bounded frame queue.

This module owns the *policy* around a source (`edge.capture.sources` owns reading it):

- queueing: live sources (and files with ``realtime``) drop the OLDEST queued frame when the
  consumer falls behind, so the pipeline always works on the newest picture; files otherwise
  block the reader (back-pressure) and never lose a frame;
- robustness: open failures and lost streams are retried with exponential back-off and jitter,
  corrupt frames are counted and skipped, the end of a file ends the capture (or loops);
- accounting: `CaptureStats` snapshots and an optional status callback on every state change;
- shutdown: `stop()` returns within its timeout; the thread is a daemon and only ever blocks in
  OpenCV for at most the configured open/read timeout.

Frame sampling (analyse every Nth frame) is the pipeline's job, not this module's.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from edge.capture.config import CaptureConfig, ReconnectConfig
from edge.capture.gstreamer import CaptureUnavailable, Platform, plan_capture
from edge.capture.sources import (
    FrameSource,
    ImageFolderSource,
    OpenCVSource,
    SourceError,
    SourceKind,
)
from edge.types import Frame

log = logging.getLogger("platewatch.capture")

# Capture states, in the order a healthy camera goes through them.
STARTING, CONNECTING, ONLINE, BACKOFF, ENDED, FAILED, STOPPED = (
    "starting",
    "connecting",
    "online",
    "backoff",
    "ended",
    "failed",
    "stopped",
)
FINAL_STATES = (ENDED, FAILED, STOPPED)


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A consistent snapshot of one camera's capture counters."""

    camera: str
    kind: str  # SourceKind value
    state: str  # starting|connecting|online|backoff|ended|failed|stopped
    online: bool
    is_live: bool
    source_fps: float | None
    width: int | None
    height: int | None
    frames_read: int  # good frames put on the queue (including ones dropped later)
    frames_dropped: int  # queued frames evicted because the consumer was behind
    frames_corrupt: int  # unreadable/empty frames skipped
    open_attempts: int
    reconnects: int  # opens after the first one (retries and re-connections)
    consecutive_failures: int
    next_retry_s: float | None  # back-off delay being waited, while in state "backoff"
    last_error: str | None
    last_error_at: float | None  # wall clock
    last_frame_at: float | None  # wall clock
    early_eof: bool  # a file ended before its announced frame count
    loops: int  # times a looping file/folder restarted
    queue_depth: int
    queue_size: int
    started_at: float | None


class FrameQueue:
    """Bounded FIFO with two put policies: block (back-pressure) or evict the oldest."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._items: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Frame, *, drop_oldest: bool, stop: threading.Event) -> tuple[bool, int]:
        """Queue ``item``; returns (queued, frames evicted). Blocks (while not ``stop``) if full
        and not ``drop_oldest``."""
        with self._cond:
            dropped = 0
            if drop_oldest:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    dropped += 1
            else:
                while len(self._items) >= self.maxsize:
                    if stop.is_set() or self._closed:
                        return False, 0
                    # Short waits so a stop() is noticed even if nobody consumes again.
                    self._cond.wait(0.05)
            self._items.append(item)
            self._cond.notify_all()
            return True, dropped

    def get(self, timeout: float | None = None) -> Frame | None:
        """Oldest frame, or None on timeout / when closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait(0.1)
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more frames will come: wake every waiter; queued frames can still be drained."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def clear(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._cond.notify_all()
            return n

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def backoff_delay(attempt: int, cfg: ReconnectConfig, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): initial * multiplier^(attempt-1), capped,
    spread by +/- jitter so many cameras behind one dead switch do not retry in lock-step."""
    base = min(cfg.max_s, cfg.initial_s * cfg.multiplier ** max(0, attempt - 1))
    if cfg.jitter:
        r = (rng or random).uniform(-cfg.jitter, cfg.jitter)
        base *= 1.0 + r
    return max(0.0, base)


def make_source(config: CaptureConfig, platform: Platform | None = None) -> FrameSource:
    """The `FrameSource` for a camera configuration: image folders as such; RTSP, files, USB
    and ``csi://N`` through the Jetson hardware pipeline when ``decoder`` allows and this
    machine has one (edge.capture.gstreamer.plan_capture), else through OpenCV's FFmpeg/V4L2."""
    kind = config.kind
    if kind is SourceKind.IMAGES:
        return ImageFolderSource(str(config.source), fps=config.fps)
    source: str | int = config.source
    if kind is not SourceKind.GSTREAMER:
        try:
            backend, target = plan_capture(
                config.source, config.decoder, platform, codec=config.codec,
                width=config.width, height=config.height, fps=config.fps,
            )  # fmt: skip
        except CaptureUnavailable as e:
            raise SourceError(str(e), permanent=True) from e
        if backend == "gstreamer":
            kind, source = SourceKind.GSTREAMER, target
        elif kind is SourceKind.CSI:
            raise SourceError(
                f"{config.source}: a CSI camera is only read through GStreamer's "
                "nvarguscamerasrc (decoder: ffmpeg cannot open it)",
                permanent=True,
            )
    return OpenCVSource(
        kind,
        source,
        open_timeout_s=config.open_timeout_s,
        read_timeout_s=config.read_timeout_s,
        fps=config.fps,
        width=config.width,
        height=config.height,
    )


StatusCallback = Callable[[CaptureStats], None]


class CameraCapture:
    """Reads one camera on its own daemon thread into a bounded `FrameQueue`.

    Use ``cap = CameraCapture(cfg).start()``, then ``for frame in cap: ...`` (ends when the
    source ends or after `stop()`), or poll ``cap.get(timeout)``. ``on_status`` is called from
    the capture thread with a `CaptureStats` snapshot on every state change.
    """

    def __init__(
        self,
        config: CaptureConfig,
        *,
        on_status: StatusCallback | None = None,
        source_factory: Callable[[CaptureConfig], FrameSource] = make_source,
        queue_size: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self.is_live = self.kind.is_live
        # Files paced in real time behave like a live camera: never make the reader wait.
        self.drop_oldest = self.is_live or config.realtime
        self.queue = FrameQueue(queue_size or config.queue_size)
        self._on_status = on_status
        self._source_factory = source_factory
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state = STARTING
        self._online = False
        self._fps: float | None = config.fps
        self._width: int | None = None
        self._height: int | None = None
        self._frames_read = 0
        self._frames_dropped = 0
        self._frames_corrupt = 0
        self._open_attempts = 0
        self._reconnects = 0
        self._failures = 0
        self._next_retry: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._logged_error: str | None = None  # the reason last logged at WARNING
        self._last_frame_at: float | None = None
        self._early_eof = False
        self._loops = 0
        self._started_at: float | None = None

    # -- public API ---------------------------------------------------------------------------

    def start(self) -> CameraCapture:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.name!r}: capture already started")
        self._started_at = time.time()
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` s. True if it has ended.

        Frames still queued stay readable (``get``/iteration drain them, then end).
        """
        self._stop.set()
        self.queue.close()
        if self._thread is None:
            self._set_state(STOPPED)
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            log.warning(
                "camera %s: capture thread still blocked in the source after %.1f s; "
                "it is a daemon and ends when the source call times out",
                self.name,
                timeout,
            )
        return not alive

    def get(self, timeout: float | None = None) -> Frame | None:
        """Next frame, or None after ``timeout`` s or once the capture has finished."""
        return self.queue.get(timeout)

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.queue.get(0.25)
            if frame is not None:
                yield frame
            elif self.finished:
                return

    def __enter__(self) -> CameraCapture:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def fps(self) -> float | None:
        """Source frame rate (config override, else what the source reports; None if unknown)."""
        return self._fps

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """The capture thread is done (or was stopped) and every queued frame was taken."""
        done = self._stop.is_set() or (self._thread is not None and not self._thread.is_alive())
        return done and len(self.queue) == 0

    @property
    def state(self) -> str:
        return self._state

    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(
                camera=self.name,
                kind=self.kind.value,
                state=self._state,
                online=self._online,
                is_live=self.is_live,
                source_fps=self._fps,
                width=self._width,
                height=self._height,
                frames_read=self._frames_read,
                frames_dropped=self._frames_dropped,
                frames_corrupt=self._frames_corrupt,
                open_attempts=self._open_attempts,
                reconnects=self._reconnects,
                consecutive_failures=self._failures,
                next_retry_s=self._next_retry,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
                last_frame_at=self._last_frame_at,
                early_eof=self._early_eof,
                loops=self._loops,
                queue_depth=len(self.queue),
                queue_size=self.queue.maxsize,
                started_at=self._started_at,
            )

    # -- thread -------------------------------------------------------------------------------

    def _set_state(self, state: str, *, online: bool | None = None) -> None:
        with self._lock:
            changed = state != self._state or (online is not None and online != self._online)
            self._state = state
            if online is not None:
                self._online = online
        if changed and self._on_status is not None:
            try:
                self._on_status(self.stats())
            except Exception:  # a broken callback must not kill the camera
                log.exception("camera %s: status callback failed", self.name)

    def _error(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            self._last_error_at = time.time()
            repeat = message == self._logged_error
            self._logged_error = message
        # A dead camera retried for hours says why once (and again when the reason changes),
        # not once per attempt.
        (log.debug if repeat else log.warning)("camera %s: %s", self.name, message)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # never let a capture bug take the process down
            log.exception("camera %s: capture thread crashed", self.name)
            self._error(f"capture crashed: {type(e).__name__}: {e}")
            self._set_state(FAILED, online=False)
        finally:
            self.queue.close()
            if self._stop.is_set() and self._state not in (ENDED, FAILED):
                self._set_state(STOPPED, online=False)

    def _backoff(self) -> bool:
        """Wait before the next open attempt; False if stopped meanwhile."""
        with self._lock:
            self._failures += 1
            delay = backoff_delay(self._failures, self.config.reconnect, self._rng)
            self._next_retry = delay
            attempt = self._failures
        (log.info if attempt == 1 else log.debug)(
            "camera %s: retrying in %.1f s (attempt %d; back-off up to %.0f s)",
            self.name,
            delay,
            attempt + 1,
            self.config.reconnect.max_s,
        )
        self._set_state(BACKOFF, online=False)
        stopped = self._stop.wait(delay)
        with self._lock:
            self._next_retry = None
        return not stopped

    def _loop(self) -> None:
        cfg = self.config
        # Index/time offsets so a looping file keeps counting forward instead of restarting at 0.
        index_offset = 0
        time_offset = 0.0
        first_open = True
        while not self._stop.is_set():
            with self._lock:
                self._open_attempts += 1
                if not first_open:
                    self._reconnects += 1
            first_open = False
            self._set_state(CONNECTING)
            try:
                source = self._source_factory(cfg)
                source.open()
            except SourceError as e:
                self._error(str(e))
                if e.permanent:
                    self._set_state(FAILED, online=False)
                    return
                if not self._backoff():
                    return
                continue
            with self._lock:
                self._fps = source.fps
            outcome = self._read_until_done(source, index_offset, time_offset)
            source.close()
            kind, last_index, last_time = outcome
            if kind == "stopped":
                return
            if kind == "eof":
                if cfg.loop and not self.is_live and last_index >= index_offset:
                    with self._lock:
                        self._loops += 1
                    index_offset = last_index + 1
                    fps = self._fps or 0.0
                    time_offset = last_time + (1.0 / fps if fps else 0.0)
                    first_open = True  # a loop restart is not a reconnect
                    continue
                self._set_state(ENDED, online=False)
                return
            # "error": live source lost (or silent past read timeout) -> back off and reopen.
            if not self._backoff():
                return

    def _read_until_done(
        self, source: FrameSource, index_offset: int, time_offset: float
    ) -> tuple[str, int, float]:
        """Read until EOF, error or stop. Returns (outcome, last index, last video time)."""
        realtime = self.config.realtime and not self.is_live
        pace_start: float | None = None
        first_time: float | None = None
        last_index, last_time = index_offset - 1, time_offset
        got_frame = False
        while not self._stop.is_set():
            r = source.read()
            if r.corrupt:
                with self._lock:
                    self._frames_corrupt += r.corrupt
            if r.status == "eof":
                if r.early_eof:
                    with self._lock:
                        self._early_eof = True
                    self._error("file ended before its announced frame count (truncated?)")
                return "eof", last_index, last_time
            if r.status == "error":
                self._error(r.error or "read failed")
                return "error", last_index, last_time
            image = r.image
            assert image is not None
            now = time.time()
            mono = time.monotonic()
            if not got_frame:
                got_frame = True
                with self._lock:
                    # A camera that delivers frames again starts the back-off from scratch.
                    failures, self._failures = self._failures, 0
                    recovered = self._logged_error is not None and self._frames_read > 0
                    self._logged_error = None
                if failures or recovered:
                    log.warning("camera %s: receiving frames again", self.name)
                    self._height, self._width = int(image.shape[0]), int(image.shape[1])
                # "online" means frames arrive, not merely that the connection opened.
                self._set_state(ONLINE, online=True)
            index = index_offset + (
                r.index if r.index is not None else last_index + 1 - index_offset
            )
            video_time = None
            if not self.is_live:
                t = r.time_s
                if t is None and self._fps:
                    t = (index - index_offset) / self._fps
                video_time = None if t is None else t + time_offset
            if realtime and video_time is not None:
                # Pace on the file's own clock: frame k is due k/fps after the first one.
                if pace_start is None:
                    pace_start, first_time = mono, video_time
                due = pace_start + (video_time - (first_time or 0.0))
                if due > mono and self._stop.wait(due - mono):
                    return "stopped", last_index, last_time
                now, mono = time.time(), time.monotonic()
            frame = Frame(
                camera=self.name,
                index=index,
                timestamp=now,
                image=image,
                is_live=self.is_live,
                video_time_s=video_time,
                monotonic=mono,
            )
            queued, dropped = self.queue.put(frame, drop_oldest=self.drop_oldest, stop=self._stop)
            if not queued:
                return "stopped", last_index, last_time
            with self._lock:
                self._frames_read += 1
                self._frames_dropped += dropped
                self._last_frame_at = now
            last_index = index
            if video_time is not None:
                last_time = video_time
        return "stopped", last_index, last_time


def stats_dict(stats: CaptureStats) -> dict[str, object]:
    """Plain dict of a snapshot (for JSON / MQTT stats messages)."""
    return asdict(stats)


__all__ = [
    "CameraCapture",
    "CaptureStats",
    "Frame",
    "FrameQueue",
    "backoff_delay",
    "make_source",
    "stats_dict",
]
