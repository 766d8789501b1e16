"""The annotated video: H.264, a legend, no junk boxes, one id per box."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.analysis.analyzer import TrackOverlay
from edge.app.annotate import VideoAnnotator, draw_overlays, shown


def _plate(tid: int, **kw: object) -> TrackOverlay:
    return TrackOverlay(tid, "plate", (10.0, 10.0, 60.0, 25.0), True, **kw)  # type: ignore[arg-type]


def test_junk_plate_boxes_are_not_drawn_by_default() -> None:
    vehicle = TrackOverlay(1, "vehicle", (0.0, 0.0, 100.0, 100.0), True)
    linked = _plate(2, plate="AB123", confidence=0.2, linked=True, vote_key=1)
    stripe = _plate(3, plate="H", confidence=0.1)  # unlinked, unsure: a speed bump read as "H"
    sure = _plate(4, plate="XY999ZZ", confidence=0.9)  # a car the detector did not box
    published = _plate(5, plate="QQ11", confidence=0.3, status="provisional")
    short = _plate(6, plate="W", confidence=0.9, linked=True)  # a stripe a car passed over
    all_ = [vehicle, linked, stripe, sure, published, short]
    assert [o.track_id for o in shown(all_)] == [1, 2, 4, 5]
    assert shown(all_, everything=True) == all_


def test_labels_use_the_tracks_own_ids_and_a_legend_is_drawn() -> None:
    img = np.zeros((360, 640, 3), np.uint8)
    vehicle = TrackOverlay(1, "vehicle", (100.0, 50.0, 400.0, 300.0), True)
    front = _plate(2, plate="AB123CD", linked=True, vote_key=1, confidence=0.9)
    rear = _plate(3, plate="AB123CD", linked=True, vote_key=1, confidence=0.9)
    out = draw_overlays(img.copy(), [vehicle, front, rear])
    assert out[300:, :200].any()  # the legend, bottom left
    # two plate tracks of one vehicle used to be drawn as "#1" twice: now P2 and P3 (->V1)
    from edge.app import annotate

    texts: list[str] = []
    real = annotate._label
    annotate._label = lambda im, text, x, y, c: texts.append(text) or real(im, text, x, y, c)  # type: ignore[assignment,func-returns-value]
    try:
        draw_overlays(img.copy(), [vehicle, front, rear])
    finally:
        annotate._label = real  # type: ignore[assignment]
    ids = [t.split()[0] for t in texts if t.startswith(("V", "P")) and t[1].isdigit()]
    assert ids[:3] == ["V1", "P2", "P3"] and len(set(ids[:3])) == 3
    assert "P2 AB123CD ? ->V1" in texts


def test_video_is_h264_with_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    ann = VideoAnnotator(path, 25.0)
    for i in range(30):
        ann.put(np.full((121, 161, 3), i * 8, np.uint8), [], f"#{i}")  # odd size on purpose
    ann.close()
    assert ann.error is None and ann.codec == "h264" and ann.frames_written == 30
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in c.decode(stream)) == 30
