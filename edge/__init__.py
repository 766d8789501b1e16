"""platewatch: real-time licence-plate recognition for video surveillance on edge devices."""

import os

# OpenCV's FFmpeg backend prints its own warnings on stderr, on every retry of a dead RTSP
# camera ("[rtsp @ 0x...] method DESCRIBE failed"); platewatch logs the state itself, once.
# Set before any cv2 import; an explicit setting in the environment wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
