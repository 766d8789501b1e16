"""Make Ultralytics fully offline before it is imported.

Every detector entry point imports this module first: Ultralytics otherwise checks connectivity,
tries to download fonts (Arial.ttf) and weights, and auto-installs packages at run time, none of
which is allowed on the development machines or in CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Datasets, runs and the Ultralytics config live outside the repository.
WORK_DIR = Path(
    os.environ.get("PLATEWATCH_DETECTOR_WORK", str(REPO_ROOT.parent / "runs" / "detector"))
)
DEFAULT_CHECKPOINT = Path(
    os.environ.get(
        "PLATEWATCH_COCO_CHECKPOINT", str(REPO_ROOT.parent / "shared/models/yolov5n-coco.pt")
    )
)


def data_root() -> Path:
    """Shared data folder: env PLATEWATCH_DATA, else ../shared/data next to the repo."""
    return Path(os.environ.get("PLATEWATCH_DATA", str(REPO_ROOT.parent / "shared" / "data")))


def _install_font(config_dir: Path) -> None:
    """Ultralytics' train/val ask for Arial.ttf; any TTF will do (plots are disabled anyway)."""
    target_dir = config_dir / "Ultralytics"
    target_dir.mkdir(parents=True, exist_ok=True)
    missing = [n for n in ("Arial.ttf", "Arial.Unicode.ttf") if not (target_dir / n).exists()]
    if not missing:
        return
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except ImportError:  # pragma: no cover - matplotlib comes with ultralytics
        return
    for name in missing:
        shutil.copyfile(src, target_dir / name)


def setup_offline(threads: int = 1) -> None:
    """Set the env vars Ultralytics reads at import time; idempotent."""
    config_dir = Path(os.environ.get("YOLO_CONFIG_DIR", str(WORK_DIR / "yolo_config")))
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    try:
        _install_font(config_dir)
    except OSError:  # read-only work dir: training would fail later with a clearer message
        pass


setup_offline()
