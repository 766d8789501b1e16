"""Annotation importers: every public plate/vehicle label format -> list[ImageRecord].

Foreign class names map to platewatch's two classes (``plat nomor``, ``license_plate``, ``lp``
-> plate; car/truck/bus/motorcycle -> vehicle) via :func:`map_label`. Loaders report a bad
file (by name) and go on with the others; ``scan_folder`` handles mixed-format folders.
"""

from training.data.importers.coco import load_coco
from training.data.importers.common import ImportProblem, LabelError, MissingImage, map_label
from training.data.importers.createml import load_createml, parse_createml
from training.data.importers.filename import load_filename_crops, parse_filename_crop
from training.data.importers.folder import (
    FORMATS,
    FolderImport,
    load_folder,
    scan_folder,
    scan_path,
)
from training.data.importers.imglab import load_imglab
from training.data.importers.openalpr import (
    load_openalpr,
    load_openalpr_crops_csv,
    parse_openalpr_tsv,
)
from training.data.importers.voc import load_voc, parse_voc
from training.data.importers.yolo import load_ultralytics, load_yolo, parse_yolo

__all__ = [
    "FORMATS",
    "FolderImport",
    "ImportProblem",
    "LabelError",
    "MissingImage",
    "load_coco",
    "load_createml",
    "load_filename_crops",
    "load_folder",
    "load_imglab",
    "load_openalpr",
    "load_openalpr_crops_csv",
    "load_ultralytics",
    "load_voc",
    "load_yolo",
    "map_label",
    "parse_createml",
    "parse_filename_crop",
    "parse_openalpr_tsv",
    "parse_voc",
    "parse_yolo",
    "scan_folder",
    "scan_path",
]
