"""Stage watchdog (edge.app.watchdog): stalled captures are restarted, a stuck worker or sink makes
the process unhealthy (so systemd's WatchdogSec restarts it), a dead sink thread is restarted.

Unit tests drive ``StageWatchdog.check(now)`` with fake stages and an explicit clock; the
pipeline tests use a fake live camera whose read blocks forever (an RTSP stream that stalls
inside the decoder without honouring its timeout), a slow engine and a blocking sink.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.app.watchdog import CameraWatch, StageWatchdog, WatchdogConfig, capture_stall_threshold

# ----------------------------------------------------------------------------- unit


@dataclass
class FakeStats:
    state: str = "online"
    frames_read: int = 0
    queue_depth: int = 0
    queue_size: int = 4


class FakeCapture:
    def __init__(self, is_live: bool = True, drop_oldest: bool | None = None) -> None:
        self.is_live = is_live
        self.drop_oldest = is_live if drop_oldest is None else drop_oldest
        self.st = FakeStats()
        self.running = True

    def stats(self) -> FakeStats:
        return self.st


class FakeStage:
    def __init__(self) -> None:
        self.busy_since: float | None = None
        self.alive = True


def make_watchdog(cap_holder: list, **cfg: float) -> tuple[StageWatchdog, list[str]]:
    restarts: list[str] = []

    def restart(note: str) -> None:
        restarts.append(note)
        cap_holder[0] = FakeCapture(cap_holder[0].is_live)

    config = WatchdogConfig(capture_stall_s=10, inference_stall_s=20, sink_stall_s=20, **cfg)
    wd = StageWatchdog(
        config,
        [CameraWatch("cam", lambda: cap_holder[0], restart, stall_s=10.0)],
        worker=FakeStage(),
        sink=FakeStage(),
    )
    return wd, restarts


def test_threshold_covers_the_source_timeouts() -> None:
    assert capture_stall_threshold(30, 5, 5) == 30
    assert capture_stall_threshold(5, 5, 20) == 40  # a read may legally block 20 s


def test_live_capture_without_frames_is_restarted_once_then_backs_off() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder)
    wd.check(0.0)
    holder[0].st.frames_read = 5
    wd.check(1.0)  # progress
    wd.check(10.9)  # 9.9 s without a frame: not yet
    assert restarts == []
    wd.check(11.1)
    assert len(restarts) == 1 and "no frame for 10 s" in restarts[0]
    assert wd.counters.capture_restarts == 1 and wd.counters.capture_stalls == 1
    # the new capture stalls at once too: restart 2 no sooner than 2 x 10 s after restart 1
    wd.check(11.2)  # new capture seen: fresh mark
    wd.check(21.5)  # stalled 10.3 s, but within the back-off
    wd.check(31.0)
    assert len(restarts) == 1
    wd.check(31.2)
    assert len(restarts) == 2
    wd.check(31.3)  # ... and restart 3 no sooner than 4 x 10 s after restart 2
    wd.check(70.0)
    assert len(restarts) == 2
    wd.check(71.3)
    assert len(restarts) == 3
    # frames flowing again reset the back-off
    wd.check(71.4)
    holder[0].st.frames_read = 1
    wd.check(72.0)
    wd.check(82.1)
    assert len(restarts) == 4
    assert wd.healthy()  # a restartable camera never makes the process unhealthy


def test_camera_in_backoff_or_back_pressure_is_not_stalled() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder)
    holder[0].st.state = "backoff"  # a dead camera retries on its own
    wd.check(0.0)
    wd.check(100.0)
    file_cap = FakeCapture(is_live=False)
    file_cap.st.queue_depth = 4  # full queue: the file waits for the pipeline
    holder[0] = file_cap
    wd.check(200.0)
    wd.check(300.0)
    assert restarts == [] and wd.counters.capture_stalls == 0


def test_stalled_file_is_reported_not_restarted() -> None:
    holder = [FakeCapture(is_live=False)]
    wd, restarts = make_watchdog(holder)
    wd.check(0.0)
    wd.check(50.0)
    wd.check(60.0)
    assert restarts == [] and wd.counters.capture_stalls == 1


def test_too_many_stuck_capture_threads_make_the_process_unhealthy() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder, max_stuck_threads=1)
    t = 0.0
    wd.check(t)
    for _ in range(3):  # each restarted capture stalls again; the old threads stay blocked
        t += 10_000.0
        wd.check(t)
        wd.check(t + 0.1)
    assert len(restarts) == 3
    assert not wd.healthy() and "still blocked" in wd.problems[0]
    assert wd.counters.stuck_threads == 3


def test_stuck_worker_is_unhealthy_until_it_moves_again() -> None:
    holder = [FakeCapture()]
    wd, _ = make_watchdog(holder)
    worker = wd.worker
    assert isinstance(worker, FakeStage)
    worker.busy_since = 100.0
    assert wd.check(110.0) == [] and wd.healthy()
    problems = wd.check(121.0)
    assert problems and "inference worker" in problems[0] and not wd.healthy()
    wd.check(130.0)
    assert wd.counters.inference_stalls == 1  # one episode, counted once
    worker.busy_since = None
    assert wd.check(131.0) == [] and wd.healthy()
    worker.alive = False
    assert "dead" in wd.check(132.0)[0]


def test_dead_sink_thread_is_restarted() -> None:
    holder = [FakeCapture()]
    restarted = []
    wd, _ = make_watchdog(holder)
    wd.restart_sink = lambda: restarted.append(1)
    sink = wd.sink
    assert isinstance(sink, FakeStage)
    sink.alive = False
    assert wd.check(1.0) == [] and restarted == [1] and wd.counters.sink_restarts == 1
    sink.alive = True
    sink.busy_since = 0.0
    assert "sink thread" in wd.check(25.0)[0]
    assert wd.counters.sink_stalls == 1
