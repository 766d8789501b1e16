"""``platewatch doctor``: is this device ready to run platewatch? Answers in plain words.

Each check returns OK, WARN or FAIL with one line of explanation and, when not OK, one line of
advice. The exit code is 0 when nothing FAILed. Checks never raise: a probe that crashes is
reported as that check's FAIL, and the other checks still run.

Probes of the machine (commands, files, imports, the device facts) go through `Probes`, so tests
inject fakes where the real thing is absent (there is no Jetson in CI).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge.trt.cache import (
    CudaDeviceInfo,
    DeviceInfo,
    DeviceInfoError,
    DeviceInfoProvider,
    check_engine_file,
    read_sidecar,
    sha256_file,
)

Status = Literal["OK", "WARN", "FAIL"]
_ORDER = {"OK": 0, "WARN": 1, "FAIL": 2}


@dataclass
class CheckResult:
    name: str
    status: Status
    message: str
    advice: str = ""


def _run_cmd(cmd: list[str], timeout: float) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\0", "").strip()
    except OSError:
        return None


@dataclass
class Probes:
    """Everything doctor asks the machine; replace fields in tests."""

    which: Callable[[str], str | None] = shutil.which
    run: Callable[[list[str], float], tuple[int, str]] = _run_cmd
    read_text: Callable[[Path], str | None] = _read_text
    import_module: Callable[[str], Any] = importlib.import_module
    device: DeviceInfoProvider = field(default_factory=CudaDeviceInfo)
    gstreamer_platform: Callable[[], Any] | None = None  # -> edge.capture.gstreamer.Platform
    camera_timeout_s: float = 3.0
    mqtt_timeout_s: float = 3.0


# ------------------------------------------------------------------------------ the checks


def check_python(p: Probes) -> CheckResult:
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro} on {platform.system()} {platform.machine()}"
    if v < (3, 10):
        return CheckResult("python", "FAIL", text, "platewatch needs Python 3.10 or newer")
    release = p.read_text(Path("/etc/nv_tegra_release"))
    if release:
        text += f", L4T {release.split(',')[0].removeprefix('# ')}"
    return CheckResult("python", "OK", text)


def check_gpu(p: Probes) -> CheckResult:
    model = p.read_text(Path("/proc/device-tree/model"))
    if model and "jetson" in model.lower():
        tegra = "tegrastats present" if p.which("tegrastats") else "tegrastats not found"
        return CheckResult("gpu", "OK", f"{model} (integrated GPU; {tegra})")
    if p.which("nvidia-smi"):
        rc, out = p.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], 10.0
        )
        if rc == 0 and out:
            return CheckResult("gpu", "OK", f"NVIDIA GPU: {out.splitlines()[0]}")
        return CheckResult(
            "gpu",
            "FAIL",
            "nvidia-smi is installed but cannot talk to the driver",
            "reboot after a driver install, or check `nvidia-smi` and `dmesg | grep -i nvidia`",
        )
    return CheckResult(
        "gpu",
        "WARN",
        "no NVIDIA GPU found (no Jetson device tree, no nvidia-smi)",
        "platewatch runs on the CPU with ONNX Runtime; on a Jetson install JetPack 6",
    )


def check_cuda(p: Probes) -> CheckResult:
    try:
        try:
            cudart = p.import_module("cuda.bindings.runtime")
        except ImportError:
            cudart = p.import_module("cuda.cudart")
    except ImportError:
        return CheckResult(
            "cuda",
            "WARN",
            "cuda-python is not installed",
            "the TensorRT backend needs it: `pip install cuda-python` (JetPack 6: the 12.x one)",
        )
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception as exc:  # a broken install raises on first use
        return CheckResult("cuda", "WARN", f"cuda-python cannot query devices: {exc}")
    if int(err) != 0 or count < 1:
        name = getattr(err, "name", str(err))
        return CheckResult(
            "cuda",
            "WARN",
            f"cuda-python is installed but finds no usable CUDA device ({name})",
            "on Jetson run inside the nvidia runtime (docker --runtime nvidia) or check JetPack",
        )
    return CheckResult("cuda", "OK", f"CUDA runtime sees {count} device(s)")


def _engine_models(cfg: Any) -> list[Path]:
    if cfg is None:
        return []
    return [
        m
        for m in (cfg.models.detector, cfg.models.reader)
        if m.suffix.lower() in (".engine", ".plan", ".trt")
    ]


def check_tensorrt(p: Probes, cfg: Any) -> CheckResult:
    try:
        trt = p.import_module("tensorrt")
        version = str(getattr(trt, "__version__", "?"))
    except Exception:  # ImportError, or a stub wheel failing inside
        needed = _engine_models(cfg)
        status: Status = "FAIL" if needed else "WARN"
        why = (
            f"the config uses TensorRT engines ({', '.join(m.name for m in needed)})"
            if needed
            else "the .onnx models will run with ONNX Runtime instead"
        )
        return CheckResult(
            "tensorrt",
            status,
            f"TensorRT is not installed; {why}",
            "on Jetson install JetPack 6 (`sudo apt install nvidia-jetpack`) or use the "
            "deploy/jetson Docker image; on x86 GPUs `pip install 'platewatch[trt]'`",
        )
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < 10:
        return CheckResult(
            "tensorrt",
            "FAIL",
            f"TensorRT {version} found; platewatch needs TensorRT 10",
            "JetPack 6.x ships TensorRT 10; JetPack 5 (TensorRT 8.5) is not supported",
        )
    return CheckResult("tensorrt", "OK", f"TensorRT {version}")


def _model_paths(cfg: Any, models_dir: Path | None) -> list[tuple[str, Path]]:
    if cfg is not None:
        return [("detector", cfg.models.detector), ("reader", cfg.models.reader)]
    from edge.detect.models import DETECTOR_FILE, READER_FILE, default_models_dir

    root = models_dir or default_models_dir()
    return [("detector", root / DETECTOR_FILE), ("reader", root / READER_FILE)]


def check_models(p: Probes, cfg: Any, models_dir: Path | None) -> list[CheckResult]:
    from edge.detect.models import ModelSpecError, load_spec

    out = []
    for role, path in _model_paths(cfg, models_dir):
        name = f"model:{role}"
        if not path.is_file():
            out.append(
                CheckResult(
                    name,
                    "FAIL",
                    f"{path} not found",
                    "set models.detector/reader in the config, or put the shipped models there",
                )
            )
            continue
        try:
            spec = load_spec(path)
        except ModelSpecError as exc:
            out.append(CheckResult(name, "FAIL", str(exc), "copy the model's .json beside it"))
            continue
        if path.suffix.lower() != ".onnx":
            out.append(CheckResult(name, "OK", f"{path.name} ({spec.kind}) present"))
            continue
        digest = sha256_file(path)
        if spec.onnx_sha256 and spec.onnx_sha256.lower() != digest:
            out.append(
                CheckResult(
                    name,
                    "WARN",
                    f"{path.name}: sha256 {digest[:12]} differs from onnx_sha256 "
                    f"{spec.onnx_sha256[:12]} in its .json",
                    "the metadata describes another export: re-copy the model and its .json "
                    "together",
                )
            )
        elif spec.onnx_sha256:
            out.append(CheckResult(name, "OK", f"{path.name} present, sha256 matches its .json"))
        else:
            out.append(CheckResult(name, "OK", f"{path.name} present (its .json has no hash)"))
    return out


def check_engines(
    p: Probes, cfg: Any, models_dir: Path | None, cache_dir: Path | None
) -> CheckResult:
    """Engines the config names plus the stable ``<model>-<precision>.engine`` links of the
    engine cache, each checked against this device (TensorRT version, GPU) and its ONNX."""
    models = dict(_model_paths(cfg, models_dir))
    onnx_dir = next((m.parent for m in models.values() if m.suffix == ".onnx"), None)
    cache = cache_dir or (onnx_dir / "engines" if onnx_dir else None)
    engines = set(_engine_models(cfg))
    if cache is not None and cache.is_dir():
        engines |= {e for e in cache.glob("*.engine") if e.is_symlink() or e.name.count("-") == 1}
    if not engines:
        return CheckResult(
            "engines", "OK", "no TensorRT engines in use (ONNX Runtime runs the .onnx models)", ""
        )
    try:
        info: DeviceInfo = p.device.device_info()
    except (DeviceInfoError, Exception) as exc:
        return CheckResult(
            "engines",
            "WARN" if not _engine_models(cfg) else "FAIL",
            f"{len(engines)} engine(s) found but they cannot be verified here: {exc}",
            "engines only run on the device and TensorRT they were built with",
        )
    bad: list[str] = []
    good: list[str] = []
    for e in sorted(engines):
        verdict = check_engine_file(e, info)
        reasons = list(verdict.reasons)
        if verdict.fresh:
            try:
                _d, have, _h = read_sidecar(verdict.path.with_suffix(".json"))
                onnx = models.get(have.model)
                if onnx is not None and onnx.suffix == ".onnx" and onnx.is_file():
                    if sha256_file(onnx) != have.onnx_sha256:
                        reasons.append(f"{onnx.name} changed since the engine was built")
            except ValueError as exc:
                reasons.append(str(exc))
        (bad if reasons else good).append(f"{e.name}: {'; '.join(reasons)}" if reasons else e.name)
    if bad:
        return CheckResult(
            "engines",
            "FAIL",
            "engine(s) not usable here: " + " | ".join(bad),
            "rebuild on this device: `platewatch build-engines` (it rebuilds only what is stale)",
        )
    return CheckResult(
        "engines",
        "OK",
        f"valid for {info.gpu_name}, TensorRT {info.trt_version}: {', '.join(good)}",
    )


def check_video(p: Probes, cfg: Any) -> CheckResult:
    from edge.capture.gstreamer import detect_platform

    try:
        plat = (p.gstreamer_platform or detect_platform)()
    except Exception as exc:
        return CheckResult("video", "WARN", f"could not probe GStreamer: {exc}")
    needs_gst = []
    if cfg is not None:
        needs_gst = [c.name for c in cfg.cameras if c.enabled and c.kind.value == "gstreamer"]
    hw = (
        "hardware decoding available (nvv4l2decoder, nvvidconv)"
        if plat.hardware_decode
        else "no hardware decoder elements (software decoding)"
    )
    if not plat.opencv_gstreamer:
        status: Status = "FAIL" if needs_gst else "WARN"
        return CheckResult(
            "video",
            status,
            "OpenCV has no GStreamer support"
            + (
                f"; cameras {needs_gst} need it"
                if needs_gst
                else "; files and RTSP use FFmpeg (CPU decoding)"
            ),
            "on Jetson use JetPack's python3-opencv (remove pip's opencv-python*): "
            "`python3 -c 'import cv2; print(cv2.getBuildInformation())' | grep GStreamer`",
        )
    return CheckResult("video", "OK", f"OpenCV with GStreamer; {hw}")


def _open_camera(cam: Any, timeout: float) -> tuple[bool, str]:
    from edge.capture.camera import make_source
    from edge.capture.sources import SourceError

    cam = cam.model_copy(
        update={
            "open_timeout_s": min(cam.open_timeout_s, timeout),
            "read_timeout_s": min(cam.read_timeout_s, timeout),
        }
    )
    source = make_source(cam)
    t0 = time.monotonic()
    try:
        source.open()
        got = source.read()
    except SourceError as exc:
        return False, str(exc)
    except Exception as exc:  # cv2.error & co.: report, never crash doctor
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        try:
            source.close()
        except Exception:
            pass
    if got.status != "ok" or got.image is None:
        return False, f"opened, but no frame arrived ({got.error or got.status})"
    h, w = got.image.shape[:2]
    return True, f"{w}x{h} frame received in {time.monotonic() - t0:.1f} s"


def check_cameras(p: Probes, cfg: Any) -> list[CheckResult]:
    from edge.capture.sources import redact

    if cfg is None:
        return [
            CheckResult(
                "cameras",
                "WARN",
                "no --config given: cameras not checked",
                "run `platewatch doctor --config cameras.yaml`",
            )
        ]
    results: list[CheckResult] = []
    cams = [c for c in cfg.cameras if c.enabled]
    answers: dict[str, tuple[bool, str]] = {}

    def probe(cam: Any) -> None:
        answers[cam.name] = _open_camera(cam, p.camera_timeout_s)

    # In parallel, each in a daemon thread: an OpenCV open that ignores its timeout must not
    # hang the whole doctor.
    threads = [threading.Thread(target=probe, args=(c,), daemon=True) for c in cams]
    for t in threads:
        t.start()
    deadline = time.monotonic() + p.camera_timeout_s * 2 + 2
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for cam in cams:
        name = f"camera:{cam.name}"
        where = f"{cam.kind.value} {redact(cam.source)!r}"
        ok, text = answers.get(
            cam.name, (False, f"no answer within {p.camera_timeout_s * 2 + 2:.0f} s")
        )
        if ok:
            results.append(CheckResult(name, "OK", f"{where}: {text}"))
            continue
        advice = {
            "stream": "camera off, wrong address/port/path or credentials, or a firewall: try "
            "the URL in VLC from this device",
            "usb": "is the camera plugged in? `ls /dev/video*`; in Docker pass the device",
            "gstreamer": "try the pipeline with `gst-launch-1.0 ... ! fakesink`; CSI: is "
            "nvargus-daemon running?",
            "file": "check the path (relative paths are relative to the config file)",
            "images": "check the folder path and that it holds images",
        }.get(cam.kind.value, "")
        # "could not open stream source 'rtsp://...'" -> "could not open it": say the URL once.
        text = text.replace(f"{cam.kind.value} source {redact(cam.source)!r}", "it")
        results.append(CheckResult(name, "FAIL", f"cannot read {where}: {text}", advice))
    skipped = [c.name for c in cfg.cameras if not c.enabled]
    if skipped:
        results.append(CheckResult("cameras", "OK", f"disabled, not checked: {', '.join(skipped)}"))
    return results


def check_mqtt(p: Probes, cfg: Any) -> CheckResult:
    if cfg is None:
        return CheckResult("mqtt", "WARN", "no --config given: broker not checked")
    m = cfg.mqtt
    if m is None:
        return CheckResult(
            "mqtt",
            "WARN",
            "no mqtt section: events go only to the file/stdout sinks",
            "add an mqtt: section to publish events to a broker",
        )
    where = f"{m.host}:{m.port}"
    t0 = time.monotonic()
    try:
        socket.create_connection((m.host, m.port), timeout=p.mqtt_timeout_s).close()
    except OSError as exc:
        why = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return CheckResult(
            "mqtt",
            "FAIL",
            f"cannot reach the MQTT broker at {where}: {why}",
            "is the broker running? (`docker compose ps`, `systemctl status mosquitto`); check "
            "mqtt.host/port",
        )
    from edge.sinks.mqtt import make_client

    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result["reason"] = reason
        done.set()

    try:
        client = make_client(m, f"platewatch-doctor-{os.getpid()}")
    except Exception as exc:  # unreadable certificate or key files
        return CheckResult(
            "mqtt", "FAIL", f"MQTT TLS set-up failed: {exc}", "check the mqtt.tls files"
        )
    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=10)
        client.loop_start()
        answered = done.wait(p.mqtt_timeout_s)
    except Exception as exc:  # TLS handshake errors, bad cert paths
        return CheckResult(
            "mqtt",
            "FAIL",
            f"MQTT connect to {where} failed: {exc}",
            "check mqtt.tls settings and the broker's listener",
        )
    finally:
        try:
            client.disconnect()
            client.loop_stop()
        except Exception:
            pass
    if not answered:
        return CheckResult(
            "mqtt",
            "FAIL",
            f"{where} accepts TCP but sent no MQTT CONNACK within {p.mqtt_timeout_s:g} s",
            "is it an MQTT port? a TLS listener needs mqtt.tls",
        )
    reason = result["reason"]
    if getattr(reason, "is_failure", False):
        return CheckResult(
            "mqtt",
            "FAIL",
            f"broker at {where} refused the connection: {reason}",
            "check mqtt.username/password and the broker's ACL",
        )
    ms = (time.monotonic() - t0) * 1000
    return CheckResult("mqtt", "OK", f"broker at {where} accepted an MQTT connection ({ms:.0f} ms)")


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(p: Probes, cfg: Any) -> CheckResult:
    from edge.sinks.mqtt import default_spool_dir

    spool = default_spool_dir()
    limit_mb = 256.0
    if cfg is not None and cfg.mqtt is not None:
        spool = cfg.mqtt.spool_dir or spool
        limit_mb = cfg.mqtt.spool_max_mb
    base = _existing_parent(Path(spool))
    free_mb = shutil.disk_usage(base).free / 2**20
    writable = os.access(base, os.W_OK)
    text = f"{free_mb / 1024:.1f} GB free for the spool at {spool} (limit {limit_mb:g} MB)"
    if not writable:
        return CheckResult(
            "disk",
            "FAIL",
            f"{base} is not writable for the event spool",
            "fix ownership (install.sh creates /var/lib/platewatch) or set mqtt.spool_dir",
        )
    if free_mb < limit_mb:
        return CheckResult("disk", "FAIL", text, "free disk space or lower mqtt.spool_max_mb")
    if free_mb < 2 * limit_mb + 100:
        return CheckResult("disk", "WARN", text, "little room left for logs and engines")
    return CheckResult("disk", "OK", text)


# ------------------------------------------------------------------------------ run + CLI


def run_checks(
    config: Path | None = None,
    models_dir: Path | None = None,
    cache_dir: Path | None = None,
    probes: Probes | None = None,
) -> list[CheckResult]:
    p = probes or Probes()
    cfg = None
    results: list[CheckResult] = []
    if config is not None:
        from edge.config.loader import ConfigError, load_config

        try:
            cfg = load_config(config)
            results.append(CheckResult("config", "OK", f"{config} is valid"))
        except ConfigError as exc:
            results.append(
                CheckResult(
                    "config",
                    "FAIL",
                    f"{config} is invalid: {exc.errors[0]}",
                    f"run `platewatch check-config {config}` for all errors",
                )
            )

    def guard(name: str, fn: Callable[[], Any]) -> None:
        try:
            out = fn()
        except Exception as exc:  # a crashing probe is that check's failure, not doctor's
            out = CheckResult(name, "FAIL", f"check crashed: {type(exc).__name__}: {exc}")
        results.extend(out if isinstance(out, list) else [out])

    guard("python", lambda: check_python(p))
    guard("gpu", lambda: check_gpu(p))
    guard("cuda", lambda: check_cuda(p))
    guard("tensorrt", lambda: check_tensorrt(p, cfg))
    guard("models", lambda: check_models(p, cfg, models_dir))
    guard("engines", lambda: check_engines(p, cfg, models_dir, cache_dir))
    guard("video", lambda: check_video(p, cfg))
    guard("cameras", lambda: check_cameras(p, cfg))
    guard("mqtt", lambda: check_mqtt(p, cfg))
    guard("disk", lambda: check_disk(p, cfg))
    return results


def format_report(results: list[CheckResult]) -> str:
    width = max((len(r.name) for r in results), default=8)
    lines = []
    for r in results:
        lines.append(f"{r.status:<4}  {r.name:<{width}}  {r.message}")
        if r.advice and r.status != "OK":
            lines.append(f"{'':4}  {'':<{width}}  -> {r.advice}")
    worst = max((_ORDER[r.status] for r in results), default=0)
    counts = {s: sum(r.status == s for r in results) for s in _ORDER}
    verdict = {0: "ready", 1: "ready, with warnings", 2: "NOT ready"}[worst]
    lines.append(f"\n{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL: {verdict}")
    return "\n".join(lines)


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.status == "FAIL" for r in results) else 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "doctor",
        help="check GPU, TensorRT, engines, models, cameras, broker and disk",
        description="Check this device and configuration; exit 1 if anything FAILs.",
    )
    p.add_argument("--config", type=Path, default=None, help="cameras.yaml to check")
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="models folder when no --config is given",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="TensorRT engine cache (default <models>/engines)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds per camera/broker probe (default 3)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    probes = Probes(camera_timeout_s=args.timeout, mqtt_timeout_s=args.timeout)
    results = run_checks(args.config, args.models, args.cache_dir, probes)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(format_report(results))
    return exit_code(results)
