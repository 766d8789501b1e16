"""A real RTSP server for the live-camera tests: GStreamer's gst-rtsp-server, started as a child
process with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0 are Debian
packages, not importable from the project's virtual environment).

    /usr/bin/python3 tests/servers/rtsp_server.py PORT [--path /live] [--fps 25]

Serves an endless H.264 test pattern (a moving ball: every frame differs) at
rtsp://127.0.0.1:PORT/live. It prints "ready" once listening. SIGTERM ends it (the stream
closes); SIGSTOP freezes it with the connection open (a stalled camera).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--path", default="/live")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    a = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={a.width},"
        f"height={a.height},framerate={a.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
        "key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
