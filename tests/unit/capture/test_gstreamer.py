"""Camera description -> GStreamer pipeline strings, and the GStreamer-vs-FFmpeg choice."""

from __future__ import annotations

import pytest

from edge.capture.gstreamer import (
    INSPECTED,
    CaptureUnavailable,
    Platform,
    VideoSource,
    build_pipeline,
    choose_capture,
    csi_pipeline,
    detect_platform,
    file_pipeline,
    parse_source,
    rtsp_pipeline,
    usb_pipeline,
)
from edge.capture.sources import SourceKind, detect_source_kind, gstreamer_pipeline

JETSON = Platform(frozenset(INSPECTED), opencv_gstreamer=True)
X86_PIP = Platform(frozenset(), opencv_gstreamer=False)
# x86 with a distro OpenCV (GStreamer yes) but no NVIDIA elements.
X86_GST = Platform(frozenset({"rtspsrc", "v4l2src", "qtdemux", "h264parse"}), True)
# A Jetson whose Python uses pip's OpenCV (a common mistake).
JETSON_PIP_CV = Platform(frozenset(INSPECTED), opencv_gstreamer=False)

URL = "rtsp://admin:pw@192.168.1.64:554/Streaming/Channels/101"


def test_rtsp_h264_hardware_pipeline_exact() -> None:
    assert rtsp_pipeline(VideoSource("rtsp", URL)) == (
        f'rtspsrc location="{URL}" latency=200 protocols=tcp ! rtph264depay ! h264parse ! '
        "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=2 sync=false"
    )


def test_rtsp_h265_resize_flip_latency() -> None:
    p = rtsp_pipeline(
        VideoSource("rtsp", URL, codec="h265", width=1280, height=720, latency_ms=50, flip_method=2)
    )
    assert "latency=50 " in p
    assert (
        "! rtph265depay ! h265parse ! nvv4l2decoder ! nvvidconv flip-method=2 ! "
        "video/x-raw,format=BGRx,width=1280,height=720 !" in p
    )
    assert "h264" not in p


def test_rtsp_auto_codec_and_software() -> None:
    auto = rtsp_pipeline(VideoSource("rtsp", URL, codec="auto"))
    assert "! decodebin ! nvvidconv !" in auto and "depay" not in auto
    sw = rtsp_pipeline(VideoSource("rtsp", URL), hardware=False)
    assert "h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=BGR ! appsink" in sw
    assert "nv" not in sw.replace("videoconvert", "")


def test_url_quoting_survives_special_characters() -> None:
    p = rtsp_pipeline(VideoSource("rtsp", 'rtsp://h/live?a=1&b="x"\\y'))
    assert 'location="rtsp://h/live?a=1&b=\\"x\\"\\\\y"' in p


@pytest.mark.parametrize(
    ("path", "codec", "expected"),
    [
        ("/v/gate.mp4", "h264", "qtdemux ! h264parse ! nvv4l2decoder"),
        ("/v/gate.MOV", "h265", "qtdemux ! h265parse ! nvv4l2decoder"),
        ("/v/gate.mkv", "h264", "matroskademux ! h264parse ! nvv4l2decoder"),
        ("/v/gate.ts", "h264", "tsdemux ! h264parse ! nvv4l2decoder"),
        ("/v/gate.h265", "h264", '" ! h265parse ! nvv4l2decoder'),  # raw stream: ext wins
        ("/v/gate.avi", "h264", '" ! decodebin ! nvvidconv'),  # unknown container
        ("/v/gate.mp4", "auto", '" ! decodebin ! nvvidconv'),
    ],
)
def test_file_pipelines(path: str, codec: str, expected: str) -> None:
    p = file_pipeline(VideoSource("file", path, codec=codec))  # type: ignore[arg-type]
    assert p.startswith(f'filesrc location="{path}"')
    assert expected in p
    # Files never drop frames: back-pressure instead.
    assert p.endswith("appsink drop=false max-buffers=4 sync=false")


def test_csi_pipeline_exact_and_fractional_fps() -> None:
    assert csi_pipeline(VideoSource("csi", "", sensor_id=1)) == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,"
        "framerate=30/1,format=NV12 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=2 sync=false"
    )
    p = csi_pipeline(VideoSource("csi", "", width=1280, height=720, fps=29.97, flip_method=2))
    assert "width=1280,height=720,framerate=30000/1001" in p
    assert "nvvidconv flip-method=2 !" in p


def test_usb_pipeline() -> None:
    src = VideoSource("usb", "/dev/video1", width=1280, height=720, fps=30)
    assert usb_pipeline(src) == (
        "v4l2src device=/dev/video1 ! video/x-raw,width=1280,height=720,framerate=30/1 ! "
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=2 sync=false"
    )
    assert "nvvidconv" not in usb_pipeline(src, hardware=False)
    assert usb_pipeline(VideoSource("usb", "/dev/video0")).startswith(
        "v4l2src device=/dev/video0 ! video/x-raw ! "
    )


@pytest.mark.parametrize(
    ("source", "type_", "location"),
    [
        (URL, "rtsp", URL),
        ("rtsps://cam/x", "rtsp", "rtsps://cam/x"),
        ("http://cam/mjpg", "stream", "http://cam/mjpg"),
        ("csi://1", "csi", ""),
        ("csi:0", "csi", ""),
        (0, "usb", "/dev/video0"),
        ("2", "usb", "/dev/video2"),
        ("/dev/video3", "usb", "/dev/video3"),
        ("gst:videotestsrc ! appsink", "pipeline", "videotestsrc ! appsink"),
        ("videotestsrc ! appsink", "pipeline", "videotestsrc ! appsink"),
        ("file:///v/a.mp4", "file", "/v/a.mp4"),
        ("clips/a.mp4", "file", "clips/a.mp4"),
    ],
)
def test_parse_source(source: str | int, type_: str, location: str) -> None:
    src = parse_source(source)
    assert (src.type, src.location) == (type_, location)


def test_parse_source_errors_and_csi_sensor() -> None:
    assert parse_source("csi://3").sensor_id == 3
    with pytest.raises(ValueError):
        parse_source("  ")
    with pytest.raises(ValueError):
        parse_source(True)  # type: ignore[arg-type]


def test_make_source_takes_the_hardware_pipeline_where_there_is_one() -> None:
    """The capture path is wired: on a Jetson platform make_source opens RTSP/files/USB/CSI
    through the NVDEC/ISP pipeline; elsewhere, or with decoder: ffmpeg, through OpenCV's own."""
    from edge.capture.camera import make_source
    from edge.capture.config import CaptureConfig
    from edge.capture.sources import OpenCVSource, SourceError

    cam = CaptureConfig(name="gate", source=URL, codec="h265")
    src = make_source(cam, JETSON)
    assert isinstance(src, OpenCVSource) and src.kind is SourceKind.GSTREAMER
    assert "nvv4l2decoder" in str(src.source) and "h265parse" in str(src.source)
    csi = make_source(CaptureConfig(name="c", source="csi://0", width=1280, height=720), JETSON)
    assert str(csi.source).startswith("nvarguscamerasrc sensor-id=0")  # type: ignore[attr-defined]
    plain = make_source(cam.model_copy(update={"decoder": "ffmpeg"}), JETSON)
    assert plain.kind is SourceKind.STREAM and plain.source == URL  # type: ignore[attr-defined]
    x86 = make_source(cam, X86_PIP)
    assert x86.kind is SourceKind.STREAM  # type: ignore[attr-defined]
    with pytest.raises(SourceError, match="decoder: gstreamer"):
        make_source(cam.model_copy(update={"decoder": "gstreamer"}), X86_PIP)
    with pytest.raises(SourceError, match="CSI camera"):
        make_source(CaptureConfig(name="c", source="csi://1"), X86_PIP)
    assert CaptureConfig(name="c", source="csi://1").kind is SourceKind.CSI


def test_choose_capture_on_jetson_uses_hardware() -> None:
    backend, p = choose_capture(URL, JETSON)
    assert backend == "gstreamer" and "nvv4l2decoder" in p and URL in p
    backend, p = choose_capture("/v/a.mp4", JETSON)
    assert backend == "gstreamer" and "qtdemux ! h264parse ! nvv4l2decoder" in p
    backend, p = choose_capture("csi://0", JETSON)
    assert backend == "gstreamer" and p.startswith("nvarguscamerasrc sensor-id=0")
    backend, p = choose_capture("/dev/video0", JETSON)
    assert backend == "gstreamer" and p.startswith("v4l2src device=/dev/video0")
    # Non-RTSP network streams stay with FFmpeg (no GStreamer source assumed for them).
    assert choose_capture("http://cam/video.mjpg", JETSON) == ("ffmpeg", "http://cam/video.mjpg")


@pytest.mark.parametrize("plat", [X86_PIP, X86_GST, JETSON_PIP_CV])
def test_choose_capture_falls_back_to_ffmpeg(plat: Platform) -> None:
    assert choose_capture(URL, plat) == ("ffmpeg", URL)
    assert choose_capture("/v/a.mp4", plat) == ("ffmpeg", "/v/a.mp4")
    assert choose_capture(0, plat) == ("ffmpeg", "/dev/video0")


def test_choose_capture_impossible_sources_say_why() -> None:
    with pytest.raises(CaptureUnavailable, match="nvarguscamerasrc"):
        choose_capture("csi://0", X86_GST)
    with pytest.raises(CaptureUnavailable, match="GStreamer: NO"):
        choose_capture("csi://0", JETSON_PIP_CV)
    with pytest.raises(CaptureUnavailable, match="GStreamer: NO"):
        choose_capture("videotestsrc ! appsink", X86_PIP)
    assert choose_capture("videotestsrc ! appsink", X86_GST) == (
        "gstreamer",
        "videotestsrc ! appsink",
    )
    with pytest.raises(CaptureUnavailable, match="FFmpeg"):
        build_pipeline(VideoSource("stream", "http://x"))


def test_detect_platform_uses_injected_probe() -> None:
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return name in ("nvv4l2decoder", "nvvidconv", "rtspsrc")

    plat = detect_platform(exists, opencv_gstreamer=True)
    assert set(asked) == set(INSPECTED)
    assert plat.hardware_decode and not plat.csi
    assert choose_capture(URL, plat)[0] == "gstreamer"
    assert not detect_platform(lambda n: n == "nvvidconv", opencv_gstreamer=True).hardware_decode


def test_detect_platform_on_this_machine_does_not_crash() -> None:
    plat = detect_platform()
    assert isinstance(plat.opencv_gstreamer, bool)


@pytest.mark.parametrize(
    "src",
    [
        VideoSource("rtsp", URL),
        VideoSource("file", "/v/a.mp4"),
        VideoSource("csi", ""),
        VideoSource("usb", "/dev/video0"),
    ],
)
def test_pipelines_follow_the_capture_convention(src: VideoSource) -> None:
    """edge.capture.sources opens strings containing '!' with CAP_GSTREAMER and leaves a pipeline
    that
    already ends in appsink untouched."""
    p = build_pipeline(src)
    assert detect_source_kind(p) is SourceKind.GSTREAMER
    assert gstreamer_pipeline(p) == p
    assert p.count("appsink") == 1 and p.rstrip().split(" ! ")[-1].startswith("appsink")
