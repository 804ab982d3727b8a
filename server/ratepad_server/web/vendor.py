"""Vendoring the web's front-end packages into ``static/web/vendor/`` (no CDN: bank intranets
are offline): Apache ECharts (the charts) and Bootstrap (the UI kit: layout, navbar, cards,
tables, forms).

Reproducible: ``python -m ratepad_server.web.vendor`` runs ``npm pack NAME@VERSION`` for each
package of ``PACKAGES`` (the npm client, from its registry), checks the tarball's SHA-256 against
the pinned one, and copies the listed files (the built assets and the licence) here.
``--check`` only compares the committed files with the tarballs'.

Bootstrap rather than Tabler: Tabler is a theme on top of Bootstrap (the same components, about
twice the CSS, and a markup that has changed between its minor releases); Bootstrap alone is the
most widely used, long-supported kit, two files, MIT, no fonts or icons to fetch, and its
colour modes give the hall wall its dark look.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent / "static" / "web" / "vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the npm tarball
    files: dict[str, str]  # member of the tarball -> file name in HERE


PACKAGES = (
    Package("echarts", "6.1.0",
            "681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481",
            {"package/dist/echarts.min.js": "echarts.min.js", "package/LICENSE": "echarts.LICENSE",
             "package/NOTICE": "echarts.NOTICE"}),
    Package("bootstrap", "5.3.8",
            "8b02d4a7482e0f0a2b1da58f1c9c86830e96cc2f77f094f89e4681b19886bc38",
            {"package/dist/css/bootstrap.min.css": "bootstrap.min.css",
             "package/dist/js/bootstrap.bundle.min.js": "bootstrap.bundle.min.js",
             "package/LICENSE": "bootstrap.LICENSE"}),
)  # fmt: skip


def vendor(package: Package, check: bool, tmp: Path) -> tuple[int, str] | None:
    """Fetch, verify and copy (or compare) one package; None, or the exit code (2: a bad
    tarball, 1: a committed file differs) and the error line."""
    subprocess.run(["npm", "pack", f"{package.name}@{package.version}", "--silent"], cwd=tmp,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    tgz = tmp / f"{package.name}-{package.version}.tgz"
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != package.sha256:
        return 2, f"{tgz.name}: SHA-256 {digest}, expected {package.sha256}"
    with tarfile.open(tgz) as tar:
        for member, name in package.files.items():
            f = tar.extractfile(member)
            if f is None:
                return 2, f"{tgz.name}: no file {member}"
            data = f.read()
            if not check:
                (HERE / name).write_bytes(data)
            elif not (HERE / name).is_file() or (HERE / name).read_bytes() != data:
                return 1, f"{HERE / name} differs from {package.name} {package.version}"
    return None


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            failed = vendor(package, check, Path(tmp))
            if failed is not None:
                print(failed[1], file=sys.stderr)
                return failed[0]
            done = "up to date" if check else "vendored"
            print(f"{package.name} {package.version}: {done} in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
