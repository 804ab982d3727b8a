"""Build hook: ship the firmware sources, the Wireshark dissector and the udev rule inside the
``ratepad`` package (as ``ratepad/_data/...``), so an installed wheel has everything a source
checkout has. Packages themselves are found by discovery (pyproject.toml)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Source (relative to the checkout) -> destination inside the installed ratepad package.
RESOURCES = {
    "firmware": "_data/firmware",
    "wireshark/ratepad.lua": "_data/wireshark/ratepad.lua",
    "packaging/70-ratepad.rules": "_data/packaging/70-ratepad.rules",
}
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy")


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install finds them in the checkout
            return
        package = Path(self.build_lib) / "ratepad"
        for source, dest in RESOURCES.items():
            src, dst = ROOT / source, package / dest
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=_SKIP, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithResources})
