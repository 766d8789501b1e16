"""Fine-tune Ultralytics yolov5n (2 classes: vehicle, plate) from the COCO YOLOv5n checkpoint.

The network is built from ``yolov5n.yaml`` (never fetched by weight name), the COCO backbone and
neck are copied in by ``checkpoint.transfer_weights``, and Ultralytics trains on the set written
by ``build_data``. CPU only, one thread, resumable:

    python -m training.detector.train [--imgsz 416] [--hours 1.1]
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


def _single_thread() -> None:
    import torch
    import ultralytics.utils.torch_utils as tu

    tu.NUM_THREADS = 1  # the CPU is shared with other training runs
    torch.set_num_threads(1)


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
) -> None:
    _single_thread()
    from training.detector.checkpoint import load_yolov5_state_dict

    model, n_copied = build_model(checkpoint)
    print(f"[train] transferred {n_copied} tensors from {checkpoint}", flush=True)
    model.add_callback(
        "on_pretrain_routine_end", _report_transfer(load_yolov5_state_dict(checkpoint))
    )
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


def resume() -> None:
    _single_thread()
    from ultralytics import YOLO

    last = last_checkpoint()
    why = resumable(last)
    if why is not None:
        raise SystemExit(f"training.detector.train: {why}")
    YOLO(str(last)).train(resume=True)


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
    ap.add_argument("--resume", action="store_true", help=f"continue {last_checkpoint()}")
    args = ap.parse_args(argv)
    if args.resume:
        resume()
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
        )


if __name__ == "__main__":
    main()
