#!/usr/bin/env bash
# Bare-metal install of platewatch as a systemd service on a Jetson with JetPack 6.
#
#   sudo deploy/jetson/install.sh [--precision fp16|int8|fp32] [--calib-dir DIR]
#                                 [--with-broker] [--no-start] [--dry-run]
#
# What it does (idempotent; safe to re-run after `git pull` to upgrade):
#   1. checks this is a Jetson on L4T r36 (JetPack 6) with TensorRT 10,
#   2. apt: python3-venv, the distribution OpenCV (GStreamer-enabled), GStreamer plugins,
#      optionally mosquitto,
#   3. a venv in /opt/platewatch/venv that SEES the system site-packages (TensorRT's Python
#      bindings and cv2 come from apt, not pip) with platewatch installed --no-deps,
#   4. user `platewatch` (groups video), /etc/platewatch, /var/lib/platewatch, /var/log/platewatch,
#   5. the shipped models, the example config (never overwrites yours), the systemd unit,
#   6. `platewatch build-engines`, `platewatch doctor`, then enables and starts the service.
set -euo pipefail

PRECISION=fp16
CALIB_DIR=""
WITH_BROKER=0
START=1
DRY_RUN=0
PREFIX=/opt/platewatch
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --precision) PRECISION="$2"; shift 2 ;;
        --calib-dir) CALIB_DIR="$2"; shift 2 ;;
        --with-broker) WITH_BROKER=1; shift ;;
        --no-start) START=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
done
case "$PRECISION" in fp16|int8|fp32) ;; *) echo "--precision must be fp16, int8 or fp32" >&2; exit 2 ;; esac

run() {  # print, and execute unless --dry-run
    echo "+ $*"
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}
say() { printf '\n== %s\n' "$*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo)"; fi

say "checking the device"
MODEL="$(tr -d '\0' </proc/device-tree/model 2>/dev/null || true)"
RELEASE="$(head -n1 /etc/nv_tegra_release 2>/dev/null || true)"
echo "device: ${MODEL:-unknown}; L4T: ${RELEASE:-unknown}"
if [ "$DRY_RUN" -eq 0 ]; then
    case "$MODEL" in *Jetson*) ;; *) die "not a Jetson (no 'Jetson' in /proc/device-tree/model)" ;; esac
    case "$RELEASE" in *R36*) ;; *) die "needs JetPack 6 (L4T R36); found: ${RELEASE:-none}" ;; esac
    python3 -c 'import tensorrt, sys; sys.exit(int(tensorrt.__version__.split(".")[0]) < 10)' \
        || die "TensorRT 10 Python bindings missing: sudo apt install nvidia-jetpack (or python3-libnvinfer)"
fi

say "system packages"
PKGS=(python3-venv python3-pip python3-opencv python3-numpy
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-libav nvidia-l4t-gstreamer mosquitto-clients)
if [ "$WITH_BROKER" -eq 1 ]; then PKGS+=(mosquitto); fi
run apt-get update
run apt-get install -y --no-install-recommends "${PKGS[@]}"

say "python environment in $PREFIX/venv"
run mkdir -p "$PREFIX"
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    # --system-site-packages: tensorrt and cv2 (with GStreamer) come from apt.
    run python3 -m venv --system-site-packages "$PREFIX/venv"
fi
# No pip OpenCV (it has no GStreamer); numpy < 2 because apt's cv2 is built against numpy 1.x.
run "$PREFIX/venv/bin/pip" install --upgrade \
    "numpy>=1.24,<2" "onnxruntime>=1.17" "paho-mqtt>=2.0" "pydantic>=2.5" "pyyaml>=6.0" \
    "cuda-python>=12.2,<13"
run "$PREFIX/venv/bin/pip" install --no-deps --upgrade "$REPO"
run "$PREFIX/venv/bin/pip" uninstall -y opencv-python opencv-python-headless opencv-contrib-python \
    || true

say "user, folders, models, config"
if ! id platewatch >/dev/null 2>&1; then
    run useradd --system --home-dir /var/lib/platewatch --shell /usr/sbin/nologin \
        --groups video platewatch
fi
run install -d -o platewatch -g platewatch /var/lib/platewatch /var/lib/platewatch/engines \
    /var/lib/platewatch/spool /var/log/platewatch
run install -d /etc/platewatch "$PREFIX/models"
run cp -a "$REPO"/models/. "$PREFIX/models/"
if [ ! -e /etc/platewatch/cameras.yaml ]; then
    run install -m 0640 -g platewatch "$REPO/deploy/jetson/cameras.parking.yaml" /etc/platewatch/cameras.yaml
    echo "edit /etc/platewatch/cameras.yaml (camera URLs, broker), then: sudo systemctl restart platewatch"
fi
if [ ! -e /etc/platewatch/platewatch.env ]; then
    if [ "$DRY_RUN" -eq 0 ]; then
        printf 'PLATEWATCH_PRECISION=%s\n# ENTRY_RTSP_URL=rtsp://user:password@192.168.1.64:554/stream1\n# MQTT_HOST=localhost\n' \
            "$PRECISION" >/etc/platewatch/platewatch.env
        chmod 0640 /etc/platewatch/platewatch.env
        chgrp platewatch /etc/platewatch/platewatch.env
    else
        echo "+ write /etc/platewatch/platewatch.env (PLATEWATCH_PRECISION=$PRECISION)"
    fi
fi
run install -m 0644 "$REPO/deploy/jetson/platewatch.service" /etc/systemd/system/platewatch.service
run systemctl daemon-reload

PW=(sudo -u platewatch env PLATEWATCH_MODELS="$PREFIX/models" XDG_STATE_HOME=/var/lib
    "$PREFIX/venv/bin/platewatch")
say "TensorRT engines ($PRECISION; minutes on first run)"
BUILD=(build-engines --cache-dir /var/lib/platewatch/engines --precision "$PRECISION")
if [ -n "$CALIB_DIR" ]; then BUILD+=(--calib-dir "$CALIB_DIR"); fi
run "${PW[@]}" "${BUILD[@]}"

say "doctor"
run "${PW[@]}" doctor --config /etc/platewatch/cameras.yaml --cache-dir /var/lib/platewatch/engines \
    || echo "doctor reported problems (above); fix them, then: sudo systemctl restart platewatch"

if [ "$START" -eq 1 ]; then
    say "service"
    run systemctl enable --now platewatch
    echo "follow it with: journalctl -u platewatch -f    events: mosquitto_sub -t 'platewatch/#' -v"
fi
