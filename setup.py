"""Build step only (the project's metadata is in pyproject.toml): a wheel carries the shipped
models and the demo clip, which live at the top of the repository (models/, samples/) where
training writes and reviewers read them. They are copied into ``edge/_bundled/`` at build time;
`edge.resources` finds them there when the package is installed from a wheel."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = {
    "models": ["detector.onnx", "detector.json", "reader.onnx", "reader.json"],
    "samples": ["demo.mp4", "demo.truth.json"],
}


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        for folder, names in BUNDLED.items():
            target = Path(self.build_lib) / "edge" / "_bundled" / folder
            target.mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copy2(ROOT / folder / name, target / name)


setup(cmdclass={"build_py": BuildWithAssets})
