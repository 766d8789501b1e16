"""``platewatch build-engines``: TensorRT engines for the detector and reader, cached per device.

Run it on the device that will use the engines (Jetson: on the Jetson itself). A second run is a
cache check that takes seconds; after a JetPack/TensorRT upgrade or a new model it rebuilds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge.trt.build import (
    DEFAULT_CALIB_IMAGES,
    DEFAULT_READER_BATCH,
    DEFAULT_WORKSPACE_MB,
    EngineBuildError,
    calibration_cache_path,
    detector_calibration_batches,
    ensure_engine,
    format_command,
    list_images,
    make_plan,
    plate_crops_from_frames,
    reader_calibration_batches,
    trtexec_command,
)
from edge.trt.cache import PRECISIONS, BatchProfile, CudaDeviceInfo, DeviceInfoError


def default_cache_dir(models_dir: Path) -> Path:
    return models_dir / "engines"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build-engines",
        help="build (or verify cached) TensorRT engines for this GPU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with detector.onnx/reader.onnx + .json (default: the shipped ones)",
    )
    p.add_argument("--precision", choices=PRECISIONS, default="fp16", help="default fp16")
    p.add_argument(
        "--reader-precision",
        choices=PRECISIONS,
        default=None,
        help="override for the reader (e.g. int8 detector + fp16 reader, as "
        "NVIDIA's DeepStream LPR sample does)",
    )
    p.add_argument(
        "--calib-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="int8: folder of real camera frames (needed once; the cache is reused)",
    )
    p.add_argument(
        "--reader-calib-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="int8 reader: folder of plate crops (default: crops the ONNX detector "
        "finds in --calib-dir)",
    )
    p.add_argument(
        "--calib-images",
        type=int,
        default=DEFAULT_CALIB_IMAGES,
        metavar="N",
        help=f"most calibration images used, spread evenly (default {DEFAULT_CALIB_IMAGES})",
    )
    p.add_argument(
        "--recalibrate", action="store_true", help="ignore an existing calibration cache"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where engines live (default: <models>/engines)",
    )
    p.add_argument(
        "--reader-batch",
        default=str(DEFAULT_READER_BATCH),
        metavar="MIN:OPT:MAX",
        help="reader batch profile, or N for a fixed batch (default 1:8:16)",
    )
    p.add_argument(
        "--workspace-mb",
        type=int,
        default=DEFAULT_WORKSPACE_MB,
        metavar="MB",
        help=f"TensorRT workspace memory pool limit (default {DEFAULT_WORKSPACE_MB})",
    )
    p.add_argument("--only", choices=["detector", "reader"], default=None, help="build one model")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache is fresh")
    p.add_argument(
        "--check",
        action="store_true",
        help="only report whether the cached engines are valid here (exit 1 if not)",
    )
    p.add_argument(
        "--print-trtexec",
        action="store_true",
        help="print the equivalent trtexec commands and exit (needs no TensorRT)",
    )
    p.set_defaults(func=run)
    return p


def _plans(args: argparse.Namespace, models: Path, cache_dir: Path) -> list[Any]:
    reader_batch = BatchProfile.parse(args.reader_batch)
    det_onnx, rd_onnx = models / "detector.onnx", models / "reader.onnx"
    plans = []
    for model, onnx, precision in (
        ("detector", det_onnx, args.precision),
        ("reader", rd_onnx, args.reader_precision or args.precision),
    ):
        if args.only and args.only != model:
            continue
        if not onnx.is_file():
            raise FileNotFoundError(f"model file not found: {onnx}")
        calib_cache = batches = None
        if precision == "int8":
            calib_cache = calibration_cache_path(cache_dir, model, onnx)
            batches = _calibration_source(args, model, onnx, det_onnx)
        plans.append(
            make_plan(
                model,
                onnx,
                precision,
                batch=reader_batch if model == "reader" else None,
                workspace_mb=args.workspace_mb,
                calib_cache=calib_cache,
                calib_batches=batches,
                recalibrate=args.recalibrate,
            )
        )
    return plans


def _calibration_source(args: argparse.Namespace, model: str, onnx: Path, det_onnx: Path) -> Any:
    """Zero-argument factory of calibration batches, or None when no images were given."""
    from edge.detect.models import load_spec

    spec = load_spec(onnx)
    if model == "detector":
        if args.calib_dir is None:
            return None
        frames = list_images(args.calib_dir, args.calib_images)
        # Detector engines are built with batch 1 (one frame at a time, like the runtime).
        return lambda: detector_calibration_batches(frames, spec.input_size, 1)  # type: ignore[union-attr]
    batch = BatchProfile.parse(args.reader_batch).opt
    if args.reader_calib_dir is not None:
        from edge.trt.build import _read_images

        crops = list_images(args.reader_calib_dir, args.calib_images * 4)
        return lambda: reader_calibration_batches(_read_images(crops), spec.input, batch)  # type: ignore[union-attr]
    if args.calib_dir is None:
        return None
    frames = list_images(args.calib_dir, args.calib_images)
    return lambda: reader_calibration_batches(
        plate_crops_from_frames(frames, det_onnx),
        spec.input,  # type: ignore[union-attr]
        batch,
    )


def run(args: argparse.Namespace, device: Any = None, builder: Any = None) -> int:
    from edge.detect.models import default_models_dir

    models = args.models or default_models_dir()
    cache_dir = args.cache_dir or default_cache_dir(models)
    try:
        plans = _plans(args, models, cache_dir)
    except (EngineBuildError, ValueError) as exc:
        print(f"platewatch build-engines: error: {exc}", file=sys.stderr)
        return 2
    if args.print_trtexec:
        for plan in plans:
            out = cache_dir / f"{plan.model}-{plan.precision}.engine"
            print(format_command(trtexec_command(plan, out)))
        return 0
    device = device or CudaDeviceInfo()
    try:
        info = device.device_info()
    except DeviceInfoError as exc:
        print(
            f"platewatch build-engines: error: {exc}. Engines must be built on the GPU that runs "
            "them (JetPack 6 on Jetson ships TensorRT 10). Without TensorRT use the .onnx models "
            "(ONNX Runtime), or see `--print-trtexec` for the trtexec equivalent.",
            file=sys.stderr,
        )
        return 2
    print(
        f"device: {info.gpu_name} (compute {info.compute_capability}), TensorRT {info.trt_version}"
    )
    status = 0
    for plan in plans:
        try:
            res = ensure_engine(
                plan, cache_dir, device, builder=builder, force=args.force, check_only=args.check
            )
        except EngineBuildError as exc:
            print(f"platewatch build-engines: error: {exc}", file=sys.stderr)
            return 1
        if args.check:
            ok = res.check.fresh
            status |= 0 if ok else 1
            verdict = "OK" if ok else "REBUILD"
            print(f"{plan.model:8s} {plan.precision}: {verdict}  {res.check.describe()}")
            continue
        what = "built" if res.built else "cached"
        why = f" (was {res.check.state}: {'; '.join(res.check.reasons)})" if res.built else ""
        print(f"{plan.model:8s} {plan.precision}: {what} {res.path}{why}")
        print(f"{'':8s} use in the config: {res.stable}")
    return status
