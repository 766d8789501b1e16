"""Train Ultralytics yolov5n (2 classes: vehicle, plate) on the set ``build_data`` writes.

Two starting points:
  * the COCO YOLOv5n checkpoint (default): the network is built from ``yolov5n.yaml`` (never
    fetched by weight name) and the COCO backbone and neck are copied in by
    ``checkpoint.transfer_weights``; the head starts from scratch;
  * ``--init-onnx models/detector.onnx``: a fine-tune of a shipped detector, rebuilt from its
    ONNX file by ``from_onnx`` (whole network, head included).

CPU only, resumable:

    python -m training.detector.train [--imgsz 416] [--hours 1.1] [--threads 1]
    python -m training.detector.train --init-onnx models/detector.onnx --lr0 0.0005 --hours 1
    python -m training.detector.train --resume
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from training.detector import offline

RUN_PROJECT = offline.WORK_DIR / "runs"
RUN_NAME = "train"


def last_checkpoint() -> Path:
    return RUN_PROJECT / RUN_NAME / "weights" / "last.pt"


def best_checkpoint() -> Path:
    return RUN_PROJECT / RUN_NAME / "weights" / "best.pt"


def _threads(n: int) -> None:
    import torch
    import ultralytics.utils.torch_utils as tu

    # 1 by default: the CPU is shared with other runs. On an idle 2-core machine 2 threads
    # train 1.9x faster.
    tu.NUM_THREADS = n
    torch.set_num_threads(n)


def fine_tune_model(onnx_path: Path, data_yaml: Path, imgsz: int, n_calibration: int = 64):
    """YOLO wrapper around ``onnx_path`` rebuilt for training; its BatchNorms are calibrated on
    the first ``n_calibration`` training images (sorted by name, so the same every run)."""
    from ultralytics import YOLO

    from training.detector.from_onnx import detection_model, image_batches

    images = sorted((data_yaml.parent / "images" / "train").iterdir())
    step = max(1, len(images) // n_calibration)
    model = YOLO("yolov5n.yaml")
    model.model = detection_model(onnx_path, image_batches(images[::step][:n_calibration], imgsz))
    model.load(model.model)  # marks the module as the weight source for train()
    return model


def build_model(checkpoint: Path):
    """YOLO('yolov5n.yaml') with the COCO backbone+neck copied in; returns (model, n_copied)."""
    from ultralytics import YOLO

    from training.detector.checkpoint import load_yolov5_state_dict, transfer_weights

    model = YOLO("yolov5n.yaml")
    n_copied, _ = transfer_weights(model.model, load_yolov5_state_dict(checkpoint))
    if n_copied == 0:
        raise RuntimeError(f"no tensor of {checkpoint} matched yolov5n.yaml")
    # Mark the in-memory module as the weight source, so train() seeds its nc=2 model from it
    # (shape-matched copy) instead of starting from random weights.
    model.load(model.model)
    return model, n_copied


def _report_transfer(reference: dict):
    """Callback: count tensors of the trainer's nc=2 model that equal the COCO ones."""

    def callback(trainer) -> None:
        import torch

        sd = trainer.model.state_dict()
        same = sum(
            1
            for k, v in reference.items()
            if k in sd
            and sd[k].shape == v.shape
            and torch.equal(sd[k].float(), v.float())
            and not k.endswith("num_batches_tracked")
        )
        print(f"[train] COCO tensors present in the nc=2 training model: {same}", flush=True)

    return callback


def train(
    data_yaml: Path,
    checkpoint: Path,
    imgsz: int,
    hours: float,
    epochs: int,
    batch: int,
    cache: bool,
    threads: int = 1,
    init_onnx: Path | None = None,
    lr0: float | None = None,
) -> None:
    _threads(threads)
    extra: dict = {}
    if init_onnx is not None:
        from training.detector.from_onnx import keep_model_trainer

        model = fine_tune_model(init_onnx, data_yaml, imgsz)
        print(f"[train] fine-tuning {init_onnx}", flush=True)
        extra["trainer"] = keep_model_trainer()
    else:
        from training.detector.checkpoint import load_yolov5_state_dict

        model, n_copied = build_model(checkpoint)
        print(f"[train] transferred {n_copied} tensors from {checkpoint}", flush=True)
        model.add_callback(
            "on_pretrain_routine_end", _report_transfer(load_yolov5_state_dict(checkpoint))
        )
    if lr0 is not None:
        # A fine-tune starts from a trained optimum: a small fixed rate, not the "auto" choice.
        # Warm-up would otherwise start the biases at 0.1 and undo the trained head.
        extra.update(optimizer="AdamW", lr0=lr0, warmup_bias_lr=lr0)
    model.train(
        data=str(data_yaml),
        imgsz=imgsz,
        epochs=epochs,
        time=hours if hours > 0 else None,  # Ultralytics fits the LR schedule to the time budget
        batch=batch,
        workers=0,
        device="cpu",
        amp=False,
        plots=False,
        cache=cache,
        project=str(RUN_PROJECT),
        name=RUN_NAME,
        exist_ok=True,
        patience=100,
        warmup_epochs=1,
        close_mosaic=2,
        scale=0.6,  # wide zoom range: plates in street scenes are 1-6 % of the frame
        fliplr=0.0,  # mirrored plates do not exist
        seed=0,
        verbose=True,
        **extra,
    )


def resumable(last: Path) -> str | None:
    """Why ``last`` cannot be resumed, or None. Ultralytics strips the optimiser and sets the
    epoch to -1 when a run finishes; resuming such a file falls back to its built-in demo data
    set and tries to download it, which fails offline with a message about coco8."""
    import torch

    if not last.exists():
        return f"nothing to resume: {last} does not exist"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("epoch", -1) == -1 or ckpt.get("optimizer") is None:
        return (
            f"nothing to resume: the run in {last.parent.parent} finished. Start a new one "
            "(python -m training.detector.train, e.g. with more --epochs or --hours)"
        )
    return None


def resume(threads: int = 1) -> None:
    _threads(threads)
    from ultralytics import YOLO

    from training.detector.from_onnx import keep_model_trainer

    last = last_checkpoint()
    why = resumable(last)
    if why is not None:
        raise SystemExit(f"training.detector.train: {why}")
    # The checkpoint holds the whole network; train it as saved (a fine-tune of 0.1 has a
    # head that yolov5n.yaml would rebuild differently).
    YOLO(str(last)).train(resume=True, trainer=keep_model_trainer())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=offline.WORK_DIR / "dataset" / "data.yaml")
    ap.add_argument("--checkpoint", type=Path, default=offline.DEFAULT_CHECKPOINT)
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--hours", type=float, default=1.1, help="time budget; 0 = use --epochs")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init-onnx", type=Path, help="fine-tune this shipped detector")
    ap.add_argument("--lr0", type=float, help="fixed AdamW learning rate (for a fine-tune)")
    ap.add_argument("--resume", action="store_true", help=f"continue {last_checkpoint()}")
    args = ap.parse_args(argv)
    if args.resume:
        resume(args.threads)
    else:
        if not args.data.exists():
            raise FileNotFoundError(
                f"{args.data} missing: run python -m training.detector.build_data"
            )
        train(
            args.data,
            args.checkpoint,
            args.imgsz,
            args.hours,
            args.epochs,
            args.batch,
            not args.no_cache,
            args.threads,
            args.init_onnx,
            args.lr0,
        )


if __name__ == "__main__":
    main()
